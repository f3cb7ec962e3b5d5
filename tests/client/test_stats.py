"""Tests for `pandalm_client.stats` (the gate), against reference values computed independently.

The reference values were computed once with scipy 1.17.1 and statsmodels 0.15.0 in a scratch virtualenv
(neither is a dependency of the project) and are written out here; each group says which call produced it.
"""

from __future__ import annotations

import math
import statistics
from statistics import NormalDist

import pytest

from pandalm_client.stats import GateStats, gate_stats, pairs_needed, sign_test, wilson_bounds

# statsmodels.stats.proportion.proportion_confint(p * n, n, alpha=2 * (1 - confidence), method="wilson"):
# a one-sided bound at `confidence` is one end of the two-sided interval at 2 * confidence - 1.
WILSON_REFERENCE = [
    # (p, n, confidence, lower, upper)
    (0.5, 10, 0.95, 0.2692718211382672, 0.7307281788617328),
    (0.0, 10, 0.95, 0.0, 0.21294197008340698),
    (1.0, 10, 0.95, 0.787058029916593, 1.0),
    (0.3, 7, 0.9, 0.13465452724864332, 0.5413604351334902),
    (0.9, 40, 0.975, 0.7694822477247771, 0.9604204713173936),
    (0.5, 1, 0.95, 0.07276059076439767, 0.9272394092356023),
    (0.62, 271.5, 0.95, 0.5705870405943582, 0.6670449167293214),
    (0.1, 3, 0.8, 0.02465268253581268, 0.3281550788842834),
]

# scipy.stats.binomtest(k, n, 0.5).pvalue (alternative="two-sided", the default).
SIGN_TEST_REFERENCE = [
    # (wins, losses, p-value)
    (0, 1, 1.0),
    (0, 10, 0.001953125),
    (3, 7, 0.34375),
    (7, 3, 0.34375),
    (5, 5, 1.0),
    (4, 5, 1.0),
    (1, 19, 4.00543212890625e-05),
    (12, 8, 0.5034446716308594),
    (0, 30, 1.862645149230957e-09),
    (5200, 4800, 6.593515598672343e-05),
    (4800, 5200, 6.593515598672343e-05),
    (49800, 50200, 0.2070389717642225),
    (50400, 49600, 0.01151492549022902),
]


@pytest.mark.parametrize(("p", "n", "confidence", "lower", "upper"), WILSON_REFERENCE)
def test_wilson_bounds_match_statsmodels(p: float, n: float, confidence: float, lower: float, upper: float) -> None:
    got = wilson_bounds(p, n, confidence)
    assert got == pytest.approx((lower, upper), rel=1e-12, abs=1e-15)


def test_wilson_bounds_are_exact_at_the_ends() -> None:
    assert wilson_bounds(0.0, 10, 0.95)[0] == 0.0
    assert wilson_bounds(1.0, 10, 0.95)[1] == 1.0


def test_wilson_bounds_without_data_are_uninformative() -> None:
    assert wilson_bounds(0.5, 0, 0.95) == (0.0, 1.0)


@pytest.mark.parametrize(("p", "n", "confidence"), [(1.5, 10, 0.95), (0.5, -1, 0.95), (0.5, 10, 1.0)])
def test_wilson_bounds_refuse_bad_arguments(p: float, n: float, confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_bounds(p, n, confidence)


@pytest.mark.parametrize(("wins", "losses", "expected"), SIGN_TEST_REFERENCE)
def test_sign_test_matches_scipy(wins: int, losses: int, expected: float) -> None:
    assert sign_test(wins, losses) == pytest.approx(expected, rel=1e-9)


def test_sign_test_without_decisive_prompts_is_one() -> None:
    assert sign_test(0, 0) == 1.0


def test_sign_test_survives_the_largest_samples() -> None:
    # 2 * 0.5 ** 100000 underflows to 0 (scipy also returns 0.0); what matters is no OverflowError.
    assert sign_test(0, 100_000) == 0.0
    assert sign_test(50_000, 50_000) == 1.0


def test_gate_sign_test_leaves_ties_out() -> None:
    with_ties = gate_stats([1.0] * 7 + [0.5] * 40 + [0.0] * 3)
    assert with_ties.sign_test_p == pytest.approx(0.34375, rel=1e-9)  # binomtest(7, 10, 0.5)


def test_gate_counts_and_win_rate() -> None:
    stats = gate_stats([1.0, 1.0, 0.5, 0.5, 0.0], confidence=0.9, margin=0.1)
    assert (stats.n, stats.wins, stats.ties, stats.losses) == (5, 2, 2, 1)
    assert stats.win_rate == pytest.approx(0.6)
    assert stats.threshold == pytest.approx(0.4)


def test_gate_ties_raise_the_effective_sample_size() -> None:
    scores = [1.0, 1.0, 0.5, 0.5, 0.0]
    stats = gate_stats(scores)
    # By hand: p = 0.6, s2 = (0.16 + 0.16 + 0.01 + 0.01 + 0.36) / 5 = 0.14, n_eff = 5 * 0.24 / 0.14 = 60 / 7.
    assert stats.n_eff == pytest.approx(60 / 7, rel=1e-12)
    assert stats.n_eff == pytest.approx(5 * 0.6 * 0.4 / statistics.pvariance(scores), rel=1e-12)
    assert stats.n_eff > stats.n
    assert (stats.lower, stats.upper) == pytest.approx(wilson_bounds(0.6, 60 / 7, 0.95), rel=1e-12)


def test_gate_all_ties_is_capped_at_n_squared_and_passes() -> None:
    stats = gate_stats([0.5] * 20)
    assert stats.n_eff == 400.0
    assert stats.win_rate == 0.5
    assert stats.outcome == "pass"
    assert stats.sign_test_p == 1.0


def test_gate_all_wins_or_all_losses_keep_n() -> None:
    wins = gate_stats([1.0] * 50)
    losses = gate_stats([0.0] * 50)
    assert (wins.n_eff, wins.outcome) == (50.0, "pass")
    assert (losses.n_eff, losses.outcome) == (50.0, "fail")


def test_gate_without_scores_is_inconclusive() -> None:
    assert gate_stats([]) == GateStats(
        n=0,
        wins=0,
        ties=0,
        losses=0,
        win_rate=0.5,
        n_eff=0.0,
        lower=0.0,
        upper=1.0,
        outcome="inconclusive",
        sign_test_p=1.0,
        threshold=0.5 - 0.05,
    )


@pytest.mark.parametrize("bad", [0.75, -1.0, 2.0])
def test_gate_refuses_scores_other_than_win_tie_loss(bad: float) -> None:
    with pytest.raises(ValueError):
        gate_stats([1.0, bad])


# Each side of the threshold 0.45, n = 200. Bounds from statsmodels' proportion_confint as above (alpha=0.1).
# Without ties n_eff = n. With 100 ties p = (w + 50) / 200 and n_eff = n p (1 - p) / s2, computed by hand.
@pytest.mark.parametrize(
    ("wins", "ties", "losses", "outcome", "lower", "upper"),
    [
        (78, 0, 122, "fail", 0.3350993567917294, 0.4478370185523213),
        (79, 0, 121, "inconclusive", 0.3399071885775514, 0.45289571515995153),
        (101, 0, 99, "inconclusive", 0.44717115777439265, 0.5626953706190596),
        (102, 0, 98, "pass", 0.45211297211941676, 0.5676200846674877),
        (32, 100, 68, "inconclusive", 0.37094288658470376, 0.45022619753557047),
        (49, 100, 51, "pass", 0.4540546869758737, 0.5360124905123523),
    ],
)
def test_gate_outcome_on_each_side_of_the_threshold(
    wins: int, ties: int, losses: int, outcome: str, lower: float, upper: float
) -> None:
    stats = gate_stats([1.0] * wins + [0.5] * ties + [0.0] * losses)
    assert stats.outcome == outcome
    assert (stats.lower, stats.upper) == pytest.approx((lower, upper), rel=1e-12)


# The closest calls found in a search over n = 150: bounds within 1e-4 of 0.45, and one win fewer or more.
# n_eff from numpy (n * p * (1 - p) / x.var() on the score array), bounds from proportion_confint as above.
@pytest.mark.parametrize(
    ("wins", "ties", "losses", "outcome", "n_eff", "lower", "upper"),
    [
        (42, 66, 42, "pass", 267.85714285714283, 0.45000077070549666, 0.5499992292945034),
        (41, 66, 43, "inconclusive", 267.89456970466813, 0.44340861708863255, 0.5433913603601334),
        (23, 76, 52, "fail", 316.28767645936654, 0.35959026541972966, 0.4499856532795187),
        (24, 76, 51, "inconclusive", 314.5405813514534, 0.3659220581717928, 0.45679490758984753),
    ],
)
def test_gate_outcome_on_the_closest_calls(
    wins: int, ties: int, losses: int, outcome: str, n_eff: float, lower: float, upper: float
) -> None:
    stats = gate_stats([1.0] * wins + [0.5] * ties + [0.0] * losses)
    assert stats.outcome == outcome
    assert stats.n_eff == pytest.approx(n_eff, rel=1e-12)
    assert (stats.lower, stats.upper) == pytest.approx((lower, upper), rel=1e-12)


def test_gate_negative_margin_demands_superiority() -> None:
    scores = [1.0] * 102 + [0.0] * 98
    assert gate_stats(scores).outcome == "pass"
    assert gate_stats(scores, margin=-0.05).outcome == "inconclusive"  # the upper bound 0.568 clears 0.55


def test_pairs_needed_matches_the_closed_form() -> None:
    z = NormalDist().inv_cdf(0.95)
    rates = [i / 10 for i in range(11)]
    needed = [pairs_needed(t) for t in rates]
    # At p = 0.5 the Wilson lower bound is 0.5 - z / (2 sqrt(n_eff + z^2)) exactly, so the gate passes from
    # n_eff >= (z / 2m)^2 - z^2; the usual approximation drops the z^2.
    for t, n in zip(rates[:-1], needed[:-1], strict=True):
        assert n == math.ceil((1 - t) * ((z / 0.1) ** 2 - z**2))
        assert abs(n - (1 - t) * (z / 0.1) ** 2) <= 4
    assert needed[0] == 268
    # All ties: n_eff = n^2 >= 267.9.
    assert needed[-1] == 17
    assert needed == sorted(needed, reverse=True)
    assert len(set(needed)) == len(needed)


def test_pairs_needed_agrees_with_the_gate() -> None:
    n = pairs_needed(0.0)
    half = n // 2
    assert gate_stats([1.0] * half + [0.0] * half).outcome == "pass"
    assert gate_stats([1.0] * (half - 1) + [0.0] * (half - 1)).outcome == "inconclusive"


def test_pairs_needed_grows_with_confidence_and_shrinks_with_margin() -> None:
    assert pairs_needed(0.3, confidence=0.99) > pairs_needed(0.3)
    assert pairs_needed(0.3, margin=0.1) < pairs_needed(0.3)


def test_pairs_needed_refuses_a_zero_margin() -> None:
    with pytest.raises(ValueError):
        pairs_needed(0.3, margin=0.0)
