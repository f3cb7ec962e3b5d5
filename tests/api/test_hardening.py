"""A hostile but fair caller: no input gives a 500, limits hold before any work, failures are the right errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pandalm_client.models import MAX_ID_CHARS
from pandalm_serve.errors import EngineError
from tests.api.conftest import MakeClient
from tests.fakes import CharTokenizer, FakeEngine
from tests.support import PAIR, assert_error, wait_until

JSON = {"content-type": "application/json"}


def post(client: TestClient, path: str, raw: bytes | str, headers: dict[str, str] | None = None) -> Any:
    return client.post(path, content=raw, headers=headers if headers is not None else JSON)


@pytest.mark.parametrize("path", ["/compare", "/batch"])
def test_malformed_json_is_a_422_never_a_500(client: TestClient, path: str) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    huge_number = (
        '{"instruction": "a", "response1": "b", "response2": "c", "options": {"max_new_tokens": ' + "9" * 5000 + "}}"
    )
    cases: dict[str, str | bytes] = {
        "deep nesting": deep,
        "5,000-digit number": huge_number,
        "NaN": '{"instruction": NaN, "response1": "b", "response2": "c"}',
        "lone surrogate": '{"instruction": "a", "response1": "b", "response2": "c", "id": "\\ud800"}',
        "not UTF-8": b'{"instruction": "\xff\xfe", "response1": "b", "response2": "c"}',
        "truncated": '{"instruction": ',
    }
    for name, raw in cases.items():
        raw_bytes = raw.encode() if isinstance(raw, str) else raw
        in_batch = path == "/batch" and name not in ("deep nesting", "truncated")
        body = b'{"items": [' + raw_bytes + b"]}" if in_batch else raw_bytes
        response = post(client, path, body)
        assert response.status_code == 422, (name, response.status_code, response.text)
        assert response.json()["error"]["code"] == "invalid_request", name
    assert client.post("/compare", json=PAIR).status_code == 200  # still serving


def test_a_lone_surrogate_in_a_streamed_batch_is_a_422_before_the_stream(client: TestClient) -> None:
    raw = '{"items": [{"instruction": "a", "response1": "b", "response2": "c", "id": "\\udc00"}]}'
    response = client.post("/batch", content=raw, headers={**JSON, "accept": "application/x-ndjson"})
    assert_error(response, 422, "invalid_request")


def test_bodies_over_the_limit_are_refused_as_they_arrive(make_client: MakeClient) -> None:
    client = make_client(max_body_bytes=10_000)
    big = json.dumps({**PAIR, "response1": "x" * 20_000})
    assert_error(post(client, "/compare", big), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield big[:5000].encode()
        yield big[5000:].encode()

    response = client.post("/compare", content=chunks(), headers=JSON)
    assert_error(response, 413, "payload_too_large")
    assert client.post("/compare", json=PAIR).status_code == 200


def test_only_json_bodies_are_read(client: TestClient) -> None:
    body = json.dumps(PAIR)
    for headers in ({"content-type": "text/plain"}, {}, {"content-type": "application/x-www-form-urlencoded"}):
        assert_error(post(client, "/batch", body, headers), 415, "unsupported_media_type")
    assert post(client, "/compare", body, {"content-type": "application/json; charset=utf-8"}).status_code == 200


def test_fields_over_the_limit_and_strings_for_booleans_are_422(make_client: MakeClient) -> None:
    client = make_client(max_field_chars=100)
    error = assert_error(client.post("/compare", json={**PAIR, "response2": "y" * 101}), 422, "invalid_request")
    assert error["details"][0]["loc"] == ["response2"]
    body = client.post("/batch", json={"items": [PAIR, {**PAIR, "instruction": "i" * 101}]}).json()
    assert [r["status"] for r in body["results"]] == ["ok", "error"]
    assert_error(client.post("/compare", json={**PAIR, "options": {"swap": "1"}}), 422, "invalid_request")


def test_a_405_names_the_allowed_method(client: TestClient) -> None:
    response = client.get("/compare")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_with_swap_an_engine_error_is_that_error_not_a_500(make_client: MakeClient) -> None:
    client = make_client(FakeEngine(lambda p, s: EngineError("remote down", code="remote_unavailable")))
    assert_error(client.post("/compare", json={**PAIR, "options": {"swap": True}}), 503, "remote_unavailable")
    long = {**PAIR, "response1": "x" * 3000, "options": {"swap": True}}
    client = make_client(FakeEngine(tokenizer=CharTokenizer(), context_length=1000), max_new_tokens=100)
    assert_error(client.post("/compare", json=long), 400, "prompt_too_long")


def test_a_bug_is_one_500_counted_and_logged_once(make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(FakeEngine(lambda p, s: RuntimeError("secret internal detail")))
    error = assert_error(client.post("/compare", json=PAIR), 500, "internal_error")
    assert "secret" not in error["message"]
    assert sum("internal error" in r.getMessage() for r in caplog.records) == 1
    assert 'pandalm_http_requests_total{client="-",code="500",endpoint="/compare"} 1.0' in client.get("/metrics").text


def test_a_dead_engine_fails_liveness(make_client: MakeClient) -> None:
    engine = FakeEngine()
    client = make_client(engine, exit_on_engine_death=False)
    assert client.get("/healthz").status_code == 200
    engine.dead = True
    wait_until(lambda: client.get("/healthz").status_code != 200, "liveness sees the dead engine")
    assert_error(client.get("/healthz"), 503, "engine_dead")
    assert_error(client.post("/compare", json=PAIR), 503, "engine_dead")
    assert "pandalm_engine_ready 0.0" in client.get("/metrics").text


def test_a_pair_past_its_deadline_is_an_error_and_its_generation_is_aborted(make_client: MakeClient) -> None:
    engine = FakeEngine(release_at=10**9)  # the engine hangs until the test opens its gate
    client = make_client(engine, item_timeout_s=0.3)
    assert_error(client.post("/compare", json=PAIR), 504, "deadline_exceeded")
    wait_until(lambda: engine.cancelled == 1, "the engine's generation is cancelled")
    client.portal.call(engine.gate.set)  # type: ignore[union-attr]
    assert client.post("/compare", json=PAIR).status_code == 200


def test_shutdown_ends_every_pair_with_a_result_and_refuses_new_work(make_client: MakeClient) -> None:
    engine = FakeEngine(release_at=10**9)  # never answers: only the shutdown ends the pairs
    client = make_client(engine, shutdown_grace_s=0.5)
    services = client.app.state.services  # type: ignore[attr-defined]
    with client.stream(
        "POST", "/batch", json={"items": [PAIR] * 3}, headers={"accept": "application/x-ndjson"}
    ) as response:
        wait_until(lambda: services.judge.admission.in_flight == 3, "the three pairs are being judged")
        client.portal.call(services.begin_shutdown)  # type: ignore[union-attr]
        assert_error(client.get("/readyz"), 503, "shutting_down")
        assert_error(client.post("/compare", json=PAIR), 503, "shutting_down")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [r["error"]["code"] for r in lines[:-1]] == ["shutting_down"] * 3
    assert lines[-1]["summary"]["interrupted"] == 3 and lines[-1]["summary"]["error"] == 3


def test_past_the_waiting_bound_new_work_gets_429_with_retry_after(make_client: MakeClient) -> None:
    engine = FakeEngine(release_at=10**9)  # holds every pair until the test opens its gate
    client = make_client(engine, max_items_in_flight=1, max_items_waiting=2)
    admission = client.app.state.services.judge.admission  # type: ignore[attr-defined]
    codes: list[int] = []
    threads = [
        threading.Thread(target=lambda: codes.append(client.post("/compare", json=PAIR).status_code)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: (admission.in_flight, admission.waiting) == (1, 2), "one pair is judged and two wait")
    refused = client.post("/compare", json=PAIR)
    assert_error(refused, 429, "overloaded")
    assert refused.headers["retry-after"] == "5"
    assert_error(client.post("/batch", json={"items": [PAIR] * 10}), 429, "overloaded")
    client.portal.call(engine.gate.set)  # type: ignore[union-attr]
    for thread in threads:
        thread.join()
    assert codes == [200, 200, 200]
    # With room in the queue, a batch larger than it is taken, and joins the queue in parts.
    body = client.post("/batch", json={"items": [PAIR] * 6}).json()
    assert [r["status"] for r in body["results"]] == ["ok"] * 6


class BlockingTokenizer(CharTokenizer):
    """Tokenizes a long text only once the test has had a probe answered meanwhile (or after 5 s), without
    holding the GIL, as a Rust tokenizer does: were it run on the event loop, the probe could not answer."""

    def __init__(self) -> None:
        self.tokenizing = threading.Event()
        self.probe_answered = threading.Event()
        self.released_by_probe: list[bool] = []

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        if len(text) > 10_000:
            self.tokenizing.set()
            self.released_by_probe.append(self.probe_answered.wait(timeout=5))
        return super().encode(text, add_special_tokens)


def test_probes_answer_while_a_long_text_is_tokenized(make_client: MakeClient) -> None:
    tokenizer = BlockingTokenizer()
    client = make_client(FakeEngine(tokenizer=tokenizer, context_length=4_000_000), max_field_chars=2_000_000)
    worker = threading.Thread(target=lambda: client.post("/compare", json={**PAIR, "response1": "Word. " * 10_000}))
    worker.start()
    assert tokenizer.tokenizing.wait(10)
    assert client.get("/healthz").status_code == 200
    tokenizer.probe_answered.set()
    worker.join()
    assert tokenizer.released_by_probe and all(tokenizer.released_by_probe)


def test_an_id_longer_than_the_limit_is_refused_and_never_echoed(client: TestClient) -> None:
    huge = "i" * (MAX_ID_CHARS + 1)
    assert_error(client.post("/compare", json={**PAIR, "id": huge}), 422, "invalid_request")
    batch = client.post("/batch", json={"items": [{**PAIR, "id": huge}, {**PAIR, "id": "i" * MAX_ID_CHARS}]})
    first, second = batch.json()["results"]
    assert first["error"]["code"] == "invalid_request" and first["id"] is None
    assert second["status"] == "ok"
    assert huge not in batch.text
