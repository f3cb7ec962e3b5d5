"""`pandalm batch pairs.jsonl -o verdicts.jsonl`: judge a file of pairs, resumably.

Each input line is a compare request: `{"instruction", "input"?, "response1", "response2", "id"?,
"options"?}`. Each output line is its result, with the input's `id` (or `line:N` where it has none).
Re-run with the same output file after an interruption: only what is missing (or failed) is judged,
and the output ends in input order.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._client import PandaLMClient
from ..models import BatchSummary, CompareResult
from ._common import EXIT_INFRASTRUCTURE, EXIT_OK, add_option_flags, options_of
from ._io import InputError, ProgressBar, read_jsonl


def register(commands: Any) -> None:
    parser = commands.add_parser("batch", help="judge a JSONL file of pairs, resumably", description=__doc__)
    parser.add_argument("pairs", type=Path, help="JSON Lines: one compare request a line")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON Lines results (resumed if present)")
    add_option_flags(parser)
    parser.set_defaults(run=run)


def item_id(number: int, obj: dict[str, Any]) -> str:
    raw = obj.get("id")
    return str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else f"line:{number}"


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    ids = _check_ids(args.pairs)
    done = _finished(args.output)
    todo = sum(1 for i in ids if i not in done)
    progress = ProgressBar(f"judging {todo} of {len(ids)}")
    with args.output.open("a", encoding="utf-8") as out:
        for result in client.iter_batch(_missing(args.pairs, done), progress=progress, **options_of(args)):
            out.write(result.model_dump_json() + "\n")
            out.flush()
    progress.close()
    summary = _rewrite_in_order(args.output, ids)
    counts = ", ".join(f"{name} {count}" for name, count in summary.model_dump().items())
    print(f"{len(ids)} pairs ({todo} judged now, {len(ids) - todo} from {args.output}): {counts}")
    return EXIT_INFRASTRUCTURE if summary.error else EXIT_OK


def _check_ids(pairs: Path) -> list[str]:
    seen: dict[str, int] = {}
    for number, obj in read_jsonl(pairs):
        key = item_id(number, obj)
        if key in seen:
            raise InputError(f"{pairs}:{number}: duplicate id {key!r} (first on line {seen[key]})")
        seen[key] = number
    return list(seen)


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


def _rewrite_in_order(output: Path, ids: list[str]) -> BatchSummary:
    """Rewrite `output` with one result per input, in input order (the last one written wins); summarise."""
    latest = _finished_or_failed(output)
    summary = BatchSummary()
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
    os.replace(temporary, output)
    return summary


def _finished_or_failed(output: Path) -> dict[str, int]:
    offsets: dict[str, int] = {}
    with output.open("rb") as handle:
        offset = 0
        for raw in handle:
            key = json.loads(raw).get("id")
            offsets[key] = offset
            offset += len(raw)
    return offsets
