"""`pandalm compare`: one pair, its verdict and reason, readable in a terminal (or JSON)."""

from __future__ import annotations

import argparse
from typing import Any

from .._client import PandaLMClient
from ..models import CompareResult
from ._common import add_option_flags, options_of
from ._errors import EXIT_OK
from ._judge import add_judge_flag, judge_names, served_judges

_NAMES = {"response1": "response 1 is better", "response2": "response 2 is better", "tie": "tie"}


def register(commands: Any) -> None:
    parser = commands.add_parser("compare", help="judge one pair", description=__doc__)
    parser.add_argument("--instruction", required=True)
    parser.add_argument("--input", default="", help="optional context of the instruction")
    parser.add_argument("--response1", required=True)
    parser.add_argument("--response2", required=True)
    parser.add_argument("--rubric", help="the criterion to judge by, for judges that take one (prometheus2)")
    parser.add_argument("--reference", help="a reference answer, for judges that take one")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    add_judge_flag(parser, several="a jury: their majority verdict")
    add_option_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    judges = served_judges(client, judge_names(args))
    result = client.compare(
        args.instruction,
        args.response1,
        args.response2,
        args.input,
        judge=judges.choice,
        rubric=args.rubric,
        reference=args.reference,
        **options_of(args),
    )
    print(result.model_dump_json(indent=2) if args.json else describe(result))
    return EXIT_OK


def describe(result: CompareResult) -> str:
    if result.status == "error" and result.error is not None:
        return f"error: {result.error.code}: {result.error.message}"
    if result.status == "unparsed":
        return f"the judge's output is not in its format (no verdict):\n{result.raw}"
    lines = [f"verdict: {_NAMES[result.verdict or 'tie']}"]
    if result.scores is not None:
        lines.append(f"scores: response 1 {result.scores[0]:g}, response 2 {result.scores[1]:g}")
    if result.probabilities is not None:
        p = result.probabilities
        lines.append(f"probabilities: response 1 {p.response1:.2f}, response 2 {p.response2:.2f}, tie {p.tie:.2f}")
    if result.consistent is False:
        lines.append("the two orders disagreed: reported as a tie")
    if result.reason:
        lines.append(f"reason: {result.reason}")
    if result.reference:
        lines.append(f"reference: {result.reference}")
    lines += _jury(result)
    lines += [f"warning: {w.message}" for w in result.warnings]
    named = f"{result.judge}: " if isinstance(result.judge, str) else ""
    if not isinstance(result.judge, list):
        lines.append(f"judge: {named}{result.model} ({result.template_version}, {result.preset}, {result.mode})")
    return "\n".join(lines)


def _jury(result: CompareResult) -> list[str]:
    """A jury's members, each with its own verdict, and how many agreed with the majority."""
    if not result.jury:
        return []
    lines = [f"jury: {', '.join(j.judge for j in result.jury)}"]
    if result.agreement is not None:
        lines[0] += f" ({result.agreement:.0%} of them gave the majority's verdict)"
    for juror in result.jury:
        if juror.status == "ok" and juror.verdict is not None:
            said = _NAMES[juror.verdict] + (" (its two orders disagreed)" if juror.consistent is False else "")
        elif juror.error is not None:
            said = f"error: {juror.error.code}: {juror.error.message}"
        else:
            said = f"{juror.status}: no verdict"
        lines.append(f"  {juror.judge}: {said}")
    return lines
