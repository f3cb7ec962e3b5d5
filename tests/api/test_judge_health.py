"""Judge health in the running app: the quality series of live traffic, the sampled swap in the background, and a
canary that yields to callers (issue 26)."""

from __future__ import annotations

import statistics
import time

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import MakeClient
from tests.fakes import FakeEngine, prefers_longer
from tests.support import wait_until

PAIR = {"instruction": "Add 2 and 2.", "response1": "4, of course", "response2": "5"}
BATCH = {"items": [{**PAIR, "id": str(i), "options": {"cache": False}} for i in range(12)]}


def sample(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_live_results_are_counted_in_the_quality_series_by_judge(make_client: MakeClient) -> None:
    client = make_client(FakeEngine(prefers_longer))
    client.post("/compare", json=PAIR)
    client.post("/compare", json={**PAIR, "options": {"swap": True}})
    assert sample(client, "pandalm_quality_verdicts_total", judge="pandalm", outcome="response1") == 2
    assert sample(client, "pandalm_quality_swap_pairs_total", judge="pandalm", source="request") == 1
    # The longer response wins in either position: no flip.
    assert sample(client, "pandalm_quality_swap_flips_total", judge="pandalm", source="request") == 0


def test_the_sampled_swap_judges_the_other_order_in_the_background(make_client: MakeClient) -> None:
    engine = FakeEngine(prefers_longer)
    client = make_client(engine, swap_sample_rate=1.0)
    result = client.post("/compare", json=PAIR).json()
    assert result["orders"] is None  # the caller's result is one order, as asked
    wait_until(lambda: sample(client, "pandalm_quality_swap_pairs_total", source="sampled") == 1, "the sample")
    assert sample(client, "pandalm_quality_swap_flips_total", source="sampled") == 0
    swapped = engine.prompts[1].text
    assert swapped.index("5") < swapped.index("4, of course")  # the second prompt is the swapped order


def burst_latency(client: TestClient) -> float:
    started = time.perf_counter()
    assert client.post("/batch", json=BATCH).json()["summary"]["error"] == 0
    return time.perf_counter() - started


def test_the_canary_yields_to_callers(make_client: MakeClient) -> None:
    """One place in flight, shared fairly between callers: a canary that did not yield would take every other
    place of a burst. It takes none while a pair waits, so a burst's latency is the same with it running."""
    quiet = make_client(FakeEngine(prefers_longer, delay_s=0.02), max_items_in_flight=1)
    engine = FakeEngine(prefers_longer, delay_s=0.02)
    busy = make_client(engine, max_items_in_flight=1, canary="builtin", canary_interval_s=0.001)
    wait_until(lambda: len(engine.prompts) > 3, "the canary to start judging")
    without = [burst_latency(quiet) for _ in range(5)]
    with_canary = []
    for _ in range(5):
        before = len(engine.prompts)
        with_canary.append(burst_latency(busy))
        judged = [p.text for p in engine.prompts[before:]]
        ours = [i for i, text in enumerate(judged) if "4, of course" in text]
        # Between the burst's first and last pair, no canary pair started.
        assert len(ours) == len(BATCH["items"]) and ours == list(range(ours[0], ours[0] + len(ours)))
    assert sample(busy, "pandalm_canary_runs_total", judge="pandalm", outcome="complete") >= 1
    # At most the one canary pair in flight when the burst came: 0.02 s on a burst of 12 x 0.02 s.
    assert statistics.median(with_canary) <= statistics.median(without) + 0.1, (with_canary, without)
