"""Statistics of the CI gate: Wilson bounds on a tie-corrected sample, the sign test, prompts needed.

Pure standard library, so that the client stays light: no numpy, no scipy. The ranking of several
models is in ranking.py.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

GateOutcome = Literal["pass", "fail", "inconclusive"]

# scipy.stats.binomtest's relative tolerance: outcomes whose probability is within this factor of the
# observed one count as "no more likely", so that rounding in the pmf cannot drop a symmetric term.
_BINOM_RTOL = 1e-7


def _one_sided_z(confidence: float) -> float:
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    return NormalDist().inv_cdf(confidence)


def wilson_bounds(p: float, n_eff: float, confidence: float) -> tuple[float, float]:
    """One-sided Wilson score bounds for a proportion, each holding at `confidence` on its own side.

    Wilson rather than the normal (Wald) interval because the gate sees win rates near 0 and 1 and samples
    of a few dozen prompts, where Wald's interval collapses to a point or leaves [0, 1]. `n_eff` may be
    fractional: the gate passes a tie-corrected effective sample size.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if n_eff < 0:
        raise ValueError(f"n_eff must be >= 0, got {n_eff}")
    z = _one_sided_z(confidence)
    if n_eff == 0:
        return 0.0, 1.0
    z2_n = z * z / n_eff
    centre = (p + z2_n / 2) / (1 + z2_n)
    half = z / (1 + z2_n) * math.sqrt(p * (1 - p) / n_eff + z2_n / (4 * n_eff))
    # At p = 0 (1) the lower (upper) bound is exactly 0 (1), which rounding would miss by an ulp.
    lower = 0.0 if p == 0 else max(0.0, centre - half)
    upper = 1.0 if p == 1 else min(1.0, centre + half)
    return lower, upper


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test of wins against losses (ties left out), as scipy.stats.binomtest(k, n, 0.5).

    It answers a different question from the gate's bounds: whether the candidate differs at all, which is
    what a reader of a report asks before looking at the size of the difference.
    """
    if wins < 0 or losses < 0:
        raise ValueError(f"wins and losses must be >= 0, got {wins} and {losses}")
    n = wins + losses
    low = min(wins, losses)
    if 2 * low == n:
        return 1.0
    # With p = 0.5 the pmf is symmetric, so the outcomes no more likely than the observed one are the
    # lower tail up to `low` and the mirror of the lower tail up to `edge`, where `edge` takes in the terms
    # within the relative tolerance (only possible from about n = 1e7 on, when neighbouring terms differ
    # by less than 1e-7).
    edge = low
    ratio = 1.0
    while 2 * (edge + 1) <= n:
        ratio *= (n - edge) / (edge + 1)
        if ratio > 1 + _BINOM_RTOL:
            break
        edge += 1
    return min(1.0, _half_binomial_cdf(low, n) + _half_binomial_cdf(edge, n))


def _half_binomial_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), k <= n / 2, without overflow for large n.

    The top term comes from lgamma (relative error about 1e-10 at n = 100000, far below what a p-value
    needs); the rest of the tail follows by the ratio pmf(x - 1) / pmf(x) = x / (n - x + 1), which shrinks
    fast below the mode, so the loop stops after a few thousand terms at most.
    """
    log_top = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2)
    total = 0.0
    term = 1.0
    x = k
    while x >= 0:
        total += term
        if term < total * 1e-17:
            break
        term *= x / (n - x + 1)
        x -= 1
    return math.exp(log_top + math.log(total))


@dataclass(frozen=True)
class GateStats:
    """The evidence behind a pass/fail decision on a candidate model against a baseline."""

    n: int
    wins: int
    ties: int  # including prompts where the two presentation orders disagreed
    losses: int
    win_rate: float
    n_eff: float
    lower: float
    upper: float
    outcome: GateOutcome
    sign_test_p: float
    threshold: float


def gate_stats(scores: Sequence[float], *, confidence: float = 0.95, margin: float = 0.05) -> GateStats:
    """Decide whether a candidate is no worse than the baseline by more than `margin` (a non-inferiority gate).

    `scores` holds one score per prompt: 1 when the candidate won, 0.5 for a tie or when the two orders
    disagreed, 0 when it lost. "pass" when the lower bound clears 0.5 - margin, "fail" when the upper bound
    is below it, "inconclusive" otherwise: more prompts are needed (see `pairs_needed`). A negative margin
    turns the gate into a superiority test.
    """
    if not -0.5 < margin < 0.5:
        raise ValueError(f"margin must be in (-0.5, 0.5), got {margin}")
    wins = ties = losses = 0
    for score in scores:
        if score == 1:
            wins += 1
        elif score == 0.5:
            ties += 1
        elif score == 0:
            losses += 1
        else:
            raise ValueError(f"each score must be 1, 0.5 or 0, got {score}")
    n = wins + ties + losses
    threshold = 0.5 - margin
    if n == 0:
        return GateStats(0, 0, 0, 0, 0.5, 0.0, 0.0, 1.0, "inconclusive", 1.0, threshold)

    # In half-points (2, 1, 0) every sum is an integer, so the variance is exact and an all-tie sample
    # has a variance of exactly 0 rather than a rounding residue that would blow up n_eff.
    points = 2 * wins + ties
    points_sq = 4 * wins + ties
    win_rate = points / (2 * n)
    bernoulli = points * (2 * n - points)  # 4 n^2 p (1 - p)
    spread = n * points_sq - points * points  # 4 n^2 s2 (population variance)
    # A tie carries less variance than a coin flip between a win and a loss, and is evidence that the two
    # models are equal, so a sample with ties pins the win rate down better than n coin flips would:
    # n_eff = n p (1 - p) / s2 >= n. The n^2 cap keeps an all-tie sample finite.
    if bernoulli == 0:
        n_eff = float(n)
    elif spread == 0:
        n_eff = float(n * n)
    else:
        n_eff = min(n * bernoulli / spread, float(n * n))

    lower, upper = wilson_bounds(win_rate, n_eff, confidence)
    outcome: GateOutcome
    if lower >= threshold:
        outcome = "pass"
    elif upper < threshold:
        outcome = "fail"
    else:
        outcome = "inconclusive"
    return GateStats(
        n=n,
        wins=wins,
        ties=ties,
        losses=losses,
        win_rate=win_rate,
        n_eff=n_eff,
        lower=lower,
        upper=upper,
        outcome=outcome,
        sign_test_p=sign_test(wins, losses),
        threshold=threshold,
    )


def pairs_needed(tie_rate: float, *, confidence: float = 0.95, margin: float = 0.05) -> int:
    """The number of prompts a candidate exactly as good as the baseline needs for the gate to pass.

    For planning an evaluation before running it: with win and loss equally likely and ties at `tie_rate`,
    the sample's n_eff is n / (1 - tie_rate) (capped at n^2, as in `gate_stats`), and this is the smallest n
    whose Wilson lower bound at a win rate of 0.5 reaches 0.5 - margin. Roughly (1 - tie_rate) (z / 2 margin)^2.
    """
    if not 0 <= tie_rate <= 1:
        raise ValueError(f"tie_rate must be in [0, 1], got {tie_rate}")
    if not 0 < margin < 0.5:
        raise ValueError(f"margin must be in (0, 0.5): with no margin an equal candidate never passes, got {margin}")
    threshold = 0.5 - margin

    def passes(n: int) -> bool:
        n_eff = float(n * n) if tie_rate == 1 else min(n / (1 - tie_rate), float(n * n))
        return wilson_bounds(0.5, n_eff, confidence)[0] >= threshold

    # The lower bound grows with n, so double to bracket the answer, then bisect.
    high = 1
    while not passes(high):
        high *= 2
    low = high // 2  # fails, or 0 when n = 1 already passes
    while high - low > 1:
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid
    return high
