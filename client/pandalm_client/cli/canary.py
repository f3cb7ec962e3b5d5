"""`pandalm eval --canary [builtin|FILE]`: judge the canary on a running service, for a deployment's smoke step.

The canary (`builtin`: 30 items of PandaLM's test set with PandaLM-7B's recorded verdicts, bundled with the
client; or a FILE in PandaLM's test-set format, whose items may carry recorded verdicts in `pandalm_result`)
is judged with the verdict cache off. Prints agreement with the human labels and the share of verdicts that
differ from the recorded ones. Exit 1 when any verdict changed (an unparsed one counts as changed), 0 when
none did or nothing is recorded to compare with, 2 for a bad file or option, 4 when items could not be
judged (the service failed: retry).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._client import PandaLMClient
from ..canary import CanaryReport, load_canary, score
from ._common import options_of
from ._errors import EXIT_FAIL, EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USAGE, INPUT_ERROR_CODES, UsageError, item_errors
from ._io import InputError, ProgressBar
from ._judge import judge_names, served_judges

# Flags of `pandalm eval` about a test set's results, which a canary run does not take.
_EVAL_ONLY = {"--results": "results", "--from-results": "from_results", "--against": "against"}


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    """Judge the canary `args.canary`; the exit code says whether verdicts changed."""
    given = [flag for flag, value in _EVAL_ONLY.items() if getattr(args, value, None) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} do(es) not apply to --canary")
    try:
        items = load_canary(args.canary)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{args.canary}: not a canary (PandaLM's test-set format) ({exc})") from exc
    names = judge_names(args)
    if len(names) > 1:
        raise UsageError("--canary checks one judge at a time: give one --judge")
    judges = served_judges(client, names)
    progress = ProgressBar(f"judging the canary's {len(items)} items")
    # The cache off whatever the flags say: a remembered verdict says nothing about this deployment.
    options = {**options_of(args), "cache": False}
    results = client.batch([c.item.request() for c in items], progress=progress, judge=judges.choice, **options)
    progress.close()
    failed = [
        (f"{args.canary} item {c.item.idx}", r) for c, r in zip(items, results, strict=True) if r.status == "error"
    ]
    if failed:
        print(f"pandalm: {item_errors(failed)}", file=sys.stderr)
        codes = {r.error.code for _, r in failed if r.error is not None}
        return EXIT_USAGE if codes and codes <= INPUT_ERROR_CODES else EXIT_INFRASTRUCTURE
    report = score(items, results)
    print(report.model_dump_json(indent=2) if args.json else describe(report))
    return EXIT_FAIL if report.changed else EXIT_OK


def _figure(value: float | None) -> str:
    return "undefined (one label only)" if value is None else f"{value:.4f}"


def describe(report: CanaryReport) -> str:
    """The report for a terminal."""
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(report.statuses.items()))
    lines = [
        f"items           {report.items} ({statuses})",
        f"accuracy        {_figure(report.accuracy)}",
        f"macro F1        {_figure(report.macro_f1)}",
        f"Cohen's kappa   {_figure(report.kappa)}",
    ]
    if report.baseline == "none":
        lines.append("changed         not measured: the canary has no recorded verdicts to compare with")
        return "\n".join(lines)
    baseline: dict[str, Any] = report.baseline_agreement or {}
    lines += [
        f"recorded        accuracy {_figure(baseline.get('accuracy'))}, macro F1 {_figure(baseline.get('macro_f1'))}, "
        f"kappa {_figure(baseline.get('kappa'))} ({report.compared} items with a recorded verdict)",
        f"changed         {report.changed} of {report.compared} ({(report.changed_ratio or 0):.2%})",
    ]
    if report.changed_ids:
        lines.append("changed items   idx " + ", ".join(map(str, report.changed_ids)))
    return "\n".join(lines)
