"""Ranking several models from pairwise verdicts: Bradley-Terry strengths, ranks and differences, bootstrapped.

The fit is in bradley_terry.py; pure standard library, so that the client stays light.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .bradley_terry import ITERATIONS, PRIOR, TOL, bradley_terry, fit, win_table
from .resampling import check_bootstrap, percentile_interval, resamples

__all__ = ["Difference", "Ranking", "RankingTable", "bradley_terry", "rank_models", "win_rate_matrix"]


@dataclass(frozen=True)
class Ranking:
    """One model's place: Bradley-Terry strength and rank, each with a bootstrap percentile interval.

    `record` is "never lost" or "never won" for a model whose strength has no finite estimate; its
    strength and interval are then None rather than the value the prior alone would set.
    """

    model: str
    strength: float | None
    lower: float | None
    upper: float | None
    rank: int
    rank_lower: int
    rank_upper: int
    record: str | None = None


@dataclass(frozen=True)
class Difference:
    """How much stronger `model` is than `other`: the difference of their log-strengths, with its interval.

    exp(difference) is the odds that `model` beats `other`. None where either model's strength is unbounded.
    """

    model: str
    other: str
    difference: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class RankingTable:
    """The ranking, the pairwise differences, and how many resamples left a model unconnected (skipped)."""

    rankings: list[Ranking]
    differences: list[Difference]
    skipped_resamples: int


def rank_models(
    outcomes: Sequence[tuple[str, str, str, float]],
    models: Sequence[str],
    *,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RankingTable:
    """Rank models by Bradley-Terry strength from per-prompt outcomes (prompt id, model_a, model_b, score of a).

    The intervals are percentile bootstraps, two-sided at `confidence`, that resample prompts: every
    outcome on a drawn prompt comes along, so that models compared on the same prompts stay correlated as
    they are in the data (an easy prompt on which every model ties moves them all together). A resample
    that leaves some model without a game cannot place it and is skipped, and counted. Seeded.
    """
    check_bootstrap(bootstrap, confidence)
    names = sorted(set(models))
    by_prompt: dict[str, list[tuple[str, str, float]]] = {}
    for prompt, a, b, score in outcomes:
        if not 0 <= score <= 1:
            raise ValueError(f"scores must be in [0, 1], got {score}")
        by_prompt.setdefault(prompt, []).append((a, b, score))
    prompts = sorted(by_prompt)
    wins = _wins(outcome for prompt in prompts for outcome in by_prompt[prompt])
    point = fit(win_table(wins, models, PRIOR), None, ITERATIONS, TOL)
    records = _records(wins, names)

    strengths: list[list[float]] = [[] for _ in names]
    ranks: list[list[float]] = [[] for _ in names]
    gaps: dict[tuple[int, int], list[float]] = {}
    skipped = 0
    for indices in resamples(len(prompts), bootstrap, seed):
        drawn = _wins(outcome for i in indices for outcome in by_prompt[prompts[i]])
        try:
            table = win_table(drawn, models, PRIOR)
        except ValueError:
            skipped += 1
            continue
        # Resamples land near the point estimate: starting there saves most of the solver's steps.
        refit = fit(table, point, ITERATIONS, TOL)
        order = sorted(range(len(names)), key=lambda i: -refit[i])
        for position, i in enumerate(order, start=1):
            ranks[i].append(position)
            strengths[i].append(math.exp(refit[i]))
        for i in range(len(names)):
            for j in range(len(names)):
                if i != j:
                    gaps.setdefault((i, j), []).append(refit[i] - refit[j])

    order = sorted(range(len(names)), key=lambda i: (-point[i], names[i]))
    rankings = []
    for position, i in enumerate(order, start=1):
        bounded = records[i] is None and strengths[i]
        low, high = percentile_interval(strengths[i], confidence) if bounded else (None, None)
        rank_low, rank_high = percentile_interval(ranks[i], confidence) if ranks[i] else (1, len(names))
        rankings.append(
            Ranking(
                model=names[i],
                strength=math.exp(point[i]) if records[i] is None else None,
                lower=low,
                upper=high,
                rank=position,
                rank_lower=math.floor(rank_low),
                rank_upper=math.ceil(rank_high),
                record=records[i],
            )
        )
    differences = []
    for x, i in enumerate(order):
        for j in order[x + 1 :]:
            finite = records[i] is None and records[j] is None and (i, j) in gaps
            low, high = percentile_interval(gaps[(i, j)], confidence) if finite else (None, None)
            differences.append(Difference(names[i], names[j], point[i] - point[j] if finite else None, low, high))
    return RankingTable(rankings, differences, skipped)


def _records(wins: Mapping[tuple[str, str], float], names: list[str]) -> list[str | None]:
    """ "never lost" or "never won" for a model with no finite maximum-likelihood strength, else None."""
    records: list[str | None] = []
    for name in names:
        won = sum(count for (a, _), count in wins.items() if a == name)
        lost = sum(count for (_, b), count in wins.items() if b == name)
        records.append("never lost" if lost == 0 and won > 0 else "never won" if won == 0 and lost > 0 else None)
    return records


def _wins(outcomes: Iterable[tuple[str, str, float]]) -> dict[tuple[str, str], float]:
    wins: dict[tuple[str, str], float] = {}
    for a, b, score in outcomes:
        wins[(a, b)] = wins.get((a, b), 0.0) + score
        wins[(b, a)] = wins.get((b, a), 0.0) + 1 - score
    return wins


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
