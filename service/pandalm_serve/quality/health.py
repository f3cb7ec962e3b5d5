"""Judge health, wired into the service: every live result counted in the quality series, the sampled swap, and a
canary per judge (settings --swap-sample-rate, --canary, --canary-interval-s).

The panel (judge/panel.py) hands each result of a caller's pair to `observe`. The sampled swap and the canary
judge through a judge directly, never through the panel, so their own results are not counted as traffic in the
quality series (they are in `pandalm_judgements_total`, which counts the engine's work). The builtin canary's
recorded verdicts are PandaLM-7B's: they are the baseline of judges of the pandalm family; another family's
canary compares each run with its first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence

from pandalm_client.canary import CanaryItem, load_canary
from pandalm_client.models import CompareRequest, CompareResult, JudgeOptions

from ..families.pandalm import PANDALM
from ..judge.judge import Judge
from ..judge.options import layered
from ..settings import Settings
from .canary import Canary, JudgeCall, free_place
from .metrics import QualityMetrics
from .swap_sample import SwapSampler

# The admission names these callers (fair shares), as it names an API key.
SAMPLED_SWAP_CLIENT = "sampled-swap"
CANARY_CLIENT = "canary"


class JudgeHealth:
    """The quality series, the sampled swap and the canaries of the service's judges."""

    def __init__(self, settings: Settings, metrics: QualityMetrics, judges: Sequence[Judge]) -> None:
        self.metrics = metrics
        self.judges = {judge.name: judge for judge in judges}
        self.sampler = (
            SwapSampler(settings.swap_sample_rate, self._judge_sample, metrics)
            if settings.swap_sample_rate > 0
            else None
        )
        items = load_canary(settings.canary) if settings.canary is not None else []
        self.canaries = [
            Canary(
                _baseline_for(judge, items),
                _canary_call(judge),
                free_place(judge.admission),
                metrics,
                judge.name,
                interval_s=settings.canary_interval_s,
            )
            for judge in judges
            if items and "pairwise" in judge.family.modes
        ]
        self._tasks: list[asyncio.Task[None]] = []

    def observe(
        self, request: CompareRequest, batch_options: JudgeOptions | None, result: CompareResult, judge: str, key: str
    ) -> None:
        """A caller's pair, judged: count it, and maybe judge it again swapped in the background, with the options
        it was judged with (its batch's under its own)."""
        self.metrics.observe(result, judge, key)
        if self.sampler is not None:
            as_judged = {"judge": judge, "options": layered(batch_options, request.options)}
            self.sampler.offer(request.model_copy(update=as_judged), result, judge, key)

    def start(self) -> None:
        """Start the background work, once every judge is ready."""
        if self.sampler is not None:
            self._tasks.append(asyncio.create_task(self.sampler.run()))
        self._tasks.extend(asyncio.create_task(canary.run()) for canary in self.canaries)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _judge_sample(self, request: CompareRequest) -> CompareResult:
        assert isinstance(request.judge, str)
        return await self.judges[request.judge].compare(request, client=SAMPLED_SWAP_CLIENT)


def _baseline_for(judge: Judge, items: list[CanaryItem]) -> list[CanaryItem]:
    """The canary's items for `judge`: with their recorded (PandaLM-7B) verdicts only for a PandaLM judge."""
    if judge.family.name == PANDALM.name:
        return items
    return [dataclasses.replace(item, recorded=None) for item in items]


def _canary_call(judge: Judge) -> JudgeCall:
    """How the canary judges an item: by `judge` itself (not the panel), under its own name in admission."""

    async def compare(request: CompareRequest) -> CompareResult:
        return await judge.compare(request, client=CANARY_CLIENT)

    return compare
