"""What /metrics tells an operator, after real traffic through the app (fake engine)."""

from __future__ import annotations

import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import MakeClient
from tests.fakes import CharTokenizer, FakeEngine
from tests.support import PAIR


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_after_compare_and_batch_traffic(make_client: MakeClient) -> None:
    engine = FakeEngine(tokenizer=CharTokenizer(), context_length=900)
    client = make_client(engine, max_new_tokens=100)
    client.post("/compare", json=PAIR)
    client.post("/compare", json={**PAIR, "response1": "x" * 2000})  # too long for the context
    client.post("/batch", json={"items": [PAIR, PAIR, {"bad": 1}], "options": {"swap": True}})
    found = samples(client.get("/metrics").text)

    assert found[("pandalm_build_info", (("engine", "fake"), ("family", "pandalm"), ("judge", "pandalm"),
                  ("model", "fake-judge"), ("template_version", "pandalm-v1"), ("version", "0.1.0")))] == 1  # fmt: skip
    assert found[("pandalm_engine_ready", ())] == 1
    assert (
        found[
            (
                "pandalm_judgements_total",
                (
                    ("judge", "pandalm"),
                    ("outcome", "response1"),
                ),
            )
        ]
        == 1
    )
    # The fake judge always says 1: in both orders, which disagree, so a tie.
    assert (
        found[
            (
                "pandalm_judgements_total",
                (
                    ("judge", "pandalm"),
                    ("outcome", "tie"),
                ),
            )
        ]
        == 2
    )
    assert found[("pandalm_swap_inconsistent_total", (("judge", "pandalm"),))] == 2
    assert (
        found[
            (
                "pandalm_judgements_total",
                (
                    ("judge", "pandalm"),
                    ("outcome", "error"),
                ),
            )
        ]
        == 2
    )  # too long, and the bad item
    assert found[("pandalm_prompts_too_long_total", ())] == 1
    assert found[("pandalm_batch_items_count", ())] == 1
    assert found[("pandalm_batch_items_sum", ())] == 3
    assert found[("pandalm_swap_pairs_total", (("judge", "pandalm"),))] == 2
    assert (
        found[("pandalm_generations_total", (("finish_reason", "stop"), ("judge", "pandalm")))] == 5
    )  # 1 + 2 orders x 2
    assert found[("pandalm_items_in_flight", ())] == 0
    assert found[("pandalm_items_waiting", ())] == 0
    assert found[("pandalm_item_queue_seconds_count", ())] == 4  # every pair but the invalid item
    assert found[("pandalm_http_requests_total", (("client", "-"), ("code", "400"), ("endpoint", "/compare")))] == 1
    assert found[("pandalm_http_request_duration_seconds_count", (("endpoint", "/batch"),))] == 1
    # The process-wide registry (where vLLM registers its vllm:* metrics) is rendered on the same endpoint.
    assert any(name.startswith(("process_", "python_")) for name, _ in found)


def test_pairs_beyond_the_limit_wait_their_turn_and_are_counted(make_client: MakeClient) -> None:
    engine = FakeEngine(delay_s=0.3)
    client = make_client(engine, max_items_in_flight=2)
    seen: list[tuple[float, float]] = []

    def watch() -> None:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            found = samples(client.get("/metrics").text)
            seen.append((found[("pandalm_items_in_flight", ())], found[("pandalm_items_waiting", ())]))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    response = client.post("/batch", json={"items": [PAIR] * 6})
    watcher.join()
    assert response.status_code == 200
    assert max(in_flight for in_flight, _ in seen) == 2
    assert max(waiting for _, waiting in seen) == 4
    found = samples(client.get("/metrics").text)
    assert found[("pandalm_item_queue_seconds_sum", ())] > 0.5  # the last two waited two rounds of 0.3 s
