"""Seeded bootstrap helpers shared by `pandalm eval` and `pandalm rank`: resamples and percentile intervals.

Pure standard library, like stats.py.
"""

import math
import random
from collections.abc import Iterator, Sequence


def check_bootstrap(bootstrap: int, confidence: float) -> None:
    """Refuse a bootstrap of no resamples or a two-sided confidence outside (0, 1)."""
    if bootstrap < 1:
        raise ValueError(f"bootstrap must be >= 1, got {bootstrap}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def resamples(size: int, bootstrap: int, seed: int) -> Iterator[list[int]]:
    """`bootstrap` lists of `size` indices drawn with replacement; the same seed gives the same lists."""
    rng = random.Random(seed)
    population = range(size)
    for _ in range(bootstrap):
        yield rng.choices(population, k=size)


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values, interpolating linearly (numpy's default, Hyndman and Fan's type 7)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def percentile_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """The two-sided percentile interval of bootstrap values at `confidence`."""
    ordered = sorted(values)
    tail = (1 - confidence) / 2
    return quantile(ordered, tail), quantile(ordered, 1 - tail)
