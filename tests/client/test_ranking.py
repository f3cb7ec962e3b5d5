"""Tests for `pandalm_client.ranking`: Bradley-Terry against closed forms and direct maximum likelihood."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from scipy import optimize

from pandalm_client.ranking import bradley_terry, rank_models, win_rate_matrix


def test_bradley_terry_two_models_closed_form() -> None:
    # a beat b 5 times and never lost: with 0.01 virtual wins each way, s_a / s_b = 5.01 / 0.01.
    strengths = bradley_terry({("a", "b"): 5.0}, ["a", "b"])
    assert strengths["a"] == pytest.approx(math.sqrt(501), rel=1e-9)
    assert strengths["b"] == pytest.approx(1 / math.sqrt(501), rel=1e-9)


def test_bradley_terry_matches_direct_maximum_likelihood() -> None:
    wins = {("a", "b"): 7.0, ("b", "a"): 3.0, ("b", "c"): 6.0, ("c", "b"): 4.0, ("a", "c"): 8.5, ("c", "a"): 1.5}
    # scipy.optimize.minimize(method="BFGS", gtol=1e-12) of the negative log-likelihood over log-strengths,
    # with 0.01 added to every off-diagonal win count and the log-strengths constrained to sum to 0.
    expected = {"a": 2.3052151895669066, "b": 0.8576599817354209, "c": 0.5057936596585352}
    assert bradley_terry(wins, ["a", "b", "c"]) == pytest.approx(expected, rel=1e-7)


def test_bradley_terry_converges_when_one_model_wins_everything() -> None:
    # Plain MM is still about 70% off here after 1000 steps. Reference: the same BFGS fit as above, with the
    # analytic gradient and gtol=1e-10.
    wins = {
        ("a", "b"): 100.0,
        ("a", "c"): 100.0,
        ("a", "d"): 100.0,
        ("b", "c"): 60.0,
        ("c", "b"): 40.0,
        ("b", "d"): 70.0,
        ("d", "b"): 30.0,
        ("c", "d"): 55.0,
        ("d", "c"): 45.0,
    }
    expected = {"a": 1038.5098801492948, "b": 0.14945924937951033, "c": 0.09215276012177903, "d": 0.06991304582537725}
    assert bradley_terry(wins, ["a", "b", "c", "d"]) == pytest.approx(expected, rel=1e-8)


def test_bradley_terry_solves_the_likelihood_equations_on_a_total_order() -> None:
    # Every model beat every later one 50-0, so strengths span many orders of magnitude. At the maximum each
    # model's (virtual-inclusive) wins equal its expected wins: W_i = sum_j n_ij s_i / (s_i + s_j).
    names = list("abcdef")
    wins = {(x, y): 50.0 for x, y in itertools.combinations(names, 2)}
    strengths = bradley_terry(wins, names)
    assert sorted(strengths, key=strengths.__getitem__, reverse=True) == names
    for x in names:
        won = sum(50.0 for y in names[names.index(x) + 1 :]) + 0.01 * (len(names) - 1)
        expected = sum(50.02 * strengths[x] / (strengths[x] + strengths[y]) for y in names if y != x)
        assert expected == pytest.approx(won, rel=1e-9)


def test_bradley_terry_chain_closed_form() -> None:
    # a beat b and b beat c 1000-0, and a and c never met: each ratio is 1000.01 / 0.01.
    strengths = bradley_terry({("a", "b"): 1000.0, ("b", "c"): 1000.0}, ["a", "b", "c"])
    assert strengths == pytest.approx({"a": 100001.0, "b": 1.0, "c": 1 / 100001}, rel=1e-9)


TRUE_STRENGTHS = {"a": 4.0, "b": 2.0, "c": 1.0, "d": 0.5}


def synthetic_outcomes(seed: int, games: int = 100, tie_rate: float = 0.2) -> list[tuple[str, str, str, float]]:
    """Outcomes on prompts p0, p1, ... that every pair of models meets on, from a Bradley-Terry model with
    TRUE_STRENGTHS, some of them ties."""
    rng = random.Random(seed)
    outcomes = []
    for a, b in itertools.combinations(TRUE_STRENGTHS, 2):
        p_a = TRUE_STRENGTHS[a] / (TRUE_STRENGTHS[a] + TRUE_STRENGTHS[b])
        for k in range(games):
            if rng.random() < tie_rate:
                outcomes.append((f"p{k}", a, b, 0.5))
            else:
                outcomes.append((f"p{k}", a, b, 1.0 if rng.random() < p_a else 0.0))
    return outcomes


def wins_of(outcomes: list[tuple[str, str, str, float]]) -> dict[tuple[str, str], float]:
    wins: dict[tuple[str, str], float] = {}
    for _, a, b, score in outcomes:
        wins[(a, b)] = wins.get((a, b), 0.0) + score
        wins[(b, a)] = wins.get((b, a), 0.0) + 1 - score
    return wins


def test_bradley_terry_recovers_known_strengths() -> None:
    strengths = bradley_terry(wins_of(synthetic_outcomes(seed=1)), list(TRUE_STRENGTHS))
    assert sorted(strengths, key=strengths.__getitem__, reverse=True) == ["a", "b", "c", "d"]
    assert math.prod(strengths.values()) == pytest.approx(1.0)
    # True strengths normalised to a geometric mean of 1 are 2.83, 1.41, 0.71, 0.35; ties pull them together.
    gm = math.prod(TRUE_STRENGTHS.values()) ** (1 / 4)
    for model, strength in strengths.items():
        assert abs(math.log(strength) - math.log(TRUE_STRENGTHS[model] / gm)) < 0.35


def test_bradley_terry_ignores_model_order() -> None:
    wins = wins_of(synthetic_outcomes(seed=2))
    forward = bradley_terry(wins, ["a", "b", "c", "d"])
    assert bradley_terry(wins, ["d", "b", "a", "c"]) == forward
    reordered = dict(reversed(list(wins.items())))
    assert bradley_terry(reordered, ["c", "a", "d", "b"]) == pytest.approx(forward, rel=1e-12)


def test_bradley_terry_refuses_disconnected_or_unknown_models() -> None:
    with pytest.raises(ValueError, match="connect"):
        bradley_terry({("a", "b"): 1.0, ("c", "d"): 1.0}, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="not in models"):
        bradley_terry({("a", "z"): 1.0}, ["a", "b"])
    with pytest.raises(ValueError, match="prior"):
        bradley_terry({("a", "b"): 1.0}, ["a", "b"], prior=0.0)


def test_rank_models_orders_and_brackets_the_estimates() -> None:
    outcomes = synthetic_outcomes(seed=3)
    table = rank_models(outcomes, list(TRUE_STRENGTHS), bootstrap=200, seed=7)
    assert [r.model for r in table.rankings] == ["a", "b", "c", "d"]
    assert [r.rank for r in table.rankings] == [1, 2, 3, 4]
    point = bradley_terry(wins_of(outcomes), list(TRUE_STRENGTHS))
    for r in table.rankings:
        assert r.strength == pytest.approx(point[r.model], rel=1e-9)
        assert r.lower is not None and r.upper is not None and r.strength is not None
        assert r.lower < r.strength < r.upper
        assert r.rank_lower <= r.rank <= r.rank_upper
    assert table.rankings[0].rank_upper <= 2 and table.rankings[-1].rank_lower >= 3
    for d in table.differences:
        assert d.difference == pytest.approx(math.log(point[d.model] / point[d.other]), rel=1e-9)
        assert d.lower is not None and d.upper is not None and d.difference is not None
        assert d.lower < d.difference < d.upper
    assert len(table.differences) == 6 and table.skipped_resamples == 0


def test_rank_intervals_match_an_independent_prompt_bootstrap() -> None:
    """The same bootstrap written independently: numpy's generator draws prompts, scipy fits the likelihood."""
    names = list(TRUE_STRENGTHS)
    outcomes = synthetic_outcomes(seed=8, games=60)
    # wins[k, i, j]: model i's score against model j on prompt k.
    wins = np.zeros((60, 4, 4))
    for prompt, a, b, score in outcomes:
        k, i, j = int(prompt[1:]), names.index(a), names.index(b)
        wins[k, i, j] += score
        wins[k, j, i] += 1 - score

    def fit(games: np.ndarray) -> np.ndarray:
        table = games + 0.01 * ((games + games.T) > 0)  # the same 0.01 virtual wins between models that met

        def negative(theta: np.ndarray) -> float:
            t = np.append(theta, 0.0)
            return float(np.sum(table * np.logaddexp(0, t[None, :] - t[:, None])))

        return np.append(optimize.minimize(negative, np.zeros(3), method="BFGS", options={"gtol": 1e-9}).x, 0.0)

    rng = np.random.default_rng(1)
    gaps = np.array([fit(wins[rng.integers(0, 60, 60)].sum(axis=0)) for _ in range(400)])
    table = rank_models(outcomes, names, bootstrap=400, seed=2)
    for d in table.differences:
        i, j = names.index(d.model), names.index(d.other)
        low, high = np.percentile(gaps[:, i] - gaps[:, j], [2.5, 97.5])
        # Two bootstraps of 400 resamples each: their percentiles differ by Monte Carlo noise alone.
        assert d.lower == pytest.approx(low, abs=0.12) and d.upper == pytest.approx(high, abs=0.12)


def test_a_model_that_never_lost_is_reported_as_such() -> None:
    outcomes = [*synthetic_outcomes(seed=9, games=20)]
    outcomes += [(f"p{k}", "z", other, 1.0) for k in range(20) for other in TRUE_STRENGTHS]
    table = rank_models(outcomes, [*TRUE_STRENGTHS, "z"], bootstrap=50)
    top = table.rankings[0]
    assert (top.model, top.record, top.strength, top.lower, top.upper) == ("z", "never lost", None, None, None)
    assert (top.rank_lower, top.rank_upper) == (1, 1)
    assert all(d.difference is None for d in table.differences if "z" in (d.model, d.other))
    assert all(r.record is None and r.strength is not None for r in table.rankings[1:])


def test_rank_models_is_deterministic_for_a_seed() -> None:
    outcomes = synthetic_outcomes(seed=4)
    first = rank_models(outcomes, list(TRUE_STRENGTHS), bootstrap=100, seed=11)
    assert rank_models(outcomes, list(TRUE_STRENGTHS), bootstrap=100, seed=11) == first
    assert rank_models(outcomes, ["d", "c", "b", "a"], bootstrap=100, seed=11) == first
    other = rank_models(outcomes, list(TRUE_STRENGTHS), bootstrap=100, seed=12)
    assert [(r.lower, r.upper) for r in other.rankings] != [(r.lower, r.upper) for r in first.rankings]


def test_rank_models_skips_and_counts_resamples_that_lose_a_model() -> None:
    # e played on one prompt only: resampling prompts leaves it out of about a third of the resamples.
    outcomes = [*synthetic_outcomes(seed=5, games=20), ("extra", "e", "a", 1.0), ("extra", "e", "b", 0.0)]
    table = rank_models(outcomes, [*TRUE_STRENGTHS, "e"], bootstrap=50)
    assert {r.model for r in table.rankings} == {"a", "b", "c", "d", "e"}
    assert 5 < table.skipped_resamples < 35
    assert all(r.lower is not None and 0 < r.lower <= (r.upper or 0) for r in table.rankings)


def test_win_rate_matrix() -> None:
    outcomes = [("a", "b", 1.0), ("a", "b", 0.5), ("b", "a", 1.0), ("a", "c", 0.0)]
    assert win_rate_matrix(outcomes, ["a", "b", "c"]) == {
        "a": {"a": None, "b": 0.5, "c": 0.0},
        "b": {"a": 0.5, "b": None, "c": None},
        "c": {"a": 1.0, "b": None, "c": None},
    }
    outcomes = [("a", "b", 1.0), ("a", "b", 1.0), ("b", "a", 0.5), ("a", "b", 0.0)]
    matrix = win_rate_matrix(outcomes, ["a", "b"])
    assert matrix["a"]["b"] == pytest.approx(2.5 / 4)
    assert matrix["b"]["a"] == pytest.approx(1.5 / 4)
