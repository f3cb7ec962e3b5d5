"""`pandalm grade`: a score on the judge's absolute scale, and its feedback, for one response or a file of them.

    pandalm grade --instruction ... --response ... --rubric ... [--reference ...] [--judge NAME]
    pandalm grade --file responses.jsonl [--json]

Each line of `--file` is a grade request: `{"instruction", "input"?, "response", "rubric", "reference"?,
"judge"?, "id"?, "options"?}`; `--judge` and the judging options apply where a line gives none. Every
line is checked before anything is graded (exit 2 names the first bad one). `--json` prints the whole
result (with `--file`, one JSON line per response, in input order). Exit 0 when every response has the
judge's answer (an output without a score is listed on stderr, never made a score), 2 for a usage error,
a judge that cannot grade, or responses refused for their own sake (a prompt too long), 4 when the judge
or the network failed.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._client import PandaLMClient
from .._exceptions import APIStatusError
from ..models import GradeRequest, GradeResult
from ._common import add_option_flags, options_of
from ._errors import EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USAGE, INPUT_ERROR_CODES, SHOWN_ITEM_ERRORS, UsageError
from ._io import InputError, read_jsonl
from ._judge import add_judge_flag, served_judges

_FROM_FLAGS = ("instruction", "response", "rubric")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "grade",
        help="grade responses on a scale (absolute grading)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--instruction", help="the task the response answers")
    parser.add_argument("--input", default="", help="optional context of the instruction")
    parser.add_argument("--response", help="the response to grade")
    parser.add_argument("--rubric", help="the criterion, and what each score means")
    parser.add_argument("--reference", help="a reference answer that would get the top score")
    parser.add_argument("--file", type=Path, help="JSON Lines: one grade request a line (instead of the flags above)")
    parser.add_argument("--json", action="store_true", help="print whole results as JSON (JSON Lines with --file)")
    add_judge_flag(parser, several=None)
    add_option_flags(parser, skip=("swap",))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    options = options_of(args, skip=("swap",))
    if args.file is None:
        missing = [f"--{name}" for name in _FROM_FLAGS if getattr(args, name) is None]
        if missing:
            raise UsageError(f"grade needs {', '.join(missing)} (or --file with one request a line)")
        request = _request({**vars(args), "options": options or None})
        served_judges(client, [args.judge] if args.judge else [], "absolute")
        result = _grade(client, request)
        print(result.model_dump_json(indent=2) if args.json else describe(result))
        return _exit_code([result])
    given = [f"--{name}" for name in (*_FROM_FLAGS, "reference") if getattr(args, name) is not None]
    if given:
        raise UsageError(f"--file has the requests; {', '.join(given)} would be ignored: give one or the other")
    requests = read_requests(args.file, args.judge, options)
    named = {r.judge for r in requests if r.judge is not None}
    served_judges(client, sorted(named), "absolute")
    with ThreadPoolExecutor(client.max_in_flight, thread_name_prefix="pandalm-grade") as pool:
        results = list(pool.map(lambda r: _grade(client, r), requests))
    for result in results:
        print(result.model_dump_json() if args.json else describe_line(result))
    if not args.json:
        print(summary(results))
    failed = [(request.id, r) for request, r in zip(requests, results, strict=True) if r.status != "ok"]
    if failed:
        print(f"pandalm: {len(failed)} response(s) without a score; the first {min(len(failed), SHOWN_ITEM_ERRORS)}:",
              file=sys.stderr)  # fmt: skip
        for item_id, result in failed[:SHOWN_ITEM_ERRORS]:
            print(f"  {args.file} (id {item_id}): {_without_score(result)}", file=sys.stderr)
    return _exit_code(results)


def _request(fields: dict[str, Any]) -> GradeRequest:
    names = ("instruction", "input", "response", "rubric", "reference", "judge", "id", "options")
    return GradeRequest.model_validate({k: fields[k] for k in names if fields.get(k) is not None})


def read_requests(path: Path, judge: str | None, options: dict[str, Any]) -> list[GradeRequest]:
    """Every line as a grade request, its id `line:N` where it has none, `--judge` and the options its defaults."""
    requests: list[GradeRequest] = []
    for number, obj in read_jsonl(path):
        own = obj.get("options") or {}
        # A line's own options win over the flags'; options that are not an object fail validation as given.
        merged = {**options, **own} if isinstance(own, dict) else own
        fields = {"judge": judge, "id": f"line:{number}", **obj, "options": merged or None}
        try:
            requests.append(_request(fields))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise InputError(f"{path}:{number}: field {where!r}: {error['msg'].lower()}") from None
    if not requests:
        raise InputError(f"{path}: no grade requests in it")
    return requests


def _grade(client: PandaLMClient, request: GradeRequest) -> GradeResult:
    """One response graded; refused for its own sake (a prompt too long), it is an error result, not the end."""
    try:
        return client.grade(
            request.instruction,
            request.response,
            request.rubric,
            input=request.input,
            reference=request.reference,
            judge=request.judge,
            id=request.id,
            options=request.options,
        )
    except APIStatusError as exc:
        if exc.error is None or exc.error.code not in INPUT_ERROR_CODES or exc.error.code == "invalid_option":
            raise  # the same for every response (a judge that cannot grade), or the service's failure
        return GradeResult(id=request.id, status="error", judge=request.judge, error=exc.error)


def _exit_code(results: list[GradeResult]) -> int:
    codes = {r.error.code for r in results if r.error is not None}
    if not codes:
        return EXIT_OK
    return EXIT_USAGE if codes <= INPUT_ERROR_CODES else EXIT_INFRASTRUCTURE


def _without_score(result: GradeResult) -> str:
    if result.error is not None:
        return f"error: {result.error.code}: {result.error.message}"
    return f"{result.status}: the judge's output has no score on its scale"


def _scale(result: GradeResult) -> str:
    return f" (on {result.scale[0]}-{result.scale[-1]})" if result.scale else ""


def describe(result: GradeResult) -> str:
    """One graded response for a terminal: the score and its scale, the feedback, warnings and the judge."""
    if result.status != "ok":
        raw = f":\n{result.raw}" if result.status == "unparsed" and result.raw else ""
        return _without_score(result) + raw
    lines = [f"score: {result.score}{_scale(result)}"]
    if result.feedback:
        lines.append(f"feedback: {result.feedback}")
    lines += [f"warning: {w.message}" for w in result.warnings]
    template = f" ({result.template_version})" if result.template_version else ""
    lines.append(f"judge: {result.judge}: {result.model}{template}")
    return "\n".join(lines)


def describe_line(result: GradeResult) -> str:
    """One line per response of a file: its id, then its score and the feedback's start."""
    if result.status != "ok":
        return f"{result.id}: {_without_score(result)}"
    feedback = " ".join((result.feedback or "").split())
    return f"{result.id}: {result.score}{_scale(result)}: {feedback[:150] + ('…' if len(feedback) > 150 else '')}"


def summary(results: list[GradeResult]) -> str:
    scores = [r.score for r in results if r.status == "ok" and r.score is not None]
    mean = f"mean score {sum(scores) / len(scores):.2f}" if scores else "no scores"
    unparsed = sum(1 for r in results if r.status == "unparsed")
    failed = sum(1 for r in results if r.status == "error")
    return f"{len(results)} responses: {len(scores)} graded ({mean}), {unparsed} unparsed, {failed} failed"
