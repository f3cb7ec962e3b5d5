"""`pandalm eval testset.json`: the served judge's agreement with human labels.

The file is shaped like PandaLM's published test set (`testset-v1.json`: `idx`, `instruction`,
`input`, `response1`, `response2`, `annotator1`..`annotator3`, 0 = tie). The gold label is the
annotators' majority vote; an item the judge gave no verdict for counts as wrong. Served by
PandaLM-7B, this reproduces PandaLM's published accuracy and F1: the check of a deployment (after
quantisation, say) before trusting it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .._client import PandaLMClient
from ..testset import VERDICT_LABELS, Agreement, load_testset
from . import EXIT_OK, add_option_flags, options_of
from ._io import InputError, ProgressBar


def register(commands: Any) -> None:
    parser = commands.add_parser("eval", help="agreement with human labels", description=__doc__)
    parser.add_argument("testset", type=Path, help="a file shaped like PandaLM's testset-v1.json")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--results", type=Path, help="also write every result here, one JSON line each")
    add_option_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    try:
        items = load_testset(args.testset)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{args.testset}: not a test set like PandaLM's testset-v1.json ({exc})") from exc
    agreement = Agreement()
    progress = ProgressBar(f"judging {len(items)} items")
    results = client.batch([item.request() for item in items], progress=progress, **options_of(args))
    progress.close()
    for item, result in zip(items, results, strict=True):
        agreement.add(item.gold, VERDICT_LABELS[result.verdict] if result.status == "ok" and result.verdict else None)
    if args.results:
        with args.results.open("w", encoding="utf-8") as out:
            for item, result in zip(items, results, strict=True):
                out.write(json.dumps({"idx": item.idx, "gold": item.gold, **result.model_dump(mode="json")}) + "\n")
    report = agreement.report()
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return EXIT_OK


def describe(report: dict[str, Any]) -> str:
    confusion = report["confusion"]
    lines = [
        f"items           {report['n']} ({report['without_verdict']} without a verdict, counted wrong)",
        f"accuracy        {report['accuracy']:.4f}",
        f"macro precision {report['macro_precision']:.4f}",
        f"macro recall    {report['macro_recall']:.4f}",
        f"macro F1        {report['macro_f1']:.4f}",
        f"Cohen's kappa   {report['kappa']:.4f}",
        "",
        "confusion: rows are the human majority vote, columns the judge (0 = tie)",
        "        " + "".join(f"{label:>7}" for label in confusion["labels"]),
    ]
    for label, row in zip(confusion["labels"], confusion["counts"], strict=False):
        lines.append(f"{label:>7} " + "".join(f"{count:>7}" for count in row))
    return "\n".join(lines)
