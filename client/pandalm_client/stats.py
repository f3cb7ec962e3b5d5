"""Statistics of the CI gate: a score test on the paired difference of wins and losses, and planning.

Pure standard library, so that the client stays light: no numpy, no scipy. The anytime-valid mode is in
sequential.py, the ranking of several models in ranking.py, bootstrap intervals in resampling.py.

The gate's mean score is 0.5 + (p_win - p_loss) / 2, so "mean >= 0.5 - margin" is "d = p_win - p_loss >=
-2 margin": a non-inferiority question on a difference of paired proportions, where a tie is a concordant
pair. Tango's (1998) score test is the textbook answer for it; with a continuity correction of one in
wins - losses it holds its level at the boundary by exact enumeration (tests/client/test_stats_exact.py)
where the uncorrected test reaches 0.072 (n = 25, 90% ties, or n = 30 without ties).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

GateOutcome = Literal["pass", "fail", "inconclusive"]

METHOD = "Tango's score test on p_win - p_loss, continuity-corrected (fixed n: choose n before looking)"

# scipy.stats.binomtest's relative tolerance: outcomes whose probability is within this factor of the
# observed one count as "no more likely", so that rounding in the pmf cannot drop a symmetric term.
_BINOM_RTOL = 1e-7
# In units of wins - losses, which moves by one when one prompt changes by one grade. Without it the
# test is liberal at small n (0.072 at n = 25); with it, the worst exact level over n = 20..1000 and tie
# rates 0..0.9 at the default margin is 0.0503.
_CONTINUITY = 1.0
_BISECTIONS = 60


def one_sided_z(confidence: float) -> float:
    """The standard normal quantile at `confidence`, refusing a confidence outside [0.5, 1)."""
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    return NormalDist().inv_cdf(confidence)


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


def restricted_loss_rate(wins: float, losses: float, n: float, difference: float) -> float:
    """The maximum-likelihood p_loss under p_win - p_loss = `difference` (Tango 1998, eq. 3).

    Counts may be expected counts (n p): planning calls it with the true cell probabilities.
    """
    a = 2 * n
    b = -wins - losses + (2 * n - wins + losses) * difference
    c = -losses * difference * (1 - difference)
    return (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)


def _score_parts(wins: int, losses: int, n: int, difference: float) -> tuple[float, float]:
    """Tango's numerator wins - losses - n d and its standard error under d, in units of wins - losses."""
    q = restricted_loss_rate(wins, losses, n, difference)
    variance = n * (2 * q + difference * (1 - difference))
    return wins - losses - n * difference, math.sqrt(max(variance, 0.0))


def rejects_below(wins: int, losses: int, n: int, difference: float, z: float) -> bool:
    """True when the data reject p_win - p_loss <= `difference` at the one-sided level of `z`."""
    numerator, error = _score_parts(wins, losses, n, difference)
    # Multiplied out rather than divided, so that a zero standard error (all ties at d = 0) is no 0 / 0.
    return numerator - _CONTINUITY >= z * error


def rejects_above(wins: int, losses: int, n: int, difference: float, z: float) -> bool:
    """True when the data reject p_win - p_loss >= `difference` at the one-sided level of `z`."""
    numerator, error = _score_parts(wins, losses, n, difference)
    return numerator + _CONTINUITY <= -z * error


def difference_bounds(wins: int, losses: int, n: int, z: float) -> tuple[float, float]:
    """One-sided bounds on p_win - p_loss, each at the level of `z`: the test inverted by bisection."""
    if n == 0:
        return -1.0, 1.0
    low, high = -1.0, (wins - losses) / n  # every d below the lower bound is rejected
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2
        low, high = (mid, high) if rejects_below(wins, losses, n, mid, z) else (low, mid)
    lower = low
    low, high = (wins - losses) / n, 1.0
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2
        low, high = (low, mid) if rejects_above(wins, losses, n, mid, z) else (mid, high)
    return lower, high


@dataclass(frozen=True)
class GateStats:
    """The evidence behind a pass/fail decision on a candidate model against a baseline."""

    n: int
    wins: int
    ties: int  # including prompts where the two presentation orders disagreed
    losses: int
    win_rate: float  # the mean score, 0.5 + difference / 2
    difference: float  # (wins - losses) / n, the estimate of p_win - p_loss
    lower: float  # one-sided bounds on the mean score
    upper: float
    outcome: GateOutcome
    sign_test_p: float
    threshold: float
    method: str = METHOD


def count_scores(scores: Sequence[float]) -> tuple[int, int, int]:
    """Wins, ties and losses among per-prompt scores of 1, 0.5 and 0; any other score is refused."""
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
    return wins, ties, losses


def check_margin(margin: float) -> float:
    """The margin, refused outside (-0.5, 0.5): the threshold 0.5 - margin must lie inside (0, 1)."""
    if not -0.5 < margin < 0.5:
        raise ValueError(f"margin must be in (-0.5, 0.5), got {margin}")
    return margin


def gate_stats(scores: Sequence[float], *, confidence: float = 0.95, margin: float = 0.05) -> GateStats:
    """Decide whether a candidate is no worse than the baseline by more than `margin` (a non-inferiority gate).

    `scores` holds one score per prompt: 1 when the candidate won, 0.5 for a tie or when the two orders
    disagreed, 0 when it lost. "pass" when the test rejects a mean score below 0.5 - margin (p_win - p_loss
    below -2 margin), "fail" when it rejects a mean at or above it, "inconclusive" otherwise: the n chosen
    was too small for this data (`pairs_needed` plans the next one). A negative margin turns the gate into a
    superiority test. The number of prompts must be fixed before looking at the outcome: adding prompts
    after an inconclusive outcome needs `sequential.sequential_stats` instead.
    """
    check_margin(margin)
    z = one_sided_z(confidence)
    wins, ties, losses = count_scores(scores)
    n = wins + ties + losses
    threshold = 0.5 - margin
    if n == 0:
        return GateStats(0, 0, 0, 0, 0.5, 0.0, 0.0, 1.0, "inconclusive", 1.0, threshold)
    boundary = -2 * margin
    outcome: GateOutcome = "inconclusive"
    if rejects_below(wins, losses, n, boundary, z):
        outcome = "pass"
    elif rejects_above(wins, losses, n, boundary, z):
        outcome = "fail"
    lower, upper = difference_bounds(wins, losses, n, z)
    return GateStats(
        n=n,
        wins=wins,
        ties=ties,
        losses=losses,
        win_rate=(2 * wins + ties) / (2 * n),
        difference=(wins - losses) / n,
        lower=0.5 + lower / 2,
        upper=0.5 + upper / 2,
        outcome=outcome,
        sign_test_p=sign_test(wins, losses),
        threshold=threshold,
    )


def wins_needed(n: int, *, confidence: float = 0.95, margin: float = 0.05) -> list[int]:
    """For each number of ties 0..n, the fewest wins with which the gate passes (n - ties + 1: never).

    For a fixed number of ties, more wins (and so fewer losses) only raise the score statistic, so these
    thresholds are the whole pass region: what an exact computation of the gate's error rates needs.
    Consecutive thresholds differ by about one, so a walk from the previous one costs O(1) per entry.
    """
    check_margin(margin)
    z = one_sided_z(confidence)
    boundary = -2 * margin

    def passes(ties: int, wins: int) -> bool:
        return rejects_below(wins, n - ties - wins, n, boundary, z)

    needed: list[int] = []
    w = 0
    for ties in range(n + 1):
        discordant = n - ties
        w = min(w, discordant + 1)
        while w <= discordant and not passes(ties, w):
            w += 1
        while w > 0 and passes(ties, w - 1):
            w -= 1
        needed.append(w)
    return needed


def pairs_needed(
    tie_rate: float,
    *,
    confidence: float = 0.95,
    margin: float = 0.05,
    power: float = 0.8,
    difference: float = 0.0,
) -> int:
    """Prompts with which a candidate `difference` = p_win - p_loss better than the baseline passes with `power`.

    For planning an evaluation before running it, at a tie rate observed before or assumed. The normal
    approximation of the score statistic (Nam 1997; Liu et al. 2002) with its continuity correction:
    n is the smallest with n D - z_a sqrt(n v0) - z_b sqrt(n v1) >= 1, where D = difference + 2 margin,
    v1 = p_win + p_loss - difference^2 is the variance of a prompt's win - loss, and v0 its variance at
    the restricted fit on the boundary. Checked against the exact power in tests/client/test_stats_exact.py.
    """
    if not 0 <= tie_rate <= 1:
        raise ValueError(f"tie_rate must be in [0, 1], got {tie_rate}")
    check_margin(margin)
    z_alpha = one_sided_z(confidence)
    if not 0.5 <= power < 1:
        raise ValueError(f"power must be in [0.5, 1), got {power}")
    z_beta = NormalDist().inv_cdf(power)
    boundary = -2 * margin
    gap = difference - boundary
    p_win = (1 - tie_rate + difference) / 2
    p_loss = (1 - tie_rate - difference) / 2
    if gap <= 0 or p_win < 0 or p_loss < 0:
        raise ValueError(
            f"no number of prompts passes a candidate at p_win - p_loss = {difference} with margin {margin} "
            f"and tie rate {tie_rate}: the margin must be positive for an equal candidate"
        )
    v0 = 2 * restricted_loss_rate(p_win, p_loss, 1.0, boundary) + boundary * (1 - boundary)
    v1 = p_win + p_loss - difference * difference
    spread = z_alpha * math.sqrt(max(v0, 0.0)) + z_beta * math.sqrt(max(v1, 0.0))
    root = (spread + math.sqrt(spread * spread + 4 * gap * _CONTINUITY)) / (2 * gap)
    return max(1, math.ceil(root * root - 1e-9))
