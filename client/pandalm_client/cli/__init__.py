"""`pandalm`: judge pairs, grade responses, gate a CI job, measure judges against human labels, rank models.

    pandalm compare --instruction ... --response1 ... --response2 ... [--judge NAME]...
    pandalm grade --instruction ... --response ... --rubric ... [--judge NAME]
    pandalm batch pairs.jsonl -o verdicts.jsonl
    pandalm gate --baseline base.jsonl --candidate cand.jsonl
    pandalm eval testset-v1.json [--judge a --judge b]
    pandalm rank a.jsonl b.jsonl c.jsonl

Every command that judges takes `--judge NAME` (a judge the service's /info lists; default its first);
on the pairwise commands several `--judge` make a jury, on `eval` they are evaluated side by side.

Exit codes: 0 success (gate: pass), 1 gate fail, 2 usage, configuration or input error (a bad flag,
file, URL, API key or option: retrying cannot help), 3 gate inconclusive, 4 the judge or the
infrastructure failed (unreachable after the retries, 5xx, too many items without a verdict, an
unexpected error): CI may retry 4, never 1 or 2. `--url`, `--api-key` and `--debug` go before or
after the subcommand.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from .._client import PandaLMClient
from .._exceptions import PandaLMError
from ._args import add_connection_flags, api_key, service_url
from ._common import Command
from ._errors import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_INFRASTRUCTURE,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    exit_code_of,
    explain,
)
from ._io import QuietStdout

__all__ = ["EXIT_FAIL", "EXIT_INCONCLUSIVE", "EXIT_INFRASTRUCTURE", "EXIT_OK", "EXIT_USAGE", "main"]


def build_parser() -> argparse.ArgumentParser:
    from . import batch, compare, evaluate, gate, grade, rank

    parser = argparse.ArgumentParser(
        prog="pandalm", description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_connection_flags(parser, on_subcommand=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (compare, grade, batch, gate, evaluate, rank):
        module.register(commands)
    for subcommand in commands.choices.values():
        add_connection_flags(subcommand, on_subcommand=True)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Command = args.run
    key, key_source = api_key(args.api_key)
    stdout = sys.stdout
    sys.stdout = QuietStdout(stdout)
    try:
        with PandaLMClient(service_url(args.url), api_key=key) as client:
            code = run(args, client)
    except UsageError as exc:
        print(f"pandalm: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except PandaLMError as exc:
        print(f"pandalm: {explain(exc, key_source)}", file=sys.stderr)
        code = exit_code_of(exc)
    except KeyboardInterrupt:
        print("pandalm: interrupted; run the same command again to resume", file=sys.stderr)
        code = 130
    except Exception as exc:  # a bug: one line and exit 4, never 1, which would read as "the candidate is worse"
        if args.debug:
            traceback.print_exc()
        hint = "" if args.debug else " (--debug prints the traceback)"
        print(f"pandalm: unexpected error: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        code = EXIT_INFRASTRUCTURE
    finally:
        sys.stdout.flush()
        sys.stdout = stdout
    sys.exit(code)
