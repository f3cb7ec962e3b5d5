from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from pandalm_client.models import ErrorResponse
from pandalm_serve.errors import ERRORS
from pandalm_serve.judge.prompt import TEMPLATE_VERSION
from tests.api.conftest import MakeClient, wait_ready
from tests.fakes import FakeEngine
from tests.support import PAIR, assert_error


class SlowStartEngine(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def start(self) -> None:
        await self.release.wait()
        await super().start()


def test_not_ready_until_the_engine_has_loaded(make_client: MakeClient) -> None:
    engine = SlowStartEngine()
    client = make_client(engine, ready=False)
    assert client.get("/healthz").status_code == 200
    assert_error(client.get("/readyz"), 503, "not_ready")
    assert_error(client.post("/compare", json=PAIR), 503, "not_ready")
    info = client.get("/info").json()
    assert (info["ready"], info["prompt_format"]) == (False, None)
    client.portal.call(engine.release.set)  # type: ignore[union-attr]
    wait_ready(client)
    assert client.post("/compare", json=PAIR).status_code == 200


def test_failed_engine_start_makes_the_process_unhealthy(make_client: MakeClient) -> None:
    client = make_client(FakeEngine(start_error=RuntimeError("weights missing")), ready=False)
    error = assert_error(client.get("/healthz"), 503, "engine_failed")
    assert "weights missing" not in error["message"] and "server log" in error["message"]  # details: log only
    assert_error(client.get("/readyz"), 503, "engine_failed")


def test_info_describes_model_decoding_template_and_limits(make_client: MakeClient) -> None:
    client = make_client(max_new_tokens=256, max_batch_items=50, beam_width=3, swap=True)
    info = client.get("/info").json()
    assert info["model"] == "fake-judge"
    assert info["engine"] == "fake"
    assert info["demo"] is False
    assert info["template_version"] == TEMPLATE_VERSION
    assert info["decoding"] == {
        "options": {
            "preset": "greedy",
            "mode": "full",
            "swap": True,
            "cache": True,
            "neutralize_headers": False,
            "max_new_tokens": 256,
            "truncate": False,
        },
        "repetition_penalty": 1.2,
        "beam_width": 3,
        "batch_invariant": False,
    }
    assert (info["prompt_format"], info["tokenizer"], info["bos_token"]) == ("text", None, None)
    assert info["limits"]["max_batch_items"] == 50
    assert info["limits"]["max_new_tokens"] == 256
    assert info["ready"] is True


def test_metrics_count_judgements_by_outcome(client: TestClient) -> None:
    client.post("/compare", json=PAIR)
    client.post("/batch", json={"items": [PAIR, PAIR]})
    client.post("/compare", json={"instruction": "no responses"})
    text = client.get("/metrics").text
    assert 'pandalm_judgements_total{judge="pandalm",outcome="response1"} 3.0' in text
    assert 'pandalm_http_requests_total{client="-",code="200",endpoint="/compare"} 1.0' in text
    assert 'pandalm_http_requests_total{client="-",code="422",endpoint="/compare"} 1.0' in text
    assert 'pandalm_http_requests_total{client="-",code="200",endpoint="/batch"} 1.0' in text
    assert "pandalm_engine_ready 1.0" in text


def test_openapi_declares_the_error_shape_and_the_batch_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/compare", "/batch"):
        responses = spec["paths"][path]["post"]["responses"]
        for status in ("400", "422", "500", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }
    schemas = spec["components"]["schemas"]
    # /batch parses its body with the model it publishes, whose items are compare requests.
    batch_body = spec["paths"]["/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch_body == {"$ref": "#/components/schemas/BatchRequest"}
    assert schemas["BatchRequest"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/CompareRequest"}
    assert set(schemas["ErrorResponse"]["properties"]) == set(ErrorResponse.model_fields)
    assert set(schemas["ErrorBody"]["properties"]["code"]["enum"]) == set(ERRORS)
