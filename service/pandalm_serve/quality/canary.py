"""The canary: judge a labelled set in the background, one item at a time and only while no real pair is
waiting, and export its agreement and changed verdicts (service flags --canary and --canary-interval-s).

Every item bypasses the verdict cache (a remembered verdict proves nothing about the deployment). Before
each item the runner asks `idle()` (the service: nothing waiting for a place) and waits in small steps while
it is false, so the canary never takes a place a caller is waiting for; at most one canary pair is in the
engine. A run where an item cannot be judged at all (the engine stopped, say) is abandoned and counted, its
figures left as they were: the availability alerts cover that, the canary's series are about verdicts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from pandalm_client.canary import CanaryItem, CanaryReport, recorded_labels, score
from pandalm_client.models import CompareRequest, CompareResult, JudgeOptions
from pandalm_client.testset import result_label

from .metrics import QualityMetrics

logger = logging.getLogger(__name__)

JudgeCall = Callable[[CompareRequest], Awaitable[CompareResult]]
Sleep = Callable[[float], Awaitable[None]]
# How long the canary waits before asking `idle()` again: short, so it resumes soon after a burst.
IDLE_POLL_S = 0.05


class Places(Protocol):
    """What the canary reads of the service's admission (judge/admission.py's `Admission`)."""

    waiting: int
    held: int
    in_flight: int
    max_in_flight: int


def free_place(places: Places) -> Callable[[], bool]:
    """The service's `idle()`: no pair waiting for a place (nor batch items held back), and a place free, so
    the canary's item takes a free place at once and never queues ahead of a caller."""
    return lambda: places.waiting == 0 and places.held == 0 and places.in_flight < places.max_in_flight


class Canary:
    """Judge `items` with `judge` every `interval_s` seconds, exporting each run through `metrics`.

    `judge_name` labels the series; `options` are the judging options of every item (the cache is always
    off); `sleep` and `clock` are injectable for tests.
    """

    def __init__(
        self,
        items: Sequence[CanaryItem],
        judge: JudgeCall,
        idle: Callable[[], bool],
        metrics: QualityMetrics,
        judge_name: str,
        *,
        interval_s: float,
        options: JudgeOptions | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        idle_poll_s: float = IDLE_POLL_S,
    ) -> None:
        if not items:
            raise ValueError("the canary has no items")
        if interval_s <= 0:
            raise ValueError(f"the canary's interval is a positive number of seconds, not {interval_s}")
        self.items = list(items)
        self.interval_s = interval_s
        self._judge = judge
        self._idle = idle
        self._metrics = metrics
        self.judge_name = judge_name
        self._requests = [item.request(options) for item in self.items]
        self._sleep = sleep
        self._clock = clock
        self._idle_poll_s = idle_poll_s
        self._first_run: list[int | None] | None = None
        self.last: CanaryReport | None = None
        self.last_finished_at: float | None = None

    async def run(self) -> None:
        """Run the canary, then wait `interval_s`, forever (cancel the task to stop)."""
        while True:
            await self.run_once()
            await self._sleep(self.interval_s)

    async def run_once(self) -> CanaryReport | None:
        """One run over every item; its report, or None when the run was abandoned."""
        results: list[CompareResult] = []
        for request in self._requests:
            while not self._idle():
                await self._sleep(self._idle_poll_s)
            try:
                results.append(await self._judge(request))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the service cannot judge now: abandon this run, try again next interval
                logger.warning("the canary run was abandoned: an item could not be judged (%s)", type(exc).__name__)
                self._metrics.observe_canary_failure(self.judge_name)
                return None
        if self._first_run is None and recorded_labels(self.items) is None:
            self._first_run = [result_label(r) for r in results]
        report = score(self.items, results, self._first_run)
        self.last, self.last_finished_at = report, self._clock()
        self._metrics.observe_canary(
            self.judge_name,
            {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "kappa": report.kappa},
            report.baseline_agreement or {},
            report.changed_ratio,
            report.statuses,
            self.last_finished_at,
        )
        return report

    def status(self) -> dict[str, Any]:
        """The last complete run, for an endpoint: its report, which judge, and when it ended (null before)."""
        return {
            "judge": self.judge_name,
            "items": len(self.items),
            "interval_s": self.interval_s,
            "finished_at": self.last_finished_at,
            "report": None if self.last is None else self.last.model_dump(mode="json"),
        }
