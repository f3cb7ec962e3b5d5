"""Statistics for turning many pairwise verdicts into a decision: a regression gate and a ranking.

Pure standard library, so that the client stays light: no numpy, no scipy.
"""

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

GateOutcome = Literal["pass", "fail", "inconclusive"]

# Virtual wins each way between models that met (see `bradley_terry`).
_PRIOR = 0.01
_ITERATIONS = 1000
_TOL = 1e-10

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


def bradley_terry(
    wins: Mapping[tuple[str, str], float],
    models: Sequence[str],
    *,
    iterations: int = _ITERATIONS,
    tol: float = _TOL,
    prior: float = _PRIOR,
) -> dict[str, float]:
    """Bradley-Terry strengths, where P(a beats b) = s_a / (s_a + s_b), normalised to a geometric mean of 1.

    `wins[(a, b)]` is how many times a beat b; a tie counts 0.5 to each side. A model that never won (or
    never lost) has no finite maximum-likelihood strength, so `prior` virtual wins are added each way between
    every pair of models that met: 0.01 is small enough not to move models with real records, and keeps the
    others finite. Models that never met get no virtual games, so the comparisons must connect all of
    `models`. `iterations` caps the solver's steps; it stops when no log-strength moves by more than `tol`.
    """
    names = sorted(set(models))
    log_strength = _fit(_win_table(wins, models, prior), None, iterations, tol)
    return {name: math.exp(theta) for name, theta in zip(names, log_strength, strict=True)}


def _win_table(wins: Mapping[tuple[str, str], float], models: Sequence[str], prior: float) -> list[list[float]]:
    """Wins as a matrix over the models in sorted order, virtual wins included: table[i][j] is i's wins over j."""
    names = sorted(set(models))
    if len(names) != len(models):
        raise ValueError("models must not repeat")
    if prior <= 0:
        raise ValueError(f"prior must be > 0, got {prior}: without it a model that never lost has no strength")
    index = {name: i for i, name in enumerate(names)}
    size = len(names)
    table = [[0.0] * size for _ in range(size)]
    for (a, b), count in wins.items():
        if a not in index or b not in index:
            raise ValueError(f"pair ({a!r}, {b!r}) names a model not in models")
        if a == b:
            raise ValueError(f"a model cannot play itself: {a!r}")
        if count < 0:
            raise ValueError(f"win counts must be >= 0, got {count} for ({a!r}, {b!r})")
        table[index[a]][index[b]] += count
    met = [[table[i][j] + table[j][i] > 0 for j in range(size)] for i in range(size)]
    for i in range(size):
        for j in range(size):
            if met[i][j]:
                table[i][j] += prior
    _check_connected(names, met)
    return table


def _check_connected(names: list[str], met: list[list[bool]]) -> None:
    # Strengths in two unconnected groups of models have no common scale: refuse rather than guess one.
    if not names:
        return
    seen = {0}
    frontier = [0]
    while frontier:
        i = frontier.pop()
        for j, played in enumerate(met[i]):
            if played and j not in seen:
                seen.add(j)
                frontier.append(j)
    if len(seen) < len(names):
        apart = sorted(names[j] for j in range(len(names)) if j not in seen)
        raise ValueError(f"the comparisons do not connect {apart} to {names[0]!r}: compare more pairs")


def _fit(table: list[list[float]], start: list[float] | None, iterations: int, tol: float) -> list[float]:
    """Maximise the Bradley-Terry likelihood over log-strengths, returned with a mean of 0.

    Newton's method with a backtracking line search, falling back to one step of Hunter's (2004)
    minorization-maximization when the Newton system is singular or its step does not pay. MM alone is the
    textbook choice, but it crawls when one model wins (nearly) every game: with 0.01 virtual wins, a model
    that beat three others 100-0 was still 72% off its strength after 1000 MM steps and 10% off after 10000.
    The log-likelihood is concave in the log-strengths, so Newton gets there in a few dozen steps.
    """
    size = len(table)
    theta = list(start) if start is not None else [0.0] * size
    if size < 2:
        return [0.0] * size
    current = _log_likelihood(table, theta)
    for _ in range(iterations):
        gradient, curvature = _gradient_and_curvature(table, theta)
        # The likelihood ignores a common shift of all log-strengths: hold the last one still to solve.
        step = _solve([row[:-1] for row in curvature[:-1]], gradient[:-1])
        updated: list[float] | None = None
        if step is not None:
            step.append(0.0)
            if max(abs(x) for x in step) < tol:
                return _centred([t + x for t, x in zip(theta, step, strict=True)])
            slope = sum(g * x for g, x in zip(gradient, step, strict=True))
            scale = 1.0
            for _ in range(60):
                trial = [t + scale * x for t, x in zip(theta, step, strict=True)]
                value = _log_likelihood(table, trial)
                if value >= current + 1e-4 * scale * slope:
                    updated, current = trial, value
                    break
                scale /= 2
        if updated is None:
            updated = _mm_step(table, theta)
            current = _log_likelihood(table, updated)
        updated = _centred(updated)
        change = max(abs(new - old) for new, old in zip(updated, theta, strict=True))
        theta = updated
        if change < tol:
            break
    return theta


def _centred(theta: list[float]) -> list[float]:
    mean = sum(theta) / len(theta)
    return [t - mean for t in theta]


def _log_likelihood(table: list[list[float]], theta: list[float]) -> float:
    total = 0.0
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            if count > 0:
                total -= count * _softplus(theta[j] - theta[i])  # log P(i beats j)
    return total


def _softplus(x: float) -> float:
    """log(1 + exp(x)), without overflow for large x."""
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def _gradient_and_curvature(table: list[list[float]], theta: list[float]) -> tuple[list[float], list[list[float]]]:
    """The log-likelihood's gradient, and its Hessian negated: a weighted graph Laplacian, positive semi-definite."""
    size = len(table)
    gradient = [0.0] * size
    curvature = [[0.0] * size for _ in range(size)]
    for i in range(size):
        for j in range(i + 1, size):
            games = table[i][j] + table[j][i]
            if games == 0:
                continue
            p_i = 1 / (1 + math.exp(theta[j] - theta[i]))
            gradient[i] += table[i][j] - games * p_i
            gradient[j] += table[j][i] - games * (1 - p_i)
            weight = games * p_i * (1 - p_i)
            curvature[i][i] += weight
            curvature[j][j] += weight
            curvature[i][j] -= weight
            curvature[j][i] -= weight
    return gradient, curvature


def _solve(matrix: list[list[float]], rhs: list[float]) -> list[float] | None:
    """Solve matrix @ x = rhs by Gaussian elimination with partial pivoting; None when it is singular."""
    size = len(rhs)
    rows = [[*row, value] for row, value in zip(matrix, rhs, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        if rows[pivot][col] == 0:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            if factor:
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    solution = [0.0] * size
    for r in reversed(range(size)):
        known = sum(rows[r][c] * solution[c] for c in range(r + 1, size))
        solution[r] = (rows[r][size] - known) / rows[r][r]
    return solution


def _mm_step(table: list[list[float]], theta: list[float]) -> list[float]:
    """One step of Hunter's MM, s_i <- W_i / sum_j n_ij / (s_i + s_j): never lowers the likelihood."""
    strength = [math.exp(t) for t in theta]
    updated = []
    for i, row in enumerate(table):
        won = sum(row)
        games = [count + table[j][i] for j, count in enumerate(row)]
        denominator = sum(n / (strength[i] + strength[j]) for j, n in enumerate(games) if n > 0)
        updated.append(math.log(won / denominator))
    return updated


@dataclass(frozen=True)
class Ranking:
    """One model's place in a ranking: Bradley-Terry strength with a bootstrap percentile interval."""

    model: str
    strength: float
    lower: float
    upper: float
    rank: int


def rank_models(
    outcomes: Sequence[tuple[str, str, float]],
    models: Sequence[str],
    *,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[Ranking]:
    """Rank models by Bradley-Terry strength from per-prompt outcomes (model_a, model_b, score of a).

    The interval is a percentile bootstrap, two-sided at `confidence`. Outcomes are resampled with
    replacement within each pair of models, keeping each pair's number of games: the pairs compared are
    the design of the evaluation, not chance, and resampling them too could drop a model that played few
    games and leave its strength undefined. Deterministic for a given seed.
    """
    if bootstrap < 1:
        raise ValueError(f"bootstrap must be >= 1, got {bootstrap}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    names = sorted(set(models))
    by_pair: dict[tuple[str, str], list[float]] = {}
    for a, b, score in outcomes:
        if not 0 <= score <= 1:
            raise ValueError(f"scores must be in [0, 1], got {score}")
        # One orientation per pair, so that a pair's games are resampled together.
        key, value = ((a, b), score) if a <= b else ((b, a), 1 - score)
        by_pair.setdefault(key, []).append(value)

    point = _fit(_win_table(_wins(by_pair), models, _PRIOR), None, _ITERATIONS, _TOL)
    rng = random.Random(seed)
    samples: list[list[float]] = [[] for _ in names]
    for _ in range(bootstrap):
        resampled = {pair: rng.choices(scores, k=len(scores)) for pair, scores in sorted(by_pair.items())}
        # Resamples land near the point estimate: starting there saves most of the solver's steps.
        refit = _fit(_win_table(_wins(resampled), models, _PRIOR), point, _ITERATIONS, _TOL)
        for i, theta in enumerate(refit):
            samples[i].append(math.exp(theta))

    tail = (1 - confidence) / 2
    rows = []
    for i, name in enumerate(names):
        ordered = sorted(samples[i])
        rows.append((name, math.exp(point[i]), _quantile(ordered, tail), _quantile(ordered, 1 - tail)))
    rows.sort(key=lambda row: (-row[1], row[0]))
    return [
        Ranking(model=name, strength=strength, lower=lower, upper=upper, rank=rank)
        for rank, (name, strength, lower, upper) in enumerate(rows, start=1)
    ]


def _wins(by_pair: Mapping[tuple[str, str], Sequence[float]]) -> dict[tuple[str, str], float]:
    wins: dict[tuple[str, str], float] = {}
    for (a, b), scores in by_pair.items():
        total = sum(scores)
        wins[(a, b)] = total
        wins[(b, a)] = len(scores) - total
    return wins


def _quantile(ordered: Sequence[float], q: float) -> float:
    # Linear interpolation between order statistics (numpy's default, Hyndman and Fan's type 7).
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def win_rate_matrix(
    outcomes: Sequence[tuple[str, str, float]], models: Sequence[str]
) -> dict[str, dict[str, float | None]]:
    """Mean score of each row model against each column model; None on the diagonal and for pairs that never met.

    The raw head-to-head numbers, to read beside the Bradley-Terry ranking, which assumes strengths are
    transitive and so can hide a rock-paper-scissors cycle.
    """
    known = set(models)
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], int] = {}
    for a, b, score in outcomes:
        if a not in known or b not in known:
            raise ValueError(f"outcome ({a!r}, {b!r}) names a model not in models")
        if a == b:
            raise ValueError(f"a model cannot play itself: {a!r}")
        for key, value in (((a, b), score), ((b, a), 1 - score)):
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1
    return {
        row: {col: (sums[(row, col)] / counts[(row, col)] if (row, col) in counts else None) for col in models}
        for row in models
    }
