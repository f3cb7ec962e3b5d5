"""The options are declared once (the wire schema's `JudgeOptions`); settings and resolution follow it."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from pandalm_client.models import JudgeOptions
from pandalm_serve.errors import InvalidOptionError
from pandalm_serve.judge.options import OPTION_NAMES, ResolvedOptions, resolve_options, server_defaults
from pandalm_serve.settings import Settings


def base(annotation: object) -> object:
    """`bool` for `StrictBool` (an Annotated bool): the type, without its validation markers."""
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


def without_none(annotation: object) -> set[object]:
    return {base(arg) for arg in typing.get_args(annotation) if arg is not type(None)}


def test_every_option_has_a_setting_and_a_resolved_field_of_its_type() -> None:
    assert [f.name for f in dataclasses.fields(ResolvedOptions)] == list(OPTION_NAMES)
    resolved = typing.get_type_hints(ResolvedOptions)
    for name, field in JudgeOptions.model_fields.items():
        assert name in Settings.model_fields, f"option {name} has no server default"
        wire = without_none(field.annotation)
        assert {Settings.model_fields[name].annotation} == wire, name
        assert {resolved[name]} == wire, name


def test_layers_override_the_server_defaults_in_order() -> None:
    settings = Settings(max_new_tokens=300, swap=True)
    assert server_defaults(settings).model_dump() == {
        "preset": "greedy",
        "max_new_tokens": 300,
        "truncate": False,
        "mode": "full",
        "swap": True,
        "cache": True,
        "neutralize_headers": False,
    }
    resolved = resolve_options(
        settings,
        frozenset({"greedy", "beam"}),
        JudgeOptions(preset="beam", max_new_tokens=100),
        None,
        JudgeOptions(max_new_tokens=50, swap=False),
    )
    assert resolved == ResolvedOptions(
        preset="beam", max_new_tokens=50, truncate=False, mode="full", swap=False, cache=True, neutralize_headers=False
    )


def test_what_the_server_cannot_honour_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="limit of 300"):
        resolve_options(Settings(max_new_tokens=300), frozenset({"greedy"}), JudgeOptions(max_new_tokens=301))
    with pytest.raises(InvalidOptionError, match="not available"):
        resolve_options(Settings(), frozenset({"greedy"}), JudgeOptions(preset="beam"))
