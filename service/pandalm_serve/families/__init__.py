"""Judge families by name: each is one module, faithful to its reference implementation (families/base.py)."""

from __future__ import annotations

from .base import Family
from .judgelm import JUDGELM
from .mtbench import MTBENCH
from .pandalm import PANDALM
from .prometheus2 import PROMETHEUS2

FAMILIES: dict[str, Family] = {family.name: family for family in (PANDALM, PROMETHEUS2, JUDGELM, MTBENCH)}
DEFAULT_FAMILY = PANDALM.name


def family_named(name: str) -> Family:
    """The family called `name`; `KeyError` names the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown judge family {name!r}; known: {', '.join(FAMILIES)}") from None
