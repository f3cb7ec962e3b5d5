"""`pandalm`: judge pairs, gate a CI job, measure the judge against human labels, rank models.

    pandalm compare --instruction ... --response1 ... --response2 ...
    pandalm batch pairs.jsonl -o verdicts.jsonl
    pandalm gate --baseline base.jsonl --candidate cand.jsonl
    pandalm eval testset-v1.json
    pandalm rank a.jsonl b.jsonl c.jsonl

Exit codes: 0 success (gate: pass), 1 gate fail, 2 usage or input error, 3 gate inconclusive,
4 the judge or the infrastructure failed (CI may retry 4, never 1).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, get_args, get_origin

from .._client import PandaLMClient
from .._exceptions import PandaLMError
from ..models import JudgeOptions
from ._io import InputError

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_INFRASTRUCTURE = 4

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
            group.add_argument(flag, type=int, default=None, help=field.description)
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


def build_parser() -> argparse.ArgumentParser:
    from . import batch, compare, evaluate, gate, rank

    parser = argparse.ArgumentParser(
        prog="pandalm", description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("PANDALM_URL", "http://127.0.0.1:8000"),
        help="the PandaLM service (env PANDALM_URL; default http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("PANDALM_API_KEY"),
        help="sent as a bearer token (env PANDALM_API_KEY; prefer the variable: flags show in `ps`)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (compare, batch, gate, evaluate, rank):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Command = args.run
    try:
        with PandaLMClient(args.url, api_key=args.api_key) as client:
            code = run(args, client)
    except InputError as exc:
        print(f"pandalm: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except PandaLMError as exc:
        print(f"pandalm: {exc}", file=sys.stderr)
        code = EXIT_INFRASTRUCTURE
    except KeyboardInterrupt:
        print("pandalm: interrupted; run the same command again to resume", file=sys.stderr)
        code = 130
    sys.exit(code)
