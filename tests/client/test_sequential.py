"""The anytime-valid gate (`pandalm gate --sequential`): re-runs with more prompts keep the false-pass rate.

By simulation, seeded: a team that adds 100 prompts at a time and re-runs after each, up to 800, passes a
candidate at the margin boundary (mean score 0.45) at most alpha + 0.01 of the time, at any tie rate. The
fixed-n test under the same re-runs is shown to exceed alpha, which is why the mode exists.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pandalm_client.sequential import bets, sequential_stats
from pandalm_client.stats import wins_needed

ALPHA = 0.05
LOOKS = np.arange(100, 801, 100)
RUNS = 4000


def boundary_scores(tie_rate: float, runs: int, seed: int) -> np.ndarray:
    """Scores at the margin boundary: p_win - p_loss = -0.1, ties at `tie_rate`."""
    p_win = max((1 - tie_rate - 0.1) / 2, 0.0)
    p_loss = max(1 - tie_rate - p_win, 0.0)
    rng = np.random.default_rng(seed)
    return rng.choice([1.0, 0.5, 0.0], size=(runs, int(LOOKS[-1])), p=[p_win, 1 - p_win - p_loss, p_loss])


def vectorised_bets(scores: np.ndarray, confidence: float) -> np.ndarray:
    """`bets` for many runs at once; checked equal to it below."""
    steps = np.arange(1, scores.shape[1] + 1)
    means = (0.5 + np.cumsum(scores, axis=1)) / (steps + 1)
    variances = (0.25 + np.cumsum((scores - means) ** 2, axis=1)) / (steps + 1)
    before = np.concatenate([np.full((scores.shape[0], 1), 0.25), variances[:, :-1]], axis=1)
    return np.minimum(np.sqrt(2 * np.log(1 / (1 - confidence)) / (before * steps * np.log1p(steps))), 0.5)


def sequential_passes(scores: np.ndarray, threshold: float = 0.45) -> np.ndarray:
    """Per run and look: has the capital against a mean <= threshold reached 1/alpha by then?"""
    capital = np.cumsum(np.log1p(vectorised_bets(scores, 1 - ALPHA) * (scores - threshold)), axis=1)
    return np.maximum.accumulate(capital, axis=1)[:, LOOKS - 1] >= np.log(1 / ALPHA)


def test_the_vectorised_computation_is_the_clients() -> None:
    scores = boundary_scores(0.3, 3, seed=19)
    assert np.allclose(vectorised_bets(scores, 0.95), [bets(row.tolist(), 0.95) for row in scores], rtol=1e-12)
    # Scores from an equal candidate, so that some looks pass and some do not.
    better = np.random.default_rng(18).choice([1.0, 0.5, 0.0], size=(40, int(LOOKS[-1])), p=[0.35, 0.3, 0.35])
    expected = sequential_passes(better)
    for row, looks in zip(better, expected, strict=True):
        got = [sequential_stats(row[:n].tolist()).outcome == "pass" for n in LOOKS]
        assert got == looks.tolist()
    assert expected.any() and not expected.all()


@pytest.mark.parametrize("tie_rate", [0.0, 0.3, 0.6, 0.9])
def test_repeated_looks_keep_the_false_pass_rate(tie_rate: float) -> None:
    rate = sequential_passes(boundary_scores(tie_rate, RUNS, seed=20)).any(axis=1).mean()
    # 4000 runs: the standard error at 0.05 is 0.0034, so a true rate above 0.06 would show here.
    assert rate <= ALPHA + 0.01


def test_the_fixed_n_gate_does_not_survive_repeated_looks() -> None:
    scores = boundary_scores(0.5, RUNS, seed=21)
    passed = np.zeros(RUNS, dtype=bool)
    for n in LOOKS:
        needed = np.asarray(wins_needed(int(n)))
        wins = (scores[:, :n] == 1.0).sum(axis=1)
        ties = (scores[:, :n] == 0.5).sum(axis=1)
        passed |= wins >= needed[ties]
    assert passed.mean() > ALPHA + 0.05  # 0.14 with this seed


def test_the_sequential_gate_still_passes_a_better_candidate() -> None:
    rng = np.random.default_rng(22)
    scores = rng.choice([1.0, 0.5, 0.0], size=(RUNS, int(LOOKS[-1])), p=[0.4, 0.3, 0.3])  # mean 0.55
    assert sequential_passes(scores)[:, -1].mean() >= 0.8


def test_the_bounds_cover_the_mean_and_agree_with_the_outcome() -> None:
    # In a random order: sorted, the wins first, the early looks would rightly reject every mean below 0.9.
    rng = np.random.default_rng(23)
    stats = sequential_stats(rng.permutation([1.0] * 300 + [0.5] * 400 + [0.0] * 300).tolist())
    assert stats.lower < 0.5 < stats.upper
    assert stats.lower > 0.45 and stats.outcome == "pass"
    worse = sequential_stats(rng.permutation([1.0] * 200 + [0.5] * 300 + [0.0] * 500).tolist())
    assert worse.upper < 0.45 and worse.outcome == "fail"


def test_bets_depend_only_on_earlier_scores() -> None:
    scores = [1.0, 0.0, 0.5, 1.0, 1.0, 0.0]
    first = bets(scores, 0.95)
    changed = bets([*scores[:3], 0.0, 0.0, 1.0], 0.95)
    assert first[:4] == changed[:4]  # bet i sees scores 1..i-1 only
    # The first bet, from the prior variance 1/4: sqrt(2 log 20 / (0.25 log 2)), capped at 1/2.
    assert first[0] == min(math.sqrt(2 * math.log(20) / (0.25 * math.log(2))), 0.5)
