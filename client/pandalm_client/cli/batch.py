"""`pandalm batch pairs.jsonl -o verdicts.jsonl`: judge a file of pairs, resumably.

Each input line is a compare request: `{"instruction", "input"?, "response1", "response2", "id"?,
"options"?, "judge"?, "rubric"?, "reference"?}`; `--judge` judges the lines that name no judge.
Each output line is its result, with the input's `id` (or `line:N` where it has none) and its judge.
Re-run with the same output file after an interruption: only what is missing (or failed) is judged,
and the output ends in input order (the verdicts already there are kept: judging with another `--judge`
needs another output file). Every line is checked before anything is judged (exit 2 names the
first bad one); items judged without a verdict are listed on stderr. Exit 0 when every item has a
result from the judge, 2 when items failed for their own sake (a prompt too long), 4 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._client import PandaLMClient
from ..models import BatchSummary, CompareRequest, CompareResult
from ._common import add_option_flags, options_of
from ._errors import EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USAGE, INPUT_ERROR_CODES, item_errors
from ._io import InputError, ProgressBar, read_jsonl
from ._judge import add_judge_flag, judge_names, served_judges


def register(commands: Any) -> None:
    parser = commands.add_parser("batch", help="judge a JSONL file of pairs, resumably", description=__doc__)
    parser.add_argument("pairs", type=Path, help="JSON Lines: one compare request a line")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON Lines results (resumed if present)")
    add_judge_flag(parser, several="a jury: their majority verdict")
    add_option_flags(parser)
    parser.set_defaults(run=run)


def item_id(number: int, obj: dict[str, Any]) -> str:
    raw = obj.get("id")
    return str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else f"line:{number}"


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    lines = _check_items(args.pairs)
    ids = list(lines)
    done = _finished(args.output)
    judges = served_judges(client, judge_names(args))
    todo = sum(1 for i in ids if i not in done)
    progress = ProgressBar(f"judging {todo} of {len(ids)}")
    missing = _missing(args.pairs, done)
    with args.output.open("a", encoding="utf-8") as out:
        for result in client.iter_batch(missing, progress=progress, judge=judges.choice, **options_of(args)):
            out.write(result.model_dump_json() + "\n")
            out.flush()
    progress.close()
    summary, failed = _rewrite_in_order(args.output, ids)
    counts = ", ".join(f"{name} {count}" for name, count in summary.model_dump().items())
    print(f"{len(ids)} pairs ({todo} judged now, {len(ids) - todo} from {args.output}): {counts}")
    shown = item_errors([(f"{args.pairs}:{lines.get(r.id or '', '?')} (id {r.id})", r) for r in failed])
    if shown:
        print(f"pandalm: {shown}", file=sys.stderr)
    codes = {r.error.code for r in failed if r.error is not None}
    if not codes:
        return EXIT_OK
    return EXIT_USAGE if codes <= INPUT_ERROR_CODES else EXIT_INFRASTRUCTURE


def _check_items(pairs: Path) -> dict[str, int]:
    """Every item's id and line; the first line that is not a compare request (or repeats an id) is an error."""
    seen: dict[str, int] = {}
    for number, obj in read_jsonl(pairs):
        key = item_id(number, obj)
        if key in seen:
            raise InputError(f"{pairs}:{number}: duplicate id {key!r} (first on line {seen[key]})")
        try:
            CompareRequest.model_validate({**obj, "id": key})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise InputError(f"{pairs}:{number}: field {where!r}: {error['msg'].lower()}") from None
        seen[key] = number
    return seen


def _missing(pairs: Path, done: dict[str, int]) -> Iterator[dict[str, Any]]:
    for number, obj in read_jsonl(pairs):
        key = item_id(number, obj)
        if key not in done:
            yield {**obj, "id": key}


def _finished(output: Path) -> dict[str, int]:
    """Ids already judged in `output` (not failed), with the offset of their line; cuts off a torn last line."""
    done: dict[str, int] = {}
    if not output.exists():
        return done
    with output.open("rb+") as handle:
        offset = 0
        for raw in handle:
            if not raw.endswith(b"\n"):
                handle.truncate(offset)  # written when the last run stopped: judged again
                break
            try:
                result = CompareResult.model_validate_json(raw)
            except ValueError as exc:
                raise InputError(f"{output}: a line at byte {offset} is not a result; is this the right file?") from exc
            if result.status != "error" and result.id is not None:
                done[result.id] = offset
            offset += len(raw)
    return done


def _rewrite_in_order(output: Path, ids: list[str]) -> tuple[BatchSummary, list[CompareResult]]:
    """Rewrite `output` with one result per input, in input order (the last one written wins); summarise.

    Also returns the results without a verdict, in input order.
    """
    latest = _finished_or_failed(output)
    summary = BatchSummary()
    failed: list[CompareResult] = []
    temporary = output.with_name(output.name + ".tmp")
    with output.open("rb") as source, temporary.open("wb") as target:
        for key in ids:
            source.seek(latest[key])
            line = source.readline()
            target.write(line)
            result = json.loads(line)
            outcome = result["verdict"] if result["status"] == "ok" else result["status"]
            setattr(summary, outcome, getattr(summary, outcome) + 1)
            summary.inconsistent += result.get("consistent") is False
            if result["status"] != "ok":
                failed.append(CompareResult.model_validate(result))
    os.replace(temporary, output)
    return summary, failed


def _finished_or_failed(output: Path) -> dict[str, int]:
    offsets: dict[str, int] = {}
    with output.open("rb") as handle:
        offset = 0
        for raw in handle:
            key = json.loads(raw).get("id")
            offsets[key] = offset
            offset += len(raw)
    return offsets
