"""`pandalm eval testset.json`: the served judge's agreement with human labels.

The file is shaped like PandaLM's published test set (`testset-v1.json`: `idx`, `instruction`,
`input`, `response1`, `response2`, `annotator1`..`annotator3`, 0 = tie). The gold label is the
annotators' majority vote; an item the judge gave no verdict for counts as wrong. Served by
PandaLM-7B, this reproduces PandaLM's published accuracy and F1: the check of a deployment (after
quantisation, say) before trusting it. Accuracy, macro F1 and kappa come with 95% bootstrap intervals
over items (1000 resamples, seeded); `--against other-results.jsonl` compares this deployment with
another judged on the same set: McNemar's exact test on the items each got right, and a paired
bootstrap of the metric differences.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .._client import PandaLMClient
from ..evaluation import bootstrap_intervals, compare_deployments
from ..models import CompareResult
from ..testset import Agreement, TestItem, load_testset
from ..testset import result_label as label_of
from . import canary
from ._common import add_option_flags, options_of
from ._errors import EXIT_OK, UsageError
from ._io import InputError, ProgressBar, read_jsonl
from ._judge import judge_info


def register(commands: Any) -> None:
    parser = commands.add_parser("eval", help="agreement with human labels", description=__doc__)
    parser.add_argument(
        "testset",
        type=Path,
        nargs="?",
        help="PandaLM's published human-labelled test set (testset-v1.json: data/pandalm/ in the pandalm-serve "
        "repository, from WeOpenML/PandaLM's data/ folder, Apache-2.0) or a file shaped like it",
    )
    parser.add_argument(
        "--canary",
        nargs="?",
        const="builtin",
        metavar="builtin|FILE",
        help="judge a canary instead: builtin (the default, bundled) or a FILE; exit 1 when its verdicts changed",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--results", type=Path, help="also write every result here, one JSON line each")
    parser.add_argument(
        "--from-results",
        type=Path,
        metavar="RESULTS",
        help="score a JSONL file of results already judged (pandalm batch -o, the Ray batch job, eval --results) "
        "instead of calling the service; items match by id (the test set's idx), else by position",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="RESULTS",
        help="results of another judge deployment on the same test set (as --from-results): compare the two",
    )
    add_option_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    if (args.canary is None) == (args.testset is None):
        raise UsageError("give either a test set or --canary, one of the two")
    if args.canary is not None:
        return canary.run(args, client)
    try:
        items = load_testset(args.testset)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{args.testset}: not a test set like PandaLM's testset-v1.json ({exc})") from exc
    agreement = Agreement()
    labelled: list[tuple[int, int | None]] = []
    results: list[CompareResult | None]
    if args.from_results is not None:
        results = results_for(items, args.from_results)
    else:
        judge_info(client)
        progress = ProgressBar(f"judging {len(items)} items")
        results = list(client.batch([item.request() for item in items], progress=progress, **options_of(args)))
        progress.close()
    for item, result in zip(items, results, strict=True):
        labelled.append((item.gold, label_of(result)))
        agreement.add(*labelled[-1])
    if args.results:
        with args.results.open("w", encoding="utf-8") as out:
            for item, result in zip(items, results, strict=True):
                if result is not None:
                    out.write(json.dumps({"idx": item.idx, "gold": item.gold, **result.model_dump(mode="json")}) + "\n")
    report = agreement.report()
    report["intervals"] = bootstrap_intervals(labelled)
    if args.against is not None:
        other = [
            (item.gold, label_of(result)) for item, result in zip(items, results_for(items, args.against), strict=True)
        ]
        report["against"] = {"results": str(args.against), **compare_deployments(labelled, other)}
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return EXIT_OK


def results_for(items: list[TestItem], path: Path) -> list[CompareResult | None]:
    """Each item's result from a file of results: by id (the item's idx), else by position; None when missing."""
    by_id: dict[str, CompareResult] = {}
    by_index: dict[int, CompareResult] = {}
    for number, obj in read_jsonl(path):
        try:
            result = CompareResult.model_validate(obj)
        except ValueError as exc:
            raise InputError(f"{path}:{number}: not a compare result") from exc
        if result.id is not None:
            by_id[result.id] = result
        if result.index is not None:
            by_index[result.index] = result
    return [by_id.get(str(item.idx), by_index.get(position)) for position, item in enumerate(items)]


def _figure(value: float | None, interval: dict[str, Any] | None = None, sign: str = "") -> str:
    if value is None:
        return "undefined (one label only: chance agreement is 1)"
    if interval is None or interval["lower"] is None:
        return f"{value:{sign}.4f}"
    return f"{value:{sign}.4f}  95% [{interval['lower']:{sign}.4f}, {interval['upper']:{sign}.4f}]"


def describe(report: dict[str, Any]) -> str:
    confusion = report["confusion"]
    intervals = report["intervals"]
    lines = [
        f"items           {report['n']} ({report['without_verdict']} without a verdict, counted wrong)",
        f"accuracy        {_figure(report['accuracy'], intervals['accuracy'])}",
        f"macro precision {report['macro_precision']:.4f}",
        f"macro recall    {report['macro_recall']:.4f}",
        f"macro F1        {_figure(report['macro_f1'], intervals['macro_f1'])}",
        f"Cohen's kappa   {_figure(report['kappa'], intervals['kappa'])}",
        "",
        "confusion: rows are the human majority vote, columns the judge (0 = tie)",
        "        " + "".join(f"{label:>7}" for label in confusion["labels"]),
    ]
    for label, row in zip(confusion["labels"], confusion["counts"], strict=False):
        lines.append(f"{label:>7} " + "".join(f"{count:>7}" for count in row))
    if "against" in report:
        against = report["against"]
        mcnemar = against["mcnemar"]
        lines += [
            "",
            f"against {against['results']} (this minus that, paired bootstrap over the same items):",
            f"  right only here {mcnemar['only_first_right']}, only there {mcnemar['only_second_right']}: "
            f"McNemar exact p = {mcnemar['p']:.4g}",
        ]
        for name, d in against["differences"].items():
            lines.append(f"  {name:<10} {_figure(d['estimate'], d, '+')}")
    return "\n".join(lines)
