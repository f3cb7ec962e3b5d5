from __future__ import annotations

from fastapi.testclient import TestClient

from pandalm_serve.engines.base import Generation
from pandalm_serve.errors import EngineError
from pandalm_serve.judge.prompt import TEMPLATE_VERSION, build_prompt
from tests.api.conftest import MakeClient
from tests.fakes import CharTokenizer, FakeEngine
from tests.support import PAIR, assert_error


def test_compare_returns_the_parsed_verdict(make_client: MakeClient) -> None:
    engine = FakeEngine()
    client = make_client(engine)
    response = client.post("/compare", json={**PAIR, "id": "case-7"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["id"] == "case-7"
    assert result["status"] == "ok"
    assert result["verdict"] == "response1"
    assert result["reason"] == "Response 1 is better."
    assert result["reference"] == "The answer."
    assert result["raw"].startswith("1\n\n### Reason:")
    assert result["model"] == "fake-judge"
    assert result["template_version"] == TEMPLATE_VERSION
    assert result["preset"] == "greedy"
    assert result["usage"]["completion_tokens"] > 0
    assert result["latency_ms"] >= 0
    assert result["error"] is None
    assert engine.prompts[0].text == build_prompt(PAIR["instruction"], "", PAIR["response1"], PAIR["response2"])


def test_unparseable_output_is_reported_not_counted_as_a_tie(make_client: MakeClient) -> None:
    client = make_client(FakeEngine("I think both are fine"))
    result = client.post("/compare", json=PAIR).json()
    assert result["status"] == "unparsed"
    assert result["verdict"] is None
    assert result["raw"] == "I think both are fine"


def test_empty_responses_are_judged(client: TestClient) -> None:
    response = client.post("/compare", json={**PAIR, "response1": "", "response2": ""})
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_invalid_bodies_get_the_error_shape(client: TestClient) -> None:
    assert_error(client.post("/compare", json={"instruction": "x"}), 422, "invalid_request")
    assert_error(client.post("/compare", json={**PAIR, "response1": True}), 422, "invalid_request")
    assert_error(
        client.post("/compare", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    assert_error(client.post("/compare", json={**PAIR, "colour": "red"}), 422, "invalid_request")
    # the service keeps serving
    assert client.post("/compare", json=PAIR).status_code == 200


def test_unknown_option_or_value_is_a_4xx(client: TestClient) -> None:
    error = assert_error(client.post("/compare", json={**PAIR, "options": {"temperature": 1}}), 422, "invalid_request")
    assert error["details"][0]["loc"] == ["body", "options", "temperature"]
    assert_error(client.post("/compare", json={**PAIR, "options": {"preset": "nucleus"}}), 422, "invalid_request")
    assert_error(client.post("/compare", json={**PAIR, "options": {"max_new_tokens": 0}}), 422, "invalid_request")


def test_max_new_tokens_above_the_server_limit_is_refused(make_client: MakeClient) -> None:
    client = make_client(max_new_tokens=64)
    error = assert_error(
        client.post("/compare", json={**PAIR, "options": {"max_new_tokens": 65}}), 422, "invalid_option"
    )
    assert error["details"]["limit"] == 64


def test_options_override_server_defaults(make_client: MakeClient) -> None:
    engine = FakeEngine()
    client = make_client(engine, preset="greedy", max_new_tokens=300)
    client.post("/compare", json={**PAIR, "options": {"preset": "beam", "max_new_tokens": 100}})
    client.post("/compare", json=PAIR)
    assert [(s.preset, s.max_new_tokens) for s in engine.samplings] == [("beam", 100), ("greedy", 300)]


def test_output_cut_off_at_the_token_limit_is_flagged(make_client: MakeClient) -> None:
    cut = Generation(text="2\n\n### Reason: Because", finish_reason="length", prompt_tokens=10, completion_tokens=8)
    result = make_client(FakeEngine(lambda p, s: cut)).post("/compare", json=PAIR).json()
    assert result["verdict"] == "response2"
    assert result["finish_reason"] == "length"
    assert "output_cut_off" in [w["code"] for w in result["warnings"]]


def test_prompt_too_long_names_the_token_counts(make_client: MakeClient) -> None:
    engine = FakeEngine(tokenizer=CharTokenizer(), context_length=600)
    client = make_client(engine, max_new_tokens=100)
    error = assert_error(client.post("/compare", json={**PAIR, "response1": "x" * 1000}), 400, "prompt_too_long")
    assert error["details"]["context_length"] == 600
    assert error["details"]["max_new_tokens"] == 100
    assert error["details"]["prompt_tokens"] > 1000
    assert engine.prompts == []  # never reached the engine


def test_truncate_option_shortens_responses_and_warns(make_client: MakeClient) -> None:
    engine = FakeEngine(tokenizer=CharTokenizer(), context_length=600)
    client = make_client(engine, max_new_tokens=100)
    body = {**PAIR, "response1": "x" * 1000, "response2": "short", "options": {"truncate": True}}
    result = client.post("/compare", json=body).json()
    assert result["status"] == "ok"
    assert len(engine.prompts[0].token_ids or []) <= 500
    assert [w["code"] for w in result["warnings"]] == ["input_truncated"]
    assert result["warnings"][0]["message"].startswith("response1 was truncated from 1000 to")
    assert "### Response 2:\nshort\n\n" in engine.prompts[0].text


def test_prompt_starts_with_the_configured_bos_token(make_client: MakeClient) -> None:
    engine = FakeEngine(tokenizer=CharTokenizer(), context_length=4096)
    client = make_client(engine)
    client.post("/compare", json=PAIR)
    assert (engine.prompts[0].token_ids or [])[0] == 2  # `</s>`, as PandaLM was trained
    info = client.get("/info").json()
    assert info["bos_token"] == "</s>"


def test_engine_failure_is_a_5xx_with_the_error_shape(make_client: MakeClient) -> None:
    client = make_client(FakeEngine(lambda p, s: EngineError("engine exploded")))
    assert_error(client.post("/compare", json=PAIR), 502, "engine_error")
    client = make_client(FakeEngine(lambda p, s: EngineError("remote down", code="remote_unavailable")))
    assert_error(client.post("/compare", json=PAIR), 503, "remote_unavailable")


def test_unexpected_failure_is_a_500_without_internals(make_client: MakeClient) -> None:
    client = make_client(FakeEngine(lambda p, s: RuntimeError("secret internal detail")))
    error = assert_error(client.post("/compare", json=PAIR), 500, "internal_error")
    assert "secret" not in error["message"]


def test_unknown_path_gets_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/compare"), 405, "method_not_allowed")
