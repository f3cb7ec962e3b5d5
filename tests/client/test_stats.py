"""Tests for `pandalm_client.stats` (the gate), against reference values computed independently.

The reference values were computed once with scipy 1.17.1 and statsmodels 0.15.0 in a scratch virtualenv
(neither is a dependency of the project) and are written out here; each group says which call produced it.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from pandalm_client.stats import GateStats, gate_stats, pairs_needed, sign_test

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


def test_gate_twenty_ties_alone_do_not_pass() -> None:
    # Twenty ties are consistent with a true loss rate near 14%: not evidence of equality at margin 0.05.
    assert gate_stats([0.5] * 20).outcome == "inconclusive"
    assert gate_stats([0.5] * 200).outcome == "pass"


def test_gate_all_wins_or_all_losses() -> None:
    assert gate_stats([1.0] * 50).outcome == "pass"
    assert gate_stats([0.0] * 50).outcome == "fail"


def test_gate_bounds_agree_with_the_outcome() -> None:
    for wins, ties, losses in [(30, 40, 30), (60, 100, 40), (20, 60, 70), (5, 190, 5), (80, 0, 70)]:
        stats = gate_stats([1.0] * wins + [0.5] * ties + [0.0] * losses)
        assert stats.lower <= stats.win_rate <= stats.upper
        assert stats.difference == pytest.approx(2 * stats.win_rate - 1)
        if stats.outcome == "pass":
            assert stats.lower >= stats.threshold - 1e-9
        elif stats.outcome == "fail":
            assert stats.upper <= stats.threshold + 1e-9
        else:
            assert stats.lower <= stats.threshold <= stats.upper


def test_gate_without_scores_is_inconclusive() -> None:
    assert gate_stats([]) == GateStats(
        n=0,
        wins=0,
        ties=0,
        losses=0,
        win_rate=0.5,
        difference=0.0,
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


# Each side of the threshold 0.45 at n = 200: one win more (one loss fewer) crosses it. Found with
# wins_needed, whose region is checked against the exact enumeration in test_stats_exact.py.
@pytest.mark.parametrize(
    ("wins", "ties", "losses", "outcome"),
    [
        (77, 0, 123, "fail"),
        (78, 0, 122, "inconclusive"),
        (102, 0, 98, "inconclusive"),
        (103, 0, 97, "pass"),
        (31, 100, 69, "fail"),
        (32, 100, 68, "inconclusive"),
        (48, 100, 52, "inconclusive"),
        (49, 100, 51, "pass"),
    ],
)
def test_gate_outcome_on_each_side_of_the_threshold(wins: int, ties: int, losses: int, outcome: str) -> None:
    assert gate_stats([1.0] * wins + [0.5] * ties + [0.0] * losses).outcome == outcome


def test_gate_negative_margin_demands_superiority() -> None:
    scores = [1.0] * 110 + [0.0] * 90
    assert gate_stats(scores).outcome == "pass"
    assert gate_stats(scores, margin=-0.05).outcome == "inconclusive"
    assert gate_stats([1.0] * 130 + [0.0] * 70, margin=-0.05).outcome == "pass"


def test_pairs_needed_falls_with_the_tie_rate_and_grows_with_power() -> None:
    needed = [pairs_needed(t / 10) for t in range(10)]
    assert needed == sorted(needed, reverse=True)
    assert len(set(needed)) == len(needed)
    assert pairs_needed(0.3, power=0.9) > pairs_needed(0.3) > pairs_needed(0.3, power=0.5)


def test_pairs_needed_matches_the_closed_form_without_ties() -> None:
    # No ties, equal candidate: v1 = 1 and v0 = 1 - d0^2 at the boundary d0 = -0.1, so
    # n ~ ((z_a sqrt(0.99) + z_b) / 0.1)^2 plus the continuity correction's few prompts.
    z_a, z_b = NormalDist().inv_cdf(0.95), NormalDist().inv_cdf(0.8)
    approx = ((z_a * math.sqrt(0.99) + z_b) / 0.1) ** 2
    assert approx <= pairs_needed(0.0) <= approx + 30


def test_pairs_needed_grows_with_confidence_and_shrinks_with_margin() -> None:
    assert pairs_needed(0.3, confidence=0.99) > pairs_needed(0.3)
    assert pairs_needed(0.3, margin=0.1) < pairs_needed(0.3)


def test_pairs_needed_refuses_a_zero_margin() -> None:
    with pytest.raises(ValueError):
        pairs_needed(0.3, margin=0.0)
