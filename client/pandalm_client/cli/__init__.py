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
from collections.abc import Sequence

from .._client import PandaLMClient
from .._exceptions import PandaLMError
from ._common import EXIT_INFRASTRUCTURE, EXIT_USAGE, Command
from ._io import InputError


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
