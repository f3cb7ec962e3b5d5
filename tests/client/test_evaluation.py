"""`pandalm_client.evaluation` against independent implementations: scikit-learn's metrics, statsmodels'
McNemar test, and a bootstrap of the same statistic with numpy's generator."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score
from statsmodels.stats.contingency_tables import mcnemar

from pandalm_client.evaluation import bootstrap_intervals, compare_deployments, metrics

MISSING = -1  # scikit-learn's stand-in for "no verdict": a fourth label that is never right


def judged(seed: int, n: int = 300, accuracy: float = 0.7) -> tuple[list[int], list[int | None]]:
    rng = np.random.default_rng(seed)
    gold = rng.choice([0, 1, 2], size=n, p=[0.2, 0.4, 0.4])
    right = rng.random(n) < accuracy
    guess = rng.choice([0, 1, 2], size=n)
    predicted: list[int | None] = [int(g) if r else int(x) for g, r, x in zip(gold, right, guess, strict=True)]
    for i in rng.choice(n, size=n // 30, replace=False):
        predicted[i] = None
    return gold.tolist(), predicted


def sklearn_metrics(gold: list[int], predicted: list[int | None]) -> dict[str, float]:
    y = [MISSING if p is None else p for p in predicted]
    return {
        "accuracy": accuracy_score(gold, y),
        "macro_f1": f1_score(gold, y, labels=[0, 1, 2], average="macro", zero_division=0),
        "kappa": cohen_kappa_score(gold, y),
    }


def resampled_metrics(gold: list[int], predicted: list[int | None], draws: np.ndarray) -> dict[str, np.ndarray]:
    """The three metrics on every resample at once, from confusion matrices (gold 0-2 by predicted 0-2, none)."""
    g = np.asarray(gold)[draws]
    p = np.asarray([3 if x is None else x for x in predicted])[draws]
    codes = np.arange(len(draws))[:, None] * 12 + g * 4 + p
    confusion = np.bincount(codes.ravel(), minlength=12 * len(draws)).reshape(-1, 3, 4).astype(float)
    n = draws.shape[1]
    right = confusion[:, [0, 1, 2], [0, 1, 2]]
    accuracy = right.sum(axis=1) / n
    precision = np.divide(right, confusion[:, :, :3].sum(axis=1), out=np.zeros_like(right), where=right > 0)
    recall = right / confusion.sum(axis=2)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(right), where=right > 0)
    expected = (confusion.sum(axis=2) * confusion[:, :, :3].sum(axis=1)).sum(axis=1) / n**2
    return {"accuracy": accuracy, "macro_f1": f1.mean(axis=1), "kappa": (accuracy - expected) / (1 - expected)}


def test_metrics_match_scikit_learn() -> None:
    gold, predicted = judged(seed=1)
    ours = metrics(list(zip(gold, predicted, strict=True)))
    assert ours == pytest.approx(sklearn_metrics(gold, predicted), rel=1e-12)
    # And the vectorised version the bootstrap tests use, on the identity resample.
    vectorised = resampled_metrics(gold, predicted, np.arange(len(gold))[None, :])
    assert {k: v[0] for k, v in vectorised.items()} == pytest.approx(ours, rel=1e-12)


def test_kappa_is_undefined_when_both_sides_give_one_label() -> None:
    assert metrics([(1, 1)] * 10)["kappa"] is None
    assert metrics([])["kappa"] is None
    assert metrics([(1, 1)] * 9 + [(2, 1)])["kappa"] == pytest.approx(0.0)  # defined, and no better than chance


def test_bootstrap_intervals_match_an_independent_bootstrap() -> None:
    gold, predicted = judged(seed=2)
    pairs = list(zip(gold, predicted, strict=True))
    ours = bootstrap_intervals(pairs, bootstrap=1000, seed=3)
    theirs = resampled_metrics(gold, predicted, np.random.default_rng(4).integers(0, len(gold), (4000, len(gold))))
    for name in ("accuracy", "macro_f1", "kappa"):
        low, high = np.percentile(theirs[name], [2.5, 97.5])
        # Half-widths are about 0.05; two bootstraps of 1000 agree to Monte Carlo noise of about 0.005.
        assert ours[name]["lower"] == pytest.approx(low, abs=0.015), name
        assert ours[name]["upper"] == pytest.approx(high, abs=0.015), name
        assert ours[name]["undefined_resamples"] == 0


def test_compare_deployments_matches_statsmodels_mcnemar_and_a_paired_bootstrap() -> None:
    gold, first = judged(seed=5, accuracy=0.75)
    # The second deployment agrees with the first on most items, as a quantised judge would: only a paired
    # bootstrap, drawing the same items for both, gets the narrow interval of their difference right.
    rng = np.random.default_rng(6)
    second = [int(rng.integers(0, 3)) if rng.random() < 0.15 else p for p in first]
    result = compare_deployments(
        list(zip(gold, first, strict=True)), list(zip(gold, second, strict=True)), bootstrap=1000, seed=7
    )
    right_1 = np.array([p == g for g, p in zip(gold, first, strict=True)])
    right_2 = np.array([p == g for g, p in zip(gold, second, strict=True)])
    table = [
        [np.sum(right_1 & right_2), np.sum(right_1 & ~right_2)],
        [np.sum(~right_1 & right_2), np.sum(~right_1 & ~right_2)],
    ]
    assert result["mcnemar"]["p"] == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-9)
    assert result["mcnemar"]["only_first_right"] == table[0][1]
    draws = np.random.default_rng(8).integers(0, len(gold), (4000, len(gold)))
    one, two = resampled_metrics(gold, first, draws), resampled_metrics(gold, second, draws)  # paired: same draws
    point_1, point_2 = sklearn_metrics(gold, first), sklearn_metrics(gold, second)
    for name in ("accuracy", "macro_f1", "kappa"):
        difference = result["differences"][name]
        assert difference["estimate"] == pytest.approx(point_1[name] - point_2[name], rel=1e-12)
        low, high = np.percentile(one[name] - two[name], [2.5, 97.5])
        assert difference["lower"] == pytest.approx(low, abs=0.015), name
        assert difference["upper"] == pytest.approx(high, abs=0.015), name


def test_compare_deployments_refuses_different_items() -> None:
    with pytest.raises(ValueError, match="same items"):
        compare_deployments([(1, 1), (2, 2)], [(2, 1), (1, 2)])
