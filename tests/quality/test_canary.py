"""The service's canary: it yields to real traffic, bypasses the cache, and exports agreement and changes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from pandalm_client.canary import CanaryItem, load_canary
from pandalm_client.models import CompareRequest, CompareResult, Verdict
from pandalm_client.testset import LABEL_VERDICTS
from pandalm_serve.judge.admission import Admission
from pandalm_serve.metrics import Metrics
from pandalm_serve.quality.canary import Canary, free_place
from pandalm_serve.quality.metrics import QualityMetrics
from tests.quality.results import canary_items, one_order

# Gold labels 1, 2, 0, 1 judged 1, 2, 1 and unparsed: accuracy 2/4; F1 of label 0: 0, of 1: 1/2, of 2: 1
# (macro 1/2); kappa: chance agreement 1/2 * 1/2 + 1/4 * 1/4 = 5/16, (1/2 - 5/16) / (1 - 5/16) = 3/11.
GOLDS = [1, 2, 0, 1]
JUDGED: list[Verdict | None] = ["response1", "response2", "response1", None]


class Traffic:
    """The service as the canary sees it: whether pairs are waiting, and a judge that records its calls."""

    def __init__(self, verdicts: Sequence[Verdict | None]) -> None:
        self.verdicts = list(verdicts)
        self.waiting = 0
        self.calls: list[tuple[CompareRequest, int]] = []  # each request, with the pairs waiting when it started
        self.polls = 0

    def idle(self) -> bool:
        return self.waiting == 0

    async def judge(self, request: CompareRequest) -> CompareResult:
        self.calls.append((request, self.waiting))
        return one_order(self.verdicts[(len(self.calls) - 1) % len(self.verdicts)])

    async def sleep(self, seconds: float) -> None:
        # A pair leaves the queue each time the canary waits: no wall clock, only these steps.
        self.polls += 1
        self.waiting = max(0, self.waiting - 1)
        await asyncio.sleep(0)


def canary(items: list[CanaryItem], traffic: Traffic) -> tuple[Canary, CollectorRegistry]:
    registry = CollectorRegistry()
    runner = Canary(
        items, traffic.judge, traffic.idle, QualityMetrics(registry), "pandalm",
        interval_s=60, sleep=traffic.sleep, clock=lambda: 1_700_000_000.0,
    )  # fmt: skip
    return runner, registry


async def test_no_item_starts_while_real_pairs_wait() -> None:
    traffic = Traffic(JUDGED)
    traffic.waiting = 3
    runner, _ = canary(canary_items(GOLDS), traffic)
    await runner.run_once()
    assert traffic.polls == 3  # it waited, in steps, until the queue was empty
    assert [waiting for _, waiting in traffic.calls] == [0, 0, 0, 0]
    assert len(traffic.calls) == len(GOLDS)


async def test_every_item_bypasses_the_cache() -> None:
    traffic = Traffic(JUDGED)
    runner, _ = canary(canary_items(GOLDS), traffic)
    await runner.run_once()
    assert all(request.options is not None and request.options.cache is False for request, _ in traffic.calls)


async def test_agreement_on_a_set_computed_by_hand() -> None:
    traffic = Traffic(JUDGED)
    runner, registry = canary(canary_items(GOLDS), traffic)
    report = await runner.run_once()
    assert report is not None
    assert (report.accuracy, report.macro_f1, report.kappa) == (0.5, 0.5, pytest.approx(3 / 11))
    agreement = "pandalm_canary_agreement"
    assert registry.get_sample_value(agreement, {"judge": "pandalm", "metric": "accuracy"}) == 0.5
    assert registry.get_sample_value(agreement, {"judge": "pandalm", "metric": "macro_f1"}) == 0.5
    assert registry.get_sample_value(agreement, {"judge": "pandalm", "metric": "kappa"}) == pytest.approx(3 / 11)
    assert registry.get_sample_value("pandalm_canary_items", {"judge": "pandalm", "status": "unparsed"}) == 1
    assert registry.get_sample_value("pandalm_canary_last_run_timestamp_seconds", {"judge": "pandalm"}) == 1.7e9


async def test_changed_share_is_zero_when_the_recorded_verdicts_come_back() -> None:
    recorded = [1, 2, 1, 0]
    traffic = Traffic([LABEL_VERDICTS[label] for label in recorded])
    runner, registry = canary(canary_items(GOLDS, recorded), traffic)
    report = await runner.run_once()
    assert report is not None and report.baseline == "recorded"
    assert (report.changed, report.changed_ratio) == (0, 0.0)
    assert registry.get_sample_value("pandalm_canary_changed_ratio", {"judge": "pandalm"}) == 0.0
    # The recorded verdicts' own agreement is the baseline the alert compares with.
    baseline = registry.get_sample_value(
        "pandalm_canary_baseline_agreement", {"judge": "pandalm", "metric": "accuracy"}
    )
    assert baseline == 0.5


async def test_changed_share_counts_different_and_missing_verdicts() -> None:
    traffic = Traffic(JUDGED)  # 1, 2, 1, unparsed
    runner, registry = canary(canary_items(GOLDS, [1, 1, 1, 1]), traffic)
    report = await runner.run_once()
    assert report is not None
    assert (report.changed, report.changed_ratio, report.changed_ids) == (2, 0.5, [1, 3])
    assert registry.get_sample_value("pandalm_canary_changed_ratio", {"judge": "pandalm"}) == 0.5


async def test_without_recorded_verdicts_the_first_run_is_the_baseline() -> None:
    traffic = Traffic([*JUDGED, "response1", "response2", "tie", "tie"])
    runner, registry = canary(canary_items(GOLDS), traffic)
    first = await runner.run_once()
    assert first is not None and first.baseline == "first_run" and first.changed == 0
    second = await runner.run_once()
    # Item 2 changed; item 3 had no verdict the first time, so nothing to compare it with.
    assert second is not None and (second.changed_ids, second.compared) == ([2], 3)
    assert registry.get_sample_value("pandalm_canary_changed_ratio", {"judge": "pandalm"}) == pytest.approx(1 / 3)


async def test_a_run_whose_item_cannot_be_judged_is_abandoned_and_counted() -> None:
    traffic = Traffic(JUDGED)

    async def failing(request: CompareRequest) -> CompareResult:
        raise ConnectionError("engine gone")

    registry = CollectorRegistry()
    runner = Canary(canary_items(GOLDS), failing, traffic.idle, QualityMetrics(registry), "pandalm", interval_s=60)
    assert await runner.run_once() is None
    assert runner.status()["report"] is None
    assert registry.get_sample_value("pandalm_canary_runs_total", {"judge": "pandalm", "outcome": "failed"}) == 1
    assert registry.get_sample_value("pandalm_canary_changed_ratio", {"judge": "pandalm"}) is None


async def test_it_runs_again_every_interval() -> None:
    traffic = Traffic(JUDGED)
    intervals: list[float] = []
    stop = asyncio.Event()

    async def sleep(seconds: float) -> None:
        intervals.append(seconds)
        if len(intervals) == 2:
            stop.set()
            await asyncio.Event().wait()  # stays here until cancelled

    registry = CollectorRegistry()
    runner = Canary(
        canary_items(GOLDS),
        traffic.judge,
        traffic.idle,
        QualityMetrics(registry),
        "pandalm",
        interval_s=900,
        sleep=sleep,
    )
    task = asyncio.create_task(runner.run())
    await stop.wait()
    task.cancel()
    assert intervals == [900, 900] and len(traffic.calls) == 2 * len(GOLDS)
    status = runner.status()
    assert status["report"]["items"] == 4 and status["judge"] == "pandalm"


async def test_the_builtin_canary_reproduced_changes_nothing() -> None:
    items = load_canary("builtin")
    traffic = Traffic([LABEL_VERDICTS[c.recorded] for c in items if c.recorded is not None])
    runner, _ = canary(items, traffic)
    report = await runner.run_once()
    assert report is not None and report.changed_ratio == 0.0 and report.compared == len(items) == 30


@pytest.mark.parametrize("interval_s", [0, -1])
def test_a_non_positive_interval_is_refused(interval_s: float) -> None:
    traffic = Traffic(JUDGED)
    with pytest.raises(ValueError, match="positive"):
        Canary(
            canary_items(GOLDS),
            traffic.judge,
            traffic.idle,
            QualityMetrics(CollectorRegistry()),
            "p",
            interval_s=interval_s,
        )


async def test_with_the_services_admission_the_canary_waits_for_callers_to_be_served() -> None:
    # The real admission with one place: a caller holds it and another waits. The canary calls the judge
    # only once both were served, when its item takes the free place at once.
    admission = Admission(max_in_flight=1, max_waiting=10, metrics=Metrics())
    events: list[tuple[str, int, int]] = []  # (what, pairs waiting, pairs in flight)
    first_done, second_done = asyncio.Event(), asyncio.Event()

    async def caller(name: str, release: asyncio.Event) -> None:
        async with admission.slot(name):
            events.append((name, admission.waiting, admission.in_flight))
            await release.wait()

    async def judge(request: CompareRequest) -> CompareResult:
        events.append(("canary", admission.waiting, admission.in_flight))
        # A canary that did not wait frees the callers here: the test then fails on `events`, it does not hang.
        first_done.set()
        second_done.set()
        async with admission.slot("canary"):
            return one_order("tie")

    async def sleep(seconds: float) -> None:
        # Each wait of the canary lets one caller finish.
        (second_done if first_done.is_set() else first_done).set()
        await asyncio.sleep(0)

    callers = [asyncio.create_task(caller("a", first_done)), asyncio.create_task(caller("b", second_done))]
    await asyncio.sleep(0)
    assert admission.waiting == 1 and admission.in_flight == 1
    runner = Canary(
        canary_items([0]), judge, free_place(admission), QualityMetrics(CollectorRegistry()), "pandalm",
        interval_s=60, sleep=sleep,
    )  # fmt: skip
    await runner.run_once()
    await asyncio.gather(*callers)
    assert events == [("a", 0, 1), ("b", 0, 1), ("canary", 0, 0)]
