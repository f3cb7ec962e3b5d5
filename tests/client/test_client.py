"""The client library against a scripted service behind httpx's mock transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from pandalm_client import (
    APIConnectionError,
    APITimeoutError,
    AsyncPandaLMClient,
    BadRequestError,
    PandaLMClient,
    RetryPolicy,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from tests.client.fake_service import FakeService

FAST = RetryPolicy(max_retries=3, initial_backoff_s=0.001, max_backoff_s=0.01)


def pair(i: int, longer: int = 1) -> dict[str, Any]:
    short, long = f"r{i}", f"response {i}"
    return {
        "id": f"p{i}",
        "instruction": f"Task {i}.",
        "response1": long if longer == 1 else short,
        "response2": short if longer == 1 else long,
    }


def client(service: FakeService, **kwargs: Any) -> PandaLMClient:
    return PandaLMClient("http://judge", transport=service.transport(), retry=FAST, **kwargs)


def test_compare_sends_the_pair_options_and_key() -> None:
    service = FakeService()
    with client(service, api_key="s3cret") as judge:
        result = judge.compare("Say hi.", "Hello there.", "Hi", swap=True, mode="verdict")
    assert result.verdict == "response1"
    request = service.requests[0]
    assert request.headers["authorization"] == "Bearer s3cret"
    assert service.bodies[0] == {
        "instruction": "Say hi.",
        "input": "",
        "response1": "Hello there.",
        "response2": "Hi",
        "options": {"swap": True, "mode": "verdict"},
    }


def test_a_misspelt_option_fails_before_any_request() -> None:
    service = FakeService()
    with client(service) as judge, pytest.raises(ValidationError, match="swapp"):
        judge.compare("i", "a", "b", swapp=True)
    assert service.requests == []


def test_503_and_429_are_retried_honouring_retry_after() -> None:
    service = FakeService()
    service.failures = [(503, {"Retry-After": "0"}), 429]
    with client(service) as judge:
        assert judge.compare("i", "aa", "b").verdict == "response1"
    assert len(service.requests) == 3


def test_errors_are_typed_with_the_service_error_body() -> None:
    service = FakeService()
    service.failures = [422, 400, 503, 503, 503, 503]
    with client(service) as judge:
        with pytest.raises(UnprocessableEntityError) as invalid:
            judge.compare("i", "a", "b")
        assert invalid.value.status_code == 422 and invalid.value.code == "internal_error"
        with pytest.raises(BadRequestError):
            judge.compare("i", "a", "b")
        with pytest.raises(ServiceUnavailableError, match="not_ready"):
            judge.compare("i", "a", "b")  # four attempts: one and three retries
    assert len(service.requests) == 6


def test_connection_errors_are_retried_then_raised_and_read_timeouts_are_not_retried() -> None:
    service = FakeService()
    service.failures = [httpx.ConnectError("refused")] * 4
    with client(service) as judge, pytest.raises(APIConnectionError, match="cannot reach"):
        judge.compare("i", "a", "b")
    assert len(service.requests) == 4
    service.failures = [httpx.ReadTimeout("slow")]
    with client(service) as judge, pytest.raises(APITimeoutError):
        judge.compare("i", "a", "b")
    assert len(service.requests) == 5  # not retried: the service may still be judging


def lazily(count: int) -> Iterator[dict[str, Any]]:
    """Items from a generator, as from a file too large to load."""
    for i in range(count):
        yield pair(i, longer=1 + i % 2)


def test_batch_splits_streams_and_keeps_the_input_order() -> None:
    service = FakeService()
    seen: list[tuple[int, int | None]] = []
    with client(service, batch_size=3, max_in_flight=2) as judge:
        results = judge.batch(lazily(10), progress=lambda done, total: seen.append((done, total)))
    assert [r.id for r in results] == [f"p{i}" for i in range(10)]
    assert [r.index for r in results] == list(range(10))
    assert [r.verdict for r in results] == ["response1", "response2"] * 5
    batches = [b for b in service.bodies if b and "items" in b]
    assert [len(b["items"]) for b in batches] == [3, 3, 3, 1]
    assert seen[-1] == (10, None)  # a generator's length is not known
    assert [done for done, _ in seen] == list(range(1, 11))


def test_batch_keeps_a_bounded_number_of_calls_in_flight() -> None:
    service = FakeService()
    service.delay_s = 0.05
    with client(service, batch_size=1, max_in_flight=3) as judge:
        assert len(judge.batch([pair(i) for i in range(12)], progress=None)) == 12
    assert service.most_in_flight == 3


def test_a_cut_stream_is_resumed_for_its_missing_items_only() -> None:
    service = FakeService()
    service.failures = [None, "cut"]  # /info, then the first /batch loses its connection halfway
    with client(service, batch_size=10) as judge:
        results = judge.batch([pair(i) for i in range(6)])
    assert [r.id for r in results] == [f"p{i}" for i in range(6)]
    first, second = (b for b in service.bodies if b and "items" in b)
    assert len(first["items"]) == 6 and len(second["items"]) == 3
    assert {i["id"] for i in second["items"]}.isdisjoint({r.id for r in results[3:]})


def test_the_chunk_size_follows_the_server_limit_and_batch_options_are_sent() -> None:
    service = FakeService()
    service.max_batch_items = 2
    with client(service, batch_size=64) as judge:
        judge.batch([pair(i) for i in range(5)], swap=True)
    batches = [b for b in service.bodies if b and "items" in b]
    assert [len(b["items"]) for b in batches] == [2, 2, 1]
    assert all(b["options"] == {"swap": True} for b in batches)


def test_an_item_error_is_a_result_not_an_exception() -> None:
    def failing_third(item: dict[str, Any], index: int | None) -> dict[str, Any]:
        if item["id"] == "p2":
            error = {"code": "prompt_too_long", "message": "too long", "details": None}
            return {"id": "p2", "index": index, "status": "error", "error": error}
        from tests.client.fake_service import prefer_longer

        return prefer_longer(item, index)

    with client(FakeService(failing_third)) as judge:
        results = judge.batch([pair(i) for i in range(4)])
    assert [r.status for r in results] == ["ok", "ok", "error", "ok"]
    assert results[2].error is not None and results[2].error.code == "prompt_too_long"


async def test_the_async_client_does_the_same() -> None:
    service = FakeService()
    service.failures = [None, "cut", 503]
    seen: list[int] = []
    async with AsyncPandaLMClient(
        "http://judge", transport=service.transport(), retry=FAST, batch_size=4, max_in_flight=2, api_key="k"
    ) as judge:
        results = await judge.batch(lazily(9), progress=lambda done, total: seen.append(done))
        single = await judge.compare("i", "a", "bb")
    assert [r.index for r in results] == list(range(9))
    assert [r.verdict for r in results] == ["response1", "response2"] * 4 + ["response1"]
    assert single.verdict == "response2"
    assert seen[-1] == 9
    assert all(r.headers["authorization"] == "Bearer k" for r in service.requests)


def test_the_environment_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANDALM_URL", "http://from-env:9000/")
    monkeypatch.setenv("PANDALM_API_KEY", "env-key")
    judge = PandaLMClient()
    assert (judge.base_url, judge.api_key) == ("http://from-env:9000", "env-key")
    judge.close()
