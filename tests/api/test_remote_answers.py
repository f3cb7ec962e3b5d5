"""A /batch through the remote engine while the server answers some items with garbage: those items are
`remote_bad_response`, the others are judged, and the NDJSON stream ends with its summary."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.api.conftest import wait_ready
from tests.fakes import MALFORMED_ANSWERS, FakeOpenAIServer, ThreadedOpenAIServer
from tests.support import PAIR

SHAPES = sorted(MALFORMED_ANSWERS)


@pytest.fixture
def client() -> Iterator[TestClient]:
    def shape_named_in(prompt: str) -> str | None:
        return next((shape for shape in SHAPES if f"[{shape}]" in prompt), None)

    server = FakeOpenAIServer()
    server.malformed = shape_named_in
    with ThreadedOpenAIServer(server) as running:
        settings = Settings(engine="remote", remote_url=running.url, remote_prompt_format="text", cache_backend="off")
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            wait_ready(client)
            yield client


def items() -> list[dict[str, str]]:
    bad = [{**PAIR, "id": shape, "instruction": f"[{shape}] {PAIR['instruction']}"} for shape in SHAPES]
    return bad + [{**PAIR, "id": f"good-{i}", "instruction": f"good {i}"} for i in range(3)]


def test_each_malformed_answer_fails_its_item_alone(client: TestClient) -> None:
    response = client.post("/batch", json={"items": items()})
    assert response.status_code == 200, response.text
    by_id = {r["id"]: r for r in response.json()["results"]}
    for shape in SHAPES:
        assert by_id[shape]["status"] == "error" and by_id[shape]["error"]["code"] == "remote_bad_response"
    assert all(by_id[f"good-{i}"]["status"] == "ok" for i in range(3))
    assert response.json()["summary"]["error"] == len(SHAPES)


def test_the_stream_ends_with_its_summary(client: TestClient) -> None:
    with client.stream("POST", "/batch", json={"items": items()}, headers={"accept": "application/x-ndjson"}) as r:
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert len(lines) == len(SHAPES) + 3 + 1
    assert lines[-1]["summary"]["error"] == len(SHAPES)
    assert sum(lines[-1]["summary"][v] for v in ("response1", "response2", "tie")) == 3


def test_compare_answers_502_not_500(client: TestClient) -> None:
    response = client.post("/compare", json={**PAIR, "instruction": "[usage_strings] sum"})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "remote_bad_response"
