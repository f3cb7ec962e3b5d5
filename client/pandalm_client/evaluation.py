"""Uncertainty of the judge's agreement with human labels, and two judge deployments compared on one set.

Bootstrap percentile intervals over items for accuracy, macro F1 and Cohen's kappa; for two deployments
judged on the same items (before and after quantisation, say), McNemar's exact test on which items each
got right and a paired bootstrap of the metric differences, resampling items once for both. Pure
standard library, like stats.py.
"""

from collections.abc import Sequence
from typing import Any

from .resampling import check_bootstrap, percentile_interval, resamples
from .stats import sign_test
from .testset import Agreement

# (gold label, the judge's label or None when it gave no verdict)
Labelled = tuple[int, int | None]
METRICS = ("accuracy", "macro_f1", "kappa")


def metrics(pairs: Sequence[Labelled]) -> dict[str, float | None]:
    """Accuracy, macro F1 and kappa of the judge's labels; kappa None where it is undefined."""
    agreement = Agreement()
    for gold, predicted in pairs:
        agreement.add(gold, predicted)
    return {"accuracy": agreement.accuracy, "macro_f1": agreement.macro()[2], "kappa": agreement.kappa}


def _interval(values: list[float | None], confidence: float) -> dict[str, Any]:
    defined = [v for v in values if v is not None]
    low, high = percentile_interval(defined, confidence) if defined else (None, None)
    # Resamples where the metric is undefined (kappa with one label only) are left out, and counted.
    return {"lower": low, "upper": high, "undefined_resamples": len(values) - len(defined)}


def bootstrap_intervals(
    pairs: Sequence[Labelled], *, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Each metric's percentile interval from `bootstrap` resamples of the items, seeded."""
    check_bootstrap(bootstrap, confidence)
    samples: dict[str, list[float | None]] = {name: [] for name in METRICS}
    for indices in resamples(len(pairs), bootstrap, seed):
        for name, value in metrics([pairs[i] for i in indices]).items():
            samples[name].append(value)
    return {name: _interval(values, confidence) for name, values in samples.items()}


def compare_deployments(
    first: Sequence[Labelled],
    second: Sequence[Labelled],
    *,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """`first` against `second` on the same items in the same order: McNemar and paired metric differences.

    Differences are first minus second. McNemar's exact test is the two-sided binomial test of the items
    only the first got right against those only the second got right (ties between the two left out).
    """
    if len(first) != len(second) or any(a[0] != b[0] for a, b in zip(first, second, strict=False)):
        raise ValueError("the two deployments must be judged on the same items, in the same order")
    check_bootstrap(bootstrap, confidence)
    only_first = sum(1 for (g, a), (_, b) in zip(first, second, strict=True) if a == g and b != g)
    only_second = sum(1 for (g, a), (_, b) in zip(first, second, strict=True) if b == g and a != g)
    point_first, point_second = metrics(first), metrics(second)
    samples: dict[str, list[float | None]] = {name: [] for name in METRICS}
    for indices in resamples(len(first), bootstrap, seed):
        a = metrics([first[i] for i in indices])
        b = metrics([second[i] for i in indices])
        for name in METRICS:
            x, y = a[name], b[name]
            samples[name].append(None if x is None or y is None else x - y)
    differences = {}
    for name in METRICS:
        x, y = point_first[name], point_second[name]
        differences[name] = {
            "estimate": None if x is None or y is None else x - y,
            **_interval(samples[name], confidence),
        }
    return {
        "items": len(first),
        "mcnemar": {
            "only_first_right": only_first,
            "only_second_right": only_second,
            "p": sign_test(only_first, only_second),
        },
        "differences": differences,
    }
