"""`pandalm eval --judge a --judge b`: several judges' agreement with the same labels, side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..evaluation import Labelled, compare_deployments
from ..models import CompareResult

_METRICS = (("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("kappa", "kappa"))


@dataclass(frozen=True, slots=True)
class JudgeEvaluation:
    """One judge's results on the labelled items, their agreement report, and each item's (gold, judge's) labels."""

    name: str
    results: list[CompareResult]
    report: dict[str, Any]
    labelled: list[Labelled]

    def share(self, status: str) -> float:
        """The share of items whose result has this status (`unparsed`, `error`)."""
        return sum(1 for r in self.results if r.status == status) / len(self.results) if self.results else 0.0

    def summary(self) -> dict[str, Any]:
        """The judge's report, named, with the shares of items left unparsed and failed."""
        return {
            "judge": self.name,
            **self.report,
            "unparsed_share": round(self.share("unparsed"), 4),
            "error_share": round(self.share("error"), 4),
        }


def _most_accurate(evaluations: dict[str, JudgeEvaluation]) -> tuple[JudgeEvaluation, JudgeEvaluation, dict[str, Any]]:
    """The two most accurate judges (the first given wins a tie), and the paired comparison of the two."""
    ranked = sorted(evaluations.values(), key=lambda e: -e.report["accuracy"])
    best, next_best = ranked[0], ranked[1]
    return best, next_best, compare_deployments(best.labelled, next_best.labelled)


def judges_json(evaluations: dict[str, JudgeEvaluation]) -> str:
    """One object per judge, in the order given; the most accurate one's `against` compares it with the next."""
    best, next_best, comparison = _most_accurate(evaluations)
    objects = []
    for evaluation in evaluations.values():
        summary = evaluation.summary()
        if evaluation is best:
            summary["against"] = {"judge": next_best.name, **comparison}
        objects.append(summary)
    return json.dumps(objects, indent=2)


def _cell(report: dict[str, Any], metric: str) -> str:
    value, interval = report[metric], report["intervals"][metric]
    if value is None:
        return "undefined"
    if interval["lower"] is None:
        return f"{value:.4f}"
    return f"{value:.4f} [{interval['lower']:.3f}, {interval['upper']:.3f}]"


def judges_table(evaluations: dict[str, JudgeEvaluation]) -> str:
    """The judges side by side, then whether the most accurate one's lead over the next is more than chance."""
    width = max(len("judge"), *(len(name) for name in evaluations))
    any_report = next(iter(evaluations.values())).report
    lines = [
        f"{any_report['n']} labelled items; 95% bootstrap intervals; an item without a verdict counts as wrong",
        "",
        f"{'judge':<{width}}  " + "".join(f"{title:<25}" for _, title in _METRICS) + "unparsed  failed",
    ]
    for name, evaluation in evaluations.items():
        cells = "".join(f"{_cell(evaluation.report, metric):<25}" for metric, _ in _METRICS)
        lines.append(f"{name:<{width}}  {cells}{evaluation.share('unparsed'):>8.1%}  {evaluation.share('error'):>6.1%}")
    best, next_best, comparison = _most_accurate(evaluations)
    mcnemar, difference = comparison["mcnemar"], comparison["differences"]["accuracy"]
    interval = (
        f" 95% [{difference['lower']:+.4f}, {difference['upper']:+.4f}]" if difference["lower"] is not None else ""
    )
    ahead = best.report["accuracy"] > next_best.report["accuracy"]
    lead = (
        f"most accurate: {best.name}; against {next_best.name}, the next"
        if ahead
        else (f"{best.name} and {next_best.name} are the most accurate, equally")
    )
    lines += [
        "",
        f"{lead}: right only with {best.name} "
        f"{mcnemar['only_first_right']}, only with {next_best.name} {mcnemar['only_second_right']}, "
        f"McNemar exact p = {mcnemar['p']:.4g}; accuracy difference {difference['estimate']:+.4f}{interval}",
    ]
    return "\n".join(lines)
