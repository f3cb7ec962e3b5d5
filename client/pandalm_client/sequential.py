"""The gate's anytime-valid mode: a confidence sequence for the mean score, by betting.

Waudby-Smith and Ramdas (2023), "Estimating means of bounded random variables by betting", JRSS B 86(1):
a gambler bets a fraction lambda_i of her capital that score i exceeds m; her capital
K_t(m) = prod_{i <= t} (1 + lambda_i (x_i - m)) is a nonnegative supermartingale when the true mean is at most m,
so by Ville's inequality it ever reaches 1/alpha with probability at most alpha. Passing when it does holds the
false-pass rate at alpha however often a team adds prompts and re-runs: every look is covered at once.

The prompts must enter in an order fixed before their verdicts are seen: the order of the candidate file,
to which a team appends new prompts. Pure standard library, like stats.py.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .stats import GateOutcome, check_margin, count_scores, one_sided_z

METHOD = "betting confidence sequence (Waudby-Smith and Ramdas 2023): valid at every look"

# The largest bet. Below 1 so that a bet against a score of 0 or 1 never loses all the capital; 1/2 is
# the paper's choice for its predictable plug-in bets.
_MAX_BET = 0.5
_BISECTIONS = 50


def bets(scores: Sequence[float], confidence: float) -> list[float]:
    """The predictable plug-in bets lambda_i (the paper's eq. 26), each from the scores before i alone.

    lambda_i = min(sqrt(2 log(1/alpha) / (var_{i-1} i log(1 + i))), 1/2), var a running variance that starts at 1/4.
    They do not depend on the mean tested, so the capital falls as that mean rises and bounds bisect.
    """
    one_sided_z(confidence)
    log_level = math.log(1 / (1 - confidence))
    fractions = []
    total = 0.0
    squares = 0.25
    variance = 0.25
    for i, score in enumerate(scores, start=1):
        fractions.append(min(math.sqrt(2 * log_level / (variance * i * math.log(1 + i))), _MAX_BET))
        total += score
        mean = (0.5 + total) / (i + 1)
        squares += (score - mean) ** 2
        variance = squares / (i + 1)
    return fractions


def _ever_reaches(scores: Sequence[float], fractions: Sequence[float], mean: float, side: float, goal: float) -> bool:
    """Whether the capital betting that the scores lie on `side` (+1 above, -1 below) of `mean` reaches `goal`."""
    log_capital = 0.0
    for score, fraction in zip(scores, fractions, strict=True):
        log_capital += math.log1p(side * fraction * (score - mean))
        if log_capital >= goal:
            return True
    return False


@dataclass(frozen=True)
class SequentialStats:
    """The anytime-valid gate's evidence: bounds on the mean score that hold at every look at once."""

    n: int
    wins: int
    ties: int
    losses: int
    win_rate: float
    lower: float
    upper: float
    outcome: GateOutcome
    threshold: float
    method: str = METHOD


def sequential_stats(scores: Sequence[float], *, confidence: float = 0.95, margin: float = 0.05) -> SequentialStats:
    """The gate in anytime-valid mode: pass when the capital against a mean below 0.5 - margin ever reached 1/alpha.

    "fail" when the capital against a mean at or above the threshold ever reached 1/alpha, "inconclusive"
    otherwise. `lower` and `upper` are the confidence sequence's running intersection at the last score.
    """
    check_margin(margin)
    wins, ties, losses = count_scores(scores)
    n = wins + ties + losses
    threshold = 0.5 - margin
    fractions = bets(scores, confidence)
    goal = math.log(1 / (1 - confidence))
    outcome: GateOutcome = "inconclusive"
    if _ever_reaches(scores, fractions, threshold, 1.0, goal):
        outcome = "pass"
    elif _ever_reaches(scores, fractions, threshold, -1.0, goal):
        outcome = "fail"
    lower = _bound(scores, fractions, goal, 1.0)
    upper = _bound(scores, fractions, goal, -1.0)
    win_rate = (2 * wins + ties) / (2 * n) if n else 0.5
    return SequentialStats(n, wins, ties, losses, win_rate, lower, upper, outcome, threshold)


def _bound(scores: Sequence[float], fractions: Sequence[float], goal: float, side: float) -> float:
    """The lower (side +1) or upper (side -1) end of the running intersection: the means ever rejected."""
    rejected, kept = (0.0, 1.0) if side > 0 else (1.0, 0.0)
    if not _ever_reaches(scores, fractions, rejected, side, goal):
        return rejected
    for _ in range(_BISECTIONS):
        mid = (rejected + kept) / 2
        if _ever_reaches(scores, fractions, mid, side, goal):
            rejected = mid
        else:
            kept = mid
    return rejected
