"""Options in layers: an item's own override its batch's, which override the server's settings.

The options are declared once, as the wire schema's `JudgeOptions`. Each has a setting of the same
name holding the server's default, and a field of `ResolvedOptions`; tests/judge/test_options.py
checks the three agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from pandalm_client.models import JudgeOptions, Mode, Preset

from ..errors import InvalidOptionError
from ..settings import Settings

OPTION_NAMES = tuple(JudgeOptions.model_fields)


@dataclass(frozen=True, slots=True)
class ResolvedOptions:
    """Every option, decided."""

    preset: Preset
    max_new_tokens: int
    truncate: bool
    mode: Mode
    swap: bool
    cache: bool
    neutralize_headers: bool


def server_defaults(settings: Settings) -> JudgeOptions:
    """The server's default for every option, as the wire schema states options."""
    return JudgeOptions(**{name: getattr(settings, name) for name in OPTION_NAMES})


def layered(*layers: JudgeOptions | None) -> JudgeOptions:
    """Option layers, most general first, merged: each set option overrides the layers before it."""
    merged: dict[str, object] = {}
    for layer in layers:
        if layer is not None:
            merged.update(layer.model_dump(exclude_none=True))
    return JudgeOptions.model_validate(merged)


def resolve_options(settings: Settings, presets: frozenset[Preset], *layers: JudgeOptions | None) -> ResolvedOptions:
    """Merge option layers, most general first, onto the server's defaults, and check the result."""
    resolved = ResolvedOptions(**layered(server_defaults(settings), *layers).model_dump())
    if resolved.preset not in presets:
        raise InvalidOptionError(
            f"preset {resolved.preset!r} is not available on this engine; use one of {sorted(presets)}",
            details={"option": "preset", "value": resolved.preset},
        )
    if resolved.max_new_tokens > settings.max_new_tokens:
        raise InvalidOptionError(
            f"max_new_tokens {resolved.max_new_tokens} exceeds this server's limit of {settings.max_new_tokens}",
            details={"option": "max_new_tokens", "value": resolved.max_new_tokens, "limit": settings.max_new_tokens},
        )
    return resolved
