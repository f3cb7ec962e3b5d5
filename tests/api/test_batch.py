from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from pandalm_serve.engines.base import EnginePrompt, Sampling
from pandalm_serve.errors import EngineError
from tests.api.conftest import MakeClient
from tests.fakes import FakeEngine
from tests.support import PAIR, assert_error

NDJSON = "application/x-ndjson"


def by_first_response(prompt: EnginePrompt, sampling: Sampling) -> str | Exception:
    """Prefer response 1 when it says "good", response 2 when "bad", fail when "boom", else babble."""
    first = prompt.text.split("### Response 1:\n")[1].split("\n")[0]
    if first == "boom":
        return EngineError("engine exploded", code="engine_error")
    label = {"good": "1", "bad": "2", "same": "Tie"}.get(first)
    return f"{label}\n\n### Reason: r\n\n### Reference: x\n" if label else "no idea"


def item(first: str, **extra: Any) -> dict[str, Any]:
    return {**PAIR, "response1": first, **extra}


def test_batch_keeps_order_and_summarises(make_client: MakeClient) -> None:
    client = make_client(FakeEngine(by_first_response))
    items = [item("good", id="a"), item("bad"), item("same"), item("babble"), item("boom"), item("good")]
    response = client.post("/batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(6))
    assert results[0]["id"] == "a"
    assert [r["verdict"] for r in results] == ["response1", "response2", "tie", None, None, "response1"]
    assert [r["status"] for r in results] == ["ok", "ok", "ok", "unparsed", "error", "ok"]
    assert results[4]["error"]["code"] == "engine_error"
    assert body["summary"] == {
        "response1": 2,
        "response2": 1,
        "tie": 1,
        "unparsed": 1,
        "error": 1,
        "inconsistent": 0,
        "interrupted": 0,
    }


def test_items_run_concurrently(make_client: MakeClient) -> None:
    # Each generation waits until all 20 are in the engine at once: one at a time, none would finish. The
    # pairs differ, as identical ones in flight together share one generation.
    engine = FakeEngine(release_at=20)
    items = [{**PAIR, "instruction": f"Add 2 and {i}."} for i in range(20)]
    response = make_client(engine).post("/batch", json={"items": items})
    assert [r["status"] for r in response.json()["results"]] == ["ok"] * 20


def test_invalid_items_fail_alone(make_client: MakeClient) -> None:
    client = make_client()
    items: list[Any] = [
        PAIR,
        {"instruction": "missing responses", "id": "bad-1"},
        "not an object",
        {**PAIR, "options": {"nope": 1}},
        {**PAIR, "response2": 42},
        PAIR,
    ]
    body = client.post("/batch", json={"items": items}).json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["ok", "error", "error", "error", "error", "ok"]
    assert body["results"][1]["id"] == "bad-1"
    assert all(r["error"]["code"] == "invalid_request" for r in body["results"][1:5])
    assert body["summary"]["error"] == 4


def test_option_layers_batch_then_item(make_client: MakeClient) -> None:
    engine = FakeEngine()
    client = make_client(engine, max_new_tokens=400)
    items = [PAIR, {**PAIR, "options": {"max_new_tokens": 50}}, {**PAIR, "options": {"preset": "greedy"}}]
    client.post("/batch", json={"items": items, "options": {"preset": "beam", "max_new_tokens": 200}})
    got = sorted((s.preset, s.max_new_tokens) for s in engine.samplings)
    assert got == sorted([("beam", 200), ("beam", 50), ("greedy", 200)])


def test_item_option_over_the_limit_is_an_item_error(make_client: MakeClient) -> None:
    client = make_client(max_new_tokens=64)
    body = client.post("/batch", json={"items": [PAIR, {**PAIR, "options": {"max_new_tokens": 999}}]}).json()
    assert [r["status"] for r in body["results"]] == ["ok", "error"]
    assert body["results"][1]["error"]["code"] == "invalid_option"


def test_an_invalid_batch_level_option_fails_the_whole_request(make_client: MakeClient) -> None:
    engine = FakeEngine()
    engine.presets = frozenset({"greedy"})  # as the remote engine: no beam search
    client = make_client(engine, max_new_tokens=64)
    error = assert_error(
        client.post("/batch", json={"items": [PAIR], "options": {"max_new_tokens": 65}}), 422, "invalid_option"
    )
    assert error["details"]["limit"] == 64
    assert_error(client.post("/batch", json={"items": [PAIR], "options": {"preset": "beam"}}), 422, "invalid_option")
    with client.stream(
        "POST", "/batch", json={"items": [PAIR], "options": {"preset": "beam"}}, headers={"Accept": NDJSON}
    ) as response:
        assert response.status_code == 422
    assert engine.prompts == []


def test_bad_envelopes_are_4xx(make_client: MakeClient) -> None:
    client = make_client(max_batch_items=3)
    assert_error(client.post("/batch", json=[PAIR]), 422, "invalid_request")
    assert_error(client.post("/batch", json={"pairs": [PAIR]}), 422, "invalid_request")
    assert_error(client.post("/batch", json={"items": []}), 422, "invalid_request")
    assert_error(client.post("/batch", json={"items": [PAIR], "options": {"bogus": 1}}), 422, "invalid_request")
    assert_error(
        client.post("/batch", content=b"[", headers={"content-type": "application/json"}), 422, "invalid_request"
    )
    error = assert_error(client.post("/batch", json={"items": [PAIR] * 4}), 413, "batch_too_large")
    assert error["details"] == {"items": 4, "max_batch_items": 3}


def test_ndjson_streams_each_result_then_the_summary(make_client: MakeClient) -> None:
    client = make_client(FakeEngine(by_first_response))
    items = [item("good"), item("bad"), item("boom")]
    with client.stream("POST", "/batch", json={"items": items}, headers={"Accept": "application/x-ndjson"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert len(lines) == 4
    results, summary = lines[:3], lines[3]
    assert sorted(r["index"] for r in results) == [0, 1, 2]
    verdicts = {r["index"]: r["verdict"] for r in results}
    assert verdicts == {0: "response1", 1: "response2", 2: None}
    assert summary == {
        "summary": {
            "response1": 1,
            "response2": 1,
            "tie": 0,
            "unparsed": 0,
            "error": 1,
            "inconsistent": 0,
            "interrupted": 0,
        }
    }


def test_batch_before_the_engine_is_ready_is_a_503(make_client: MakeClient) -> None:
    client: TestClient = make_client(FakeEngine(start_error=RuntimeError("no weights")), ready=False)
    assert_error(client.post("/batch", json={"items": [PAIR]}), 503, "engine_failed")
