"""The sampled swap: how often it samples, what it measures, and that a full queue drops instead of waiting."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from prometheus_client import CollectorRegistry

from pandalm_client.models import CompareRequest, CompareResult, JudgeOptions, Verdict
from pandalm_serve.quality.metrics import QualityMetrics
from pandalm_serve.quality.swap_sample import JudgeCall, SwapSampler, swapped_request
from tests.quality.results import both_orders, one_order

REQUEST = CompareRequest(instruction="Capital of France?", response1="Paris.", response2="Lyon.", id="7")


async def never(request: CompareRequest) -> CompareResult:
    raise AssertionError("the sampler judged a pair it should not have")


def sampler(
    rate: float, judge: JudgeCall = never, *, queue_size: int = 64, seed: int = 0
) -> tuple[SwapSampler, CollectorRegistry]:
    registry = CollectorRegistry()
    return SwapSampler(rate, judge, QualityMetrics(registry), queue_size=queue_size, rng=random.Random(seed)), registry


def test_the_sampled_share_is_the_rate_within_binomial_bounds() -> None:
    draws, rate = 20_000, 0.1
    swap, _ = sampler(rate, queue_size=draws)
    sampled = sum(swap.offer(REQUEST, one_order("response1"), "pandalm", "-") for _ in range(draws))
    # Five standard deviations of Binomial(20000, 0.1): about 212 pairs.
    bound = 5 * math.sqrt(draws * rate * (1 - rate))
    assert abs(sampled - draws * rate) < bound, sampled


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 100)])
def test_rates_zero_and_one_sample_nothing_and_everything(rate: float, expected: int) -> None:
    swap, _ = sampler(rate, queue_size=100)
    assert sum(swap.offer(REQUEST, one_order("tie"), "pandalm", "-") for _ in range(100)) == expected


@pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan])
def test_a_rate_outside_zero_to_one_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        sampler(rate)


def test_results_with_nothing_to_compare_are_never_sampled() -> None:
    swap, _ = sampler(1.0)
    assert not swap.offer(REQUEST, one_order(None), "pandalm", "-")  # unparsed
    assert not swap.offer(REQUEST, CompareResult(status="error"), "pandalm", "-")
    assert not swap.offer(REQUEST, both_orders("response1", "response1"), "pandalm", "-")  # already swapped
    jury = REQUEST.model_copy(update={"judge": ["a", "b"]})
    assert not swap.offer(jury, one_order("response1"), "pandalm", "-")


def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    swap, registry = sampler(1.0, queue_size=2)
    offered = [swap.offer(REQUEST, one_order("response1"), "pandalm", "-") for _ in range(5)]
    assert offered == [True, True, False, False, False]
    dropped = registry.get_sample_value(
        "pandalm_quality_sampled_swaps_total", {"judge": "pandalm", "outcome": "dropped"}
    )
    assert dropped == 3


def test_the_swapped_request_exchanges_the_responses_in_one_order() -> None:
    swapped = swapped_request(REQUEST.model_copy(update={"options": JudgeOptions(swap=True, mode="verdict")}))
    assert (swapped.response1, swapped.response2) == ("Lyon.", "Paris.")
    assert swapped.options is not None and swapped.options.swap is False and swapped.options.mode == "verdict"


@pytest.mark.parametrize(
    ("original", "swapped_answer", "flipped"),
    [
        ("response1", "response2", False),  # Paris wins in both orders
        ("response1", "response1", True),  # the first position wins in both orders
        ("tie", "tie", False),
        ("tie", "response1", True),
    ],
)
async def test_the_flip_is_measured_in_the_background(
    original: Verdict, swapped_answer: Verdict, flipped: bool
) -> None:
    judged: list[CompareRequest] = []

    async def judge(request: CompareRequest) -> CompareResult:
        judged.append(request)
        return one_order(swapped_answer)

    swap, registry = sampler(1.0, judge)
    worker = asyncio.create_task(swap.run())
    try:
        assert swap.offer(REQUEST, one_order(original), "pandalm", "team-a")
        assert judged == []  # queued, not judged in the caller's time
        await swap.join()
    finally:
        worker.cancel()
    assert judged[0].response1 == "Lyon."
    labels = {"judge": "pandalm", "key": "team-a", "source": "sampled"}
    assert registry.get_sample_value("pandalm_quality_swap_pairs_total", labels) == 1
    assert registry.get_sample_value("pandalm_quality_swap_flips_total", labels) == int(flipped)


async def test_a_sample_that_fails_is_counted_and_the_worker_goes_on() -> None:
    answers: list[CompareResult | Exception] = [RuntimeError("engine died"), one_order(None), one_order("response2")]

    async def judge(request: CompareRequest) -> CompareResult:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    swap, registry = sampler(1.0, judge)
    worker = asyncio.create_task(swap.run())
    try:
        for _ in range(3):
            swap.offer(REQUEST, one_order("response1"), "pandalm", "-")
        await swap.join()
    finally:
        worker.cancel()
    count = "pandalm_quality_sampled_swaps_total"
    assert registry.get_sample_value(count, {"judge": "pandalm", "outcome": "failed"}) == 2
    assert registry.get_sample_value(count, {"judge": "pandalm", "outcome": "judged"}) == 1
