"""What every subcommand shares: the judging options as flags (exit codes: _errors.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Annotated, Any, get_args, get_origin

from .._client import PandaLMClient
from ..models import JudgeOptions
from ._args import positive_int

Command = Callable[[argparse.Namespace, PandaLMClient], int]


def add_option_flags(parser: argparse.ArgumentParser, *, skip: Sequence[str] = ()) -> None:
    """One flag per judging option, from the wire schema's `JudgeOptions` (the one list of options)."""
    group = parser.add_argument_group("judging options (default: the server's)")
    for name, field in JudgeOptions.model_fields.items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        # `StrictBool` is an Annotated bool: its first argument is the type.
        kinds = [get_args(a)[0] if get_origin(a) is Annotated else a for a in get_args(field.annotation)]
        kinds = [a for a in kinds if a is not type(None)]
        if kinds == [bool]:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=field.description)
        elif kinds == [int]:
            group.add_argument(flag, type=positive_int, default=None, help=field.description)
        else:
            choices = list(get_args(kinds[0]))
            group.add_argument(flag, choices=choices, default=None, help=field.description)


def options_of(args: argparse.Namespace, *, skip: Sequence[str] = ()) -> dict[str, Any]:
    """The judging options given on the command line (the others stay the server's)."""
    return {
        name: getattr(args, name)
        for name in JudgeOptions.model_fields
        if name not in skip and getattr(args, name, None) is not None
    }
