"""The remote engine against a fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest

from pandalm_serve.engines.base import EngineError, EnginePrompt, LabelCandidates, Sampling
from pandalm_serve.engines.remote import RemoteEngine
from pandalm_serve.errors import PromptTooLongError
from pandalm_serve.settings import PANDALM_7B, Settings
from tests.fakes import PANDALM_OUTPUT, FakeOpenAIServer

GREEDY = Sampling(preset="greedy", max_new_tokens=77, repetition_penalty=1.2, beam_width=4)
WITH_LABELS = Sampling(
    preset="greedy",
    max_new_tokens=3,
    repetition_penalty=1.2,
    beam_width=4,
    stop=("\n",),
    labels=LabelCandidates(token_ids=None, texts=("1", "2", "Tie")),
)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    server = await FakeOpenAIServer().start()
    yield server
    await server.stop()


async def started(url: str, **settings: object) -> RemoteEngine:
    engine = RemoteEngine(Settings(engine="remote", remote_url=url, remote_max_retries=2, **settings))  # type: ignore[arg-type]
    await engine.start()
    return engine


async def test_sends_the_raw_prompt_with_greedy_decoding(server: FakeOpenAIServer) -> None:
    engine = await started(server.url + "/v1/", remote_api_key="s3cret")
    try:
        generation = await engine.generate(EnginePrompt("PROMPT TEXT"), GREEDY, "req-1")
    finally:
        await engine.stop()
    assert generation.text == PANDALM_OUTPUT
    assert (generation.prompt_tokens, generation.completion_tokens) == (300, 20)
    body = server.requests[0]
    assert body == {
        "model": "served-judge",  # discovered from /v1/models
        "prompt": "PROMPT TEXT",
        "max_tokens": 77,
        "temperature": 0.0,
        "repetition_penalty": 1.2,
    }
    assert server.headers[0]["authorization"] == "Bearer s3cret"
    assert server.headers[0]["x-request-id"] == "req-1"
    assert engine.context_length == 2048


async def test_retries_429_and_5xx_then_succeeds(server: FakeOpenAIServer) -> None:
    server.failures = [429, 503]
    engine = await started(server.url)
    try:
        generation = await engine.generate(EnginePrompt("p"), GREEDY, "r")
    finally:
        await engine.stop()
    assert generation.text == PANDALM_OUTPUT
    assert len(server.requests) == 3


async def test_gives_up_after_the_retries(server: FakeOpenAIServer) -> None:
    server.failures = [500, 500, 500, 500]
    engine = await started(server.url)
    try:
        with pytest.raises(EngineError) as info:
            await engine.generate(EnginePrompt("p"), GREEDY, "r")
    finally:
        await engine.stop()
    assert info.value.code == "remote_unavailable"
    assert len(server.requests) == 3  # one try and two retries


async def test_context_overflow_is_prompt_too_long_and_not_retried(server: FakeOpenAIServer) -> None:
    server.failures = [(400, "This model's maximum context length is 2048 tokens. However, you requested 2600")]
    engine = await started(server.url)
    try:
        with pytest.raises(PromptTooLongError, match="2048"):
            await engine.generate(EnginePrompt("p"), GREEDY, "r")
    finally:
        await engine.stop()
    assert len(server.requests) == 1


async def test_other_4xx_is_rejected_without_retry(server: FakeOpenAIServer) -> None:
    server.failures = [(401, "bad key")]
    engine = await started(server.url)
    try:
        with pytest.raises(EngineError) as info:
            await engine.generate(EnginePrompt("p"), GREEDY, "r")
    finally:
        await engine.stop()
    assert info.value.code == "remote_rejected"
    assert "bad key" in info.value.message
    assert len(server.requests) == 1


async def test_model_name_without_a_models_endpoint() -> None:
    server = await FakeOpenAIServer(models=False).start()
    try:
        engine = await started(server.url)
        assert engine.model_name == PANDALM_7B
        await engine.check_health()  # a 404 still means the server answers
        await engine.generate(EnginePrompt("p"), GREEDY, "r")
        await engine.stop()
        configured = await started(server.url, remote_model="my-judge")
        assert configured.model_name == "my-judge"
        await configured.stop()
    finally:
        await server.stop()


async def test_unreachable_server_fails_to_start() -> None:
    engine = RemoteEngine(Settings(engine="remote", remote_url="http://127.0.0.1:9", remote_max_retries=1))
    try:
        with pytest.raises(EngineError, match="does not answer"):
            await engine.start()
    finally:
        await engine.stop()


async def test_label_logprobs_from_the_completion_logprobs(server: FakeOpenAIServer) -> None:
    server.top_logprobs = {
        "1": math.log(0.5),
        " 2": math.log(0.2),
        "T": math.log(0.04),
        "Tie": math.log(0.1),
        "The": math.log(0.15),
    }
    engine = await started(server.url)
    try:
        generation = await engine.generate(EnginePrompt("p"), WITH_LABELS, "r")
    finally:
        await engine.stop()
    assert server.requests[0]["logprobs"] == 5
    assert server.requests[0]["stop"] == ["\n"]
    assert generation.label_logprobs == pytest.approx((math.log(0.5), math.log(0.2), math.log(0.1)))
    assert generation.logprobs_note is None


async def test_missing_label_or_missing_logprobs_is_said_plainly(server: FakeOpenAIServer) -> None:
    engine = await started(server.url)
    try:
        server.top_logprobs = {"1": -0.1, "2": -3.0}
        partial = await engine.generate(EnginePrompt("p"), WITH_LABELS, "r")
        server.top_logprobs = None
        none = await engine.generate(EnginePrompt("p"), WITH_LABELS, "r")
    finally:
        await engine.stop()
    assert partial.label_logprobs is not None
    assert partial.label_logprobs[:2] == pytest.approx((-0.1, -3.0)) and partial.label_logprobs[2] is None
    assert partial.logprobs_note and "Tie" in partial.logprobs_note
    assert none.label_logprobs is None
    assert none.logprobs_note and "no log-probabilities" in none.logprobs_note
