"""The remote engine against a broken or hostile server: every malformed answer is the item's
`remote_bad_response`, and no answer is read past what its tokens can take."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from pandalm_client import RetryPolicy
from pandalm_serve.engines.base import EnginePrompt, Sampling
from pandalm_serve.engines.openai_response import ERROR_BODY_BYTES, completion_limit
from pandalm_serve.engines.remote import RemoteEngine
from pandalm_serve.errors import EngineError
from pandalm_serve.settings import Settings
from tests.fakes import MALFORMED_ANSWERS, FakeOpenAIServer
from tests.support import PANDALM_OUTPUT

ASKING_LOGPROBS = Sampling(preset="greedy", max_new_tokens=64, repetition_penalty=1.2, beam_width=4, top_logprobs=5)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    server = await FakeOpenAIServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def engine(server: FakeOpenAIServer) -> AsyncIterator[RemoteEngine]:
    engine = RemoteEngine(Settings(engine="remote", remote_url=server.url, remote_max_retries=1))
    await engine.start()
    yield engine
    await engine.stop()


@pytest.mark.parametrize("shape", sorted(MALFORMED_ANSWERS))
async def test_a_malformed_answer_is_remote_bad_response(
    server: FakeOpenAIServer, engine: RemoteEngine, shape: str
) -> None:
    server.malformed = lambda prompt: shape
    with pytest.raises(EngineError) as info:
        await engine.generate(EnginePrompt("p"), ASKING_LOGPROBS, "r")
    assert info.value.code == "remote_bad_response"
    assert len(server.requests) == 1  # a bad answer is not retried: the server gave it


async def test_a_well_formed_answer_still_reads(server: FakeOpenAIServer, engine: RemoteEngine) -> None:
    server.top_logprobs = {"1": -0.2, "2": -2.0}  # by text: the engine sends text prompts here
    generation = await engine.generate(EnginePrompt("p"), ASKING_LOGPROBS, "r")
    assert generation.text == PANDALM_OUTPUT
    assert (generation.prompt_tokens, generation.completion_tokens) == (300, 20)
    assert generation.first_logprobs == {"1": -0.2, "2": -2.0}


async def test_an_answer_larger_than_its_tokens_can_take_is_cut(server: FakeOpenAIServer, engine: RemoteEngine) -> None:
    server.huge_answer = (200, 100 * 2**20)
    started = time.monotonic()
    with pytest.raises(EngineError, match=f"larger than {completion_limit(64)} bytes") as info:
        await engine.generate(EnginePrompt("p"), ASKING_LOGPROBS, "r")
    assert info.value.code == "remote_bad_response"
    assert time.monotonic() - started < 5  # cut, not read to the end


async def test_a_huge_error_body_is_read_only_in_part(server: FakeOpenAIServer, engine: RemoteEngine) -> None:
    server.huge_answer = (400, 100 * 2**20)
    started = time.monotonic()
    with pytest.raises(EngineError) as info:
        await engine.generate(EnginePrompt("p"), ASKING_LOGPROBS, "r")
    assert info.value.code == "remote_rejected"
    assert time.monotonic() - started < 5


async def test_a_retry_after_that_is_not_a_number_falls_back_to_the_backoff(
    server: FakeOpenAIServer, engine: RemoteEngine
) -> None:
    server.failures, server.retry_after = [503], "nan"
    generation = await engine.generate(EnginePrompt("p"), ASKING_LOGPROBS, "r")
    assert generation.text == PANDALM_OUTPUT
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), ("0", 0.0), ("1e9", 10.0), ("-1", 0.0), ("nan", None), ("inf", None), ("Wed, 21 Oct 2015", None)],
)
def test_retry_after_is_a_finite_number_of_seconds_or_the_backoff(header: str, seconds: float | None) -> None:
    policy = RetryPolicy(max_retries=1, max_backoff_s=10.0, initial_backoff_s=0.5)
    delay = policy.delay(0, header)
    assert delay == seconds if seconds is not None else 0 <= delay <= 0.5


def test_the_limits_leave_room_for_an_honest_answer() -> None:
    # vLLM's answer with five alternatives a position, named `token_id:N`, is about 250 bytes a token.
    assert completion_limit(512) > 4 * 250 * 512
    assert ERROR_BODY_BYTES >= 4096
