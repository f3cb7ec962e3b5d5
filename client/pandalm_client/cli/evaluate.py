"""`pandalm eval testset.json`: the served judge's agreement with human labels.

The file is shaped like PandaLM's published test set (`testset-v1.json`: `idx`, `instruction`,
`input`, `response1`, `response2`, `annotator1`..`annotator3`, 0 = tie), or it is your own labelled
pairs, JSON Lines ending `.jsonl`: `{"id"?, "instruction", "input"?, "response1", "response2", "label"}`
with `label` one of `response1`, `response2`, `tie`. The gold label is the annotators' majority vote (or
the `label`); an item the judge gave no verdict for counts as wrong. Served by
PandaLM-7B, this reproduces PandaLM's published accuracy and F1: the check of a deployment (after
quantisation, say) before trusting it. Accuracy, macro F1 and kappa come with 95% bootstrap intervals
over items (1000 resamples, seeded); `--against other-results.jsonl` compares this deployment with
another judged on the same set: McNemar's exact test on the items each got right, and a paired
bootstrap of the metric differences.

`--judge NAME` evaluates that judge of the service; given several times, each judge in turn on the same
items, side by side (accuracy, macro F1, kappa, the share without a verdict) with McNemar's test of the
two most accurate: which judge agrees best with these labels, before choosing one.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._client import PandaLMClient
from ..evaluation import Labelled, bootstrap_intervals, compare_deployments
from ..models import CompareResult
from ..testset import Agreement, TestItem, load_labelled_pairs, load_testset
from ..testset import result_label as label_of
from . import canary
from ._common import add_option_flags, options_of
from ._errors import EXIT_OK, UsageError
from ._io import InputError, ProgressBar, read_jsonl
from ._judge import add_judge_flag, judge_names, served_judges
from ._judges_table import JudgeEvaluation, judges_json, judges_table


def register(commands: Any) -> None:
    parser = commands.add_parser("eval", help="agreement with human labels", description=__doc__)
    parser.add_argument(
        "testset",
        type=Path,
        nargs="?",
        help="PandaLM's published human-labelled test set (testset-v1.json: data/pandalm/ in the pandalm-serve "
        "repository, from WeOpenML/PandaLM's data/ folder, Apache-2.0) or a file shaped like it; or your own "
        'labelled pairs, a .jsonl file of {"id"?, "instruction", "input"?, "response1", "response2", "label"}, '
        "label being response1, response2 or tie",
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
    add_judge_flag(parser, several="several judges, each evaluated on the same items and compared side by side")
    add_option_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    if (args.canary is None) == (args.testset is None):
        raise UsageError("give either a test set or --canary, one of the two")
    if args.canary is not None:
        return canary.run(args, client)
    names = judge_names(args)
    if names and args.from_results is not None:
        raise UsageError("--judge has the service judge; --from-results scores results already judged: give one")
    if len(names) > 1 and args.against is not None:
        raise UsageError("--against compares with one deployment; several --judge are compared with each other")
    items = labelled_items(args.testset)
    if args.from_results is None:
        served_judges(client, names)
    if len(names) > 1:
        evaluations = {}
        for name in names:
            judged = judge_items(client, items, args, name)
            if args.results:  # one file per judge: results.NAME.jsonl beside the one named
                write_results(args.results.with_name(f"{args.results.stem}.{name}{args.results.suffix}"), items, judged)
            evaluations[name] = JudgeEvaluation(name, judged, *score(items, judged))
        print(judges_json(evaluations) if args.json else judges_table(evaluations))
        return EXIT_OK
    results: list[CompareResult | None]
    if args.from_results is not None:
        results = results_for(items, args.from_results)
    else:
        results = list(judge_items(client, items, args, names[0] if names else None))
    if args.results:
        write_results(args.results, items, results)
    report, labelled = score(items, results)
    if names:
        report = {"judge": names[0], **report}
    if args.against is not None:
        other = [
            (item.gold, label_of(result)) for item, result in zip(items, results_for(items, args.against), strict=True)
        ]
        report["against"] = {"results": str(args.against), **compare_deployments(labelled, other)}
    print(json.dumps(report, indent=2) if args.json else describe(report))
    return EXIT_OK


def labelled_items(path: Path) -> list[TestItem]:
    """The labelled items of a test set shaped like PandaLM's, or of a JSON Lines file of labelled pairs."""
    if path.suffix == ".jsonl":
        try:
            return load_labelled_pairs(list(read_jsonl(path)))
        except ValueError as exc:
            raise InputError(f"{path}: not a file of labelled pairs ({exc})") from exc
    try:
        return load_testset(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a test set like PandaLM's testset-v1.json ({exc})") from exc


def judge_items(
    client: PandaLMClient, items: list[TestItem], args: argparse.Namespace, judge: str | None
) -> list[CompareResult]:
    """Every item judged by `judge` (None: the service's default), with the command's options."""
    progress = ProgressBar(f"judging {len(items)} items" + (f" with {judge}" if judge else ""))
    results = client.batch([item.request() for item in items], progress=progress, judge=judge, **options_of(args))
    progress.close()
    return results


def write_results(path: Path, items: list[TestItem], results: Sequence[CompareResult | None]) -> None:
    """Each item's result as a JSON line, with the item's `idx` and gold label (`--from-results` reads them)."""
    with path.open("w", encoding="utf-8") as out:
        for item, result in zip(items, results, strict=True):
            if result is not None:
                out.write(json.dumps({"idx": item.idx, "gold": item.gold, **result.model_dump(mode="json")}) + "\n")


def score(items: list[TestItem], results: Sequence[CompareResult | None]) -> tuple[dict[str, Any], list[Labelled]]:
    """The agreement report of `results` (with bootstrap intervals), and each item's (gold, judge's) labels."""
    agreement = Agreement()
    labelled: list[Labelled] = []
    for item, result in zip(items, results, strict=True):
        labelled.append((item.gold, label_of(result)))
        agreement.add(*labelled[-1])
    report = agreement.report()
    report["intervals"] = bootstrap_intervals(labelled)
    return report, labelled


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
    return [by_id.get(item.key, by_index.get(position)) for position, item in enumerate(items)]


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
