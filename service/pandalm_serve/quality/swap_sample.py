"""The sampled swap: judge a fraction of the pairs judged in one order again, swapped, in the background
(service flag --swap-sample-rate), so the swap-flip rate is measured even when callers never ask for swap.

The caller's response is already out: `offer` only decides (a seeded draw) and queues, never waits, and
drops (counted) when the queue is full. One worker judges the queued pairs one at a time, so the sampled
work adds at most one pair to the engine's load.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pandalm_client.models import CompareRequest, CompareResult, JudgeOptions, Verdict

from .metrics import QualityMetrics

logger = logging.getLogger(__name__)

JudgeCall = Callable[[CompareRequest], Awaitable[CompareResult]]
# A verdict of the swapped order, in the request's positions.
_UNSWAPPED: dict[Verdict, Verdict] = {"response1": "response2", "response2": "response1", "tie": "tie"}
DEFAULT_QUEUE_SIZE = 64


@dataclass(frozen=True, slots=True)
class _Sample:
    swapped: CompareRequest
    verdict: Verdict  # the original order's
    judge: str
    key: str


def swapped_request(request: CompareRequest) -> CompareRequest:
    """The same pair with its responses exchanged, judged in that one order."""
    options = (request.options or JudgeOptions()).model_copy(update={"swap": False})
    return request.model_copy(
        update={"response1": request.response2, "response2": request.response1, "options": options, "id": None}
    )


class SwapSampler:
    """Decide which one-order results to judge again swapped, and judge them in the background.

    `judge_pair` judges one request (the service's judge for `judge`); `rng` draws the samples (seed it for
    reproducible sampling). Run `run()` as a task for as long as the service runs.
    """

    def __init__(
        self,
        rate: float,
        judge_pair: JudgeCall,
        metrics: QualityMetrics,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"the swap sample rate is a fraction between 0 and 1, not {rate}")
        if queue_size < 1:
            raise ValueError(f"the sampled swap's queue holds at least one pair, not {queue_size}")
        self.rate = rate
        self._judge_pair = judge_pair
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[_Sample] = asyncio.Queue(queue_size)

    def offer(self, request: CompareRequest, result: CompareResult, judge: str, key: str) -> bool:
        """Maybe queue the swapped order of a pair judged in one order; True when queued. Never blocks.

        `request` is the pair as it was judged: pass the batch's options merged into the item's, so the
        swapped order is judged the same way (mode, preset, ...).
        """
        if result.status != "ok" or result.verdict is None or result.orders is not None:
            return False  # nothing to compare with, or already judged in both orders
        if isinstance(request.judge, list):
            return False  # a jury's verdict is not one judge's position bias
        if self.rate == 0 or self._rng.random() >= self.rate:
            return False
        try:
            self._queue.put_nowait(_Sample(swapped_request(request), result.verdict, judge, key))
        except asyncio.QueueFull:
            self._metrics.sampled_swaps.labels(judge=judge, outcome="dropped").inc()
            return False
        return True

    async def run(self) -> None:
        """Judge queued samples one at a time, forever (cancel the task to stop)."""
        while True:
            sample = await self._queue.get()
            try:
                await self._judge(sample)
            finally:
                self._queue.task_done()

    async def join(self) -> None:
        """Wait until every queued sample has been judged."""
        await self._queue.join()

    async def _judge(self, sample: _Sample) -> None:
        try:
            result = await self._judge_pair(sample.swapped)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a sample that cannot be judged costs a count, never the worker
            logger.warning("a sampled swap was not judged: %s", type(exc).__name__)
            self._metrics.sampled_swaps.labels(judge=sample.judge, outcome="failed").inc()
            return
        if result.status != "ok" or result.verdict is None:
            self._metrics.sampled_swaps.labels(judge=sample.judge, outcome="failed").inc()
            return
        self._metrics.sampled_swaps.labels(judge=sample.judge, outcome="judged").inc()
        flipped = _UNSWAPPED[result.verdict] != sample.verdict
        self._metrics.observe_swap(sample.judge, sample.key, "sampled", flipped=flipped)
