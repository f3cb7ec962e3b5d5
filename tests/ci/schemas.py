"""The CI schemas check-jsonschema vendors (GitHub's action and workflow schemas, GitLab's CI schema): offline."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import jsonschema


def vendored_schema(name: str) -> jsonschema.Draft7Validator:
    """`vendor.<name>` of `check-jsonschema --builtin-schema`, as a validator (all three are draft 7, refs local)."""
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath(f"{name}.json").read_text())
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.Draft7Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
