"""The gate's error rates, computed exactly over the trinomial distribution of wins, ties and losses.

Not by simulation: for a fixed number of prompts n and ties T, the gate passes exactly when the wins reach
`wins_needed(n)[T]`, so P(pass) = sum over T of P(T ties) P(wins >= threshold | n - T decisive prompts),
with the wins among the decisive prompts binomial. That is O(n) binomial terms per n and tie rate.

The tie rates are the grid 0, 0.01, ..., 0.90. The level moves slowly with the tie rate: a grid ten times
finer (step 0.001) over n = 20..120, where the lattice of outcomes is coarsest and the level most jagged,
moves the maximum by less than 0.001 (test_a_finer_tie_grid_finds_nothing_worse), against a slack of
0.01 that the coarse grid leaves.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from pandalm_client.stats import gate_stats, pairs_needed, restricted_loss_rate, wins_needed

ALPHA = 0.05
MARGIN = 0.05
BOUNDARY = -2 * MARGIN  # p_win - p_loss at a mean score of 0.45
TIE_GRID = np.round(np.arange(0.0, 0.9001, 0.01), 2)


def pass_probability(n: int, p_win: np.ndarray, p_loss: np.ndarray, needed: list[int]) -> np.ndarray:
    """Exact P(pass) at each (p_win, p_loss), for the pass region given by the thresholds `needed`."""
    ties = np.arange(n + 1)
    decisive = n - ties
    threshold = np.asarray(needed)
    tie_rate = (1 - p_win - p_loss)[:, None]
    win_share = np.clip(p_win / np.maximum(p_win + p_loss, 1e-300), 0, 1)[:, None]
    p_ties = stats.binom.pmf(ties[None, :], n, np.clip(tie_rate, 0, 1))
    # P(wins >= threshold | decisive); binom.sf(k - 1) is P(X >= k), and sf(-1) = 1.
    tail = stats.binom.sf(threshold[None, :] - 1, decisive[None, :], win_share)
    tail = np.where(threshold[None, :] > decisive[None, :], 0.0, tail)
    return (p_ties * tail).sum(axis=1)


def boundary_cells(tie_rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p_win = np.clip((1 - tie_rates + BOUNDARY) / 2, 0, 1)
    return p_win, np.clip(1 - tie_rates - p_win, 0, 1)


def test_the_false_pass_rate_at_the_margin_holds_for_every_n_and_tie_rate() -> None:
    p_win, p_loss = boundary_cells(TIE_GRID)
    worst = (0.0, 0, 0.0)
    for n in range(20, 1001):
        level = pass_probability(n, p_win, p_loss, wins_needed(n, confidence=1 - ALPHA, margin=MARGIN))
        i = int(level.argmax())
        worst = max(worst, (float(level[i]), n, float(TIE_GRID[i])))
    assert worst[0] <= ALPHA + 0.01, f"false-pass rate {worst[0]:.4f} at n = {worst[1]}, tie rate {worst[2]}"
    # Not pathologically conservative either: the level is used, to within a point.
    assert worst[0] >= ALPHA - 0.01


def test_a_finer_tie_grid_finds_nothing_worse() -> None:
    fine = np.round(np.arange(0.0, 0.9001, 0.001), 3)
    gaps = []
    for n in range(20, 121):
        needed = wins_needed(n, confidence=1 - ALPHA, margin=MARGIN)
        coarse = pass_probability(n, *boundary_cells(TIE_GRID), needed).max()
        gaps.append(pass_probability(n, *boundary_cells(fine), needed).max() - coarse)
    assert max(gaps) < 0.001


def test_the_pass_region_is_the_thresholds_in_wins() -> None:
    # What the exact computation relies on, checked against the gate itself on every outcome.
    for n in (20, 31, 44):
        needed = wins_needed(n)
        for ties in range(n + 1):
            for wins in range(n - ties + 1):
                scores = [1.0] * wins + [0.5] * ties + [0.0] * (n - ties - wins)
                assert (gate_stats(scores).outcome == "pass") == (wins >= needed[ties]), (n, ties, wins)


@pytest.mark.parametrize(
    ("p_win", "p_loss", "least"),
    [
        (0.40, 0.30, 0.9),  # mean score 0.55 with 30% ties
        (0.05, 0.05, 0.9),  # an equal candidate with 90% ties
    ],
)
def test_power_at_200_prompts(p_win: float, p_loss: float, least: float) -> None:
    power = pass_probability(200, np.array([p_win]), np.array([p_loss]), wins_needed(200))[0]
    assert power >= least


@pytest.mark.parametrize("margin", [0.05, 0.1])
@pytest.mark.parametrize("tie_rate", [0.0, 0.3, 0.6, 0.9])
@pytest.mark.parametrize("power", [0.8, 0.9])
def test_plan_reaches_its_stated_power(margin: float, tie_rate: float, power: float) -> None:
    n = pairs_needed(tie_rate, margin=margin, power=power)
    half = np.array([(1 - tie_rate) / 2])
    exact = pass_probability(n, half, half, wins_needed(n, margin=margin))[0]
    # The plan comes from a normal approximation; the exact power at that n is within two points of it.
    assert exact >= power - 0.02, (n, exact)
    # And a quarter fewer prompts would not do: the plan is not padded.
    fewer = int(n * 0.75)
    assert pass_probability(fewer, half, half, wins_needed(fewer, margin=margin))[0] < power


@pytest.mark.parametrize(
    ("wins", "losses", "n", "difference"), [(40, 30, 100, -0.1), (0, 0, 25, -0.1), (5, 2, 50, 0.1)]
)
def test_restricted_loss_rate_is_the_constrained_maximum_likelihood(
    wins: int, losses: int, n: int, difference: float
) -> None:
    ties = n - wins - losses

    def negative_log_likelihood(q: float) -> float:
        return -(
            wins * np.log(q + difference + 1e-300) + losses * np.log(q + 1e-300) + ties * np.log(1 - 2 * q - difference)
        )

    low, high = max(0.0, -difference), (1 - difference) / 2
    best = optimize.minimize_scalar(
        negative_log_likelihood, bounds=(low, high), method="bounded", options={"xatol": 1e-12}
    )
    assert restricted_loss_rate(wins, losses, n, difference) == pytest.approx(best.x, abs=1e-6)


@pytest.mark.parametrize(
    ("confidence", "margin"), [(0.95, 0.1), (0.95, 0.02), (0.9, 0.05), (0.99, 0.05), (0.95, -0.05)]
)
def test_the_level_holds_at_other_margins_and_confidences(confidence: float, margin: float) -> None:
    # Lighter than the default's check (n up to 200), but every tie rate the boundary allows.
    boundary = -2 * margin
    tie_rates = np.round(np.arange(0.0, 1 - abs(boundary) + 1e-9, 0.01), 2)
    p_win = np.clip((1 - tie_rates + boundary) / 2, 0, 1)
    p_loss = np.clip(1 - tie_rates - p_win, 0, 1)
    worst = max(
        pass_probability(n, p_win, p_loss, wins_needed(n, confidence=confidence, margin=margin)).max()
        for n in range(20, 201)
    )
    assert worst <= (1 - confidence) * 1.2
