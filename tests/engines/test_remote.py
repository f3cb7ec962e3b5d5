"""The remote engine against a fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from transformers import LlamaTokenizer

from pandalm_serve.engines.base import EnginePrompt, Sampling
from pandalm_serve.engines.remote import RemoteEngine
from pandalm_serve.errors import ConfigurationError, EngineError, PromptTooLongError
from pandalm_serve.settings import PANDALM_7B, Settings
from tests.fakes import FakeOpenAIServer
from tests.support import PANDALM_OUTPUT

GREEDY = Sampling(preset="greedy", max_new_tokens=77, repetition_penalty=1.2, beam_width=4)
WITH_TOP_LOGPROBS = Sampling(
    preset="greedy", max_new_tokens=3, repetition_penalty=1.2, beam_width=4, stop=("\n",), top_logprobs=5
)
WITH_LABEL_IDS = Sampling(
    preset="greedy", max_new_tokens=1, repetition_penalty=1.2, beam_width=4, logprob_token_ids=(52, 53, 87)
)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, llama_tokenizer: LlamaTokenizer) -> Path:
    folder = tmp_path_factory.mktemp("tokenizer")
    llama_tokenizer.save_pretrained(folder)
    return folder


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
        with pytest.raises(PromptTooLongError) as info:
            await engine.generate(EnginePrompt("p"), GREEDY, "r")
        assert "2600" not in info.value.message  # the server's text is read, never repeated
    finally:
        await engine.stop()
    assert len(server.requests) == 1


async def test_other_4xx_is_rejected_without_retry(server: FakeOpenAIServer) -> None:
    server.failures = [(401, "bad key for the prompt: 'Give the capital of France'")]
    engine = await started(server.url)
    try:
        with pytest.raises(EngineError) as info:
            await engine.generate(EnginePrompt("p"), GREEDY, "r")
    finally:
        await engine.stop()
    assert info.value.code == "remote_rejected"
    assert "HTTP 401" in info.value.message
    assert "France" not in info.value.message and "France" not in str(info.value.details)
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


async def test_top_logprobs_by_text_for_text_prompts(server: FakeOpenAIServer) -> None:
    server.top_logprobs = {"1": math.log(0.5), " 2": math.log(0.2), "Tie": math.log(0.1)}
    engine = await started(server.url)
    try:
        generation = await engine.generate(EnginePrompt("p"), WITH_TOP_LOGPROBS, "r")
        server.top_logprobs = None
        none = await engine.generate(EnginePrompt("p"), WITH_TOP_LOGPROBS, "r")
    finally:
        await engine.stop()
    assert server.requests[0]["logprobs"] == 5
    assert server.requests[0]["stop"] == ["\n"]
    assert "logprob_token_ids" not in server.requests[0]
    assert generation.first_logprobs == pytest.approx({"1": math.log(0.5), " 2": math.log(0.2), "Tie": math.log(0.1)})
    assert none.first_logprobs is None


async def test_label_ids_ask_vllm_for_exactly_those_tokens_by_id(server: FakeOpenAIServer, tokenizer_dir: Path) -> None:
    server.top_logprobs = {"token_id:52": -0.2, "token_id:53": -2.0, "token_id:87": -9999.0}
    engine = await started(server.url, tokenizer=str(tokenizer_dir))
    try:
        assert engine.prompt_format == "token_ids"
        generation = await engine.generate(EnginePrompt("p", [2, 10, 11]), WITH_LABEL_IDS, "r")
        server.top_logprobs = {"1": -0.2}  # a server that ignored the ask for ids: no probabilities, no guess
        ignored = await engine.generate(EnginePrompt("p", [2, 10, 11]), WITH_LABEL_IDS, "r")
    finally:
        await engine.stop()
    body = server.requests[0]
    assert body["prompt"] == [2, 10, 11]
    assert (body["logprobs"], body["logprob_token_ids"], body["return_tokens_as_token_ids"]) == (3, [52, 53, 87], True)
    assert generation.first_logprobs == {"52": -0.2, "53": -2.0, "87": -9999.0}
    assert ignored.first_logprobs is None


async def test_output_constraint_is_sent_as_vllm_structured_outputs(server: FakeOpenAIServer) -> None:
    engine = await started(server.url)
    try:
        await engine.generate(EnginePrompt("p"), dataclasses.replace(GREEDY, output_regex="(1|2|Tie)"), "r")
    finally:
        await engine.stop()
    assert server.requests[0]["structured_outputs"] == {"regex": "(1|2|Tie)"}


async def test_tokenizer_makes_prompts_token_ids(server: FakeOpenAIServer, tokenizer_dir: Path) -> None:
    engine = await started(server.url, tokenizer=str(tokenizer_dir))
    try:
        assert engine.tokenizer is not None and engine.prompt_format == "token_ids"
        assert engine.tokenizer_source == str(tokenizer_dir)
        assert engine.context_length == 2048  # the server's max_model_len
    finally:
        await engine.stop()


async def test_without_a_tokenizer_auto_falls_back_to_text(server: FakeOpenAIServer) -> None:
    engine = await started(server.url)  # "served-judge" is no tokenizer this machine can load
    try:
        assert (engine.tokenizer, engine.tokenizer_source, engine.prompt_format) == (None, None, "text")
    finally:
        await engine.stop()


async def test_a_tokenizer_that_does_not_load_fails_the_start_when_asked_for(server: FakeOpenAIServer) -> None:
    for settings in ({"tokenizer": "/nonexistent/tokenizer"}, {"remote_prompt_format": "token_ids"}):
        engine = RemoteEngine(Settings(engine="remote", remote_url=server.url, **settings))  # type: ignore[arg-type]
        try:
            with pytest.raises(ConfigurationError, match="cannot load a tokenizer"):
                await engine.start()
        finally:
            await engine.stop()


async def test_text_format_never_loads_a_tokenizer(server: FakeOpenAIServer, tokenizer_dir: Path) -> None:
    engine = await started(server.url, tokenizer=str(tokenizer_dir), remote_prompt_format="text")
    try:
        assert engine.tokenizer is None
    finally:
        await engine.stop()
