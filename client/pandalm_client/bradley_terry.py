"""Bradley-Terry strengths from pairwise wins: the maximum-likelihood fit behind `pandalm rank`.

Pure standard library, so that the client stays light: no numpy, no scipy.
"""

import math
from collections.abc import Mapping, Sequence

# Virtual wins each way between models that met (see `bradley_terry`).
PRIOR = 0.01
ITERATIONS = 1000
TOL = 1e-10


def bradley_terry(
    wins: Mapping[tuple[str, str], float],
    models: Sequence[str],
    *,
    iterations: int = ITERATIONS,
    tol: float = TOL,
    prior: float = PRIOR,
) -> dict[str, float]:
    """Bradley-Terry strengths, where P(a beats b) = s_a / (s_a + s_b), normalised to a geometric mean of 1.

    `wins[(a, b)]` is how many times a beat b; a tie counts 0.5 to each side. A model that never won (or
    never lost) has no finite maximum-likelihood strength, so `prior` virtual wins are added each way between
    every pair of models that met: 0.01 is small enough not to move models with real records, and keeps the
    others finite. Models that never met get no virtual games, so the comparisons must connect all of
    `models`. `iterations` caps the solver's steps; it stops when no log-strength moves by more than `tol`.
    """
    names = sorted(set(models))
    log_strength = fit(win_table(wins, models, prior), None, iterations, tol)
    return {name: math.exp(theta) for name, theta in zip(names, log_strength, strict=True)}


def win_table(wins: Mapping[tuple[str, str], float], models: Sequence[str], prior: float) -> list[list[float]]:
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


def fit(table: list[list[float]], start: list[float] | None, iterations: int, tol: float) -> list[float]:
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
