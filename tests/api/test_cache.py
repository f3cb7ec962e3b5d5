"""The verdict cache through the API: a re-run costs no engine call, swap reuses one order, identical pairs
share one call, and a cache that fails does not stop judging."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import pytest

from pandalm_serve.cache.base import CacheUnavailable
from tests.api.conftest import MakeClient
from tests.fakes import CharTokenizer, FakeEngine
from tests.support import PAIR, assert_error, holding_write_lock

ITEMS = [{**PAIR, "id": f"q{i}", "response1": f"answer {i}"} for i in range(8)]


def verdicts(body: dict[str, object]) -> list[tuple[object, ...]]:
    return [(r["verdict"], r["raw"], r["probabilities"]) for r in body["results"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_rerun_batch_comes_from_the_cache_without_the_engine(
    make_client: MakeClient, backend: str, tmp_path: Path
) -> None:
    engine = FakeEngine(tokenizer=CharTokenizer(), context_length=4096)
    client = make_client(engine, cache_backend=backend, cache_path=tmp_path / "verdicts.sqlite")
    first = client.post("/batch", json={"items": ITEMS}).json()
    calls = len(engine.prompts)
    second = client.post("/batch", json={"items": ITEMS}).json()
    assert calls == 8 and len(engine.prompts) == 8  # no engine call the second time
    assert verdicts(second) == verdicts(first)
    assert [r["cached"] for r in first["results"]] == [False] * 8
    assert [r["cached"] for r in second["results"]] == [True] * 8
    metrics = client.get("/metrics").text
    assert 'pandalm_cache_lookups_total{result="hit"} 8.0' in metrics
    assert 'pandalm_cache_lookups_total{result="miss"} 8.0' in metrics


def test_the_cache_survives_a_restart_of_the_service(make_client: MakeClient, tmp_path: Path) -> None:
    path = tmp_path / "verdicts.sqlite"
    make_client(FakeEngine(), cache_backend="sqlite", cache_path=path).post("/compare", json=PAIR)
    engine = FakeEngine()
    result = make_client(engine, cache_backend="sqlite", cache_path=path).post("/compare", json=PAIR).json()
    assert result["cached"] is True and engine.prompts == []


def test_cache_false_always_judges_and_delete_forgets(make_client: MakeClient) -> None:
    engine = FakeEngine()
    client = make_client(engine, cache_backend="memory")
    client.post("/compare", json=PAIR)
    assert client.post("/compare", json={**PAIR, "options": {"cache": False}}).json()["cached"] is False
    assert len(engine.prompts) == 2
    assert client.delete("/cache").json() == {"cleared": 1}
    assert client.post("/compare", json=PAIR).json()["cached"] is False
    assert len(engine.prompts) == 3


def test_with_swap_each_order_is_cached_on_its_own(make_client: MakeClient) -> None:
    engine = FakeEngine()
    client = make_client(engine, cache_backend="memory")
    client.post("/compare", json=PAIR)  # the original order
    swapped = client.post("/compare", json={**PAIR, "options": {"swap": True}}).json()
    assert len(engine.prompts) == 2  # only the swapped order was judged
    assert swapped["cached"] is False  # one of its orders was not from the cache
    assert client.post("/compare", json={**PAIR, "options": {"swap": True}}).json()["cached"] is True
    assert len(engine.prompts) == 2


def test_identical_pairs_in_one_batch_are_judged_once(make_client: MakeClient) -> None:
    engine = FakeEngine(delay_s=0.1)
    client = make_client(engine)  # with the cache off too
    body = client.post("/batch", json={"items": [PAIR] * 10 + [{**PAIR, "response2": "6"}]}).json()
    assert [r["status"] for r in body["results"]] == ["ok"] * 11
    assert len(engine.prompts) == 2
    assert "pandalm_deduplicated_generations_total 9.0" in client.get("/metrics").text


class BrokenStore:
    """A store that has stopped answering."""

    name = "broken"

    async def get(self, key: str) -> bytes | None:
        raise CacheUnavailable("Redis failed: ConnectionError")

    async def put(self, key: str, value: bytes) -> None:
        raise CacheUnavailable("Redis failed: ConnectionError")

    async def clear(self) -> int:
        raise CacheUnavailable("Redis failed: ConnectionError")

    async def close(self) -> None:
        return None


def test_a_cache_that_fails_is_skipped_and_judging_goes_on(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine()
    client = make_client(engine)
    client.app.state.services.engine.backend = BrokenStore()  # type: ignore[attr-defined]
    assert [client.post("/compare", json=PAIR).status_code for _ in range(3)] == [200] * 3
    assert len(engine.prompts) == 3
    assert "pandalm_cache_errors_total 6.0" in client.get("/metrics").text  # a lookup and a store each time
    assert caplog.text.count("judging without it") == 1  # warned once, not per item
    assert client.delete("/cache").json()["error"]["code"] == "cache_unavailable"


def test_a_locked_cache_file_stalls_nothing(make_client: MakeClient, tmp_path: Path) -> None:
    path = tmp_path / "verdicts.sqlite"
    engine = FakeEngine(delay_s=0.3)
    client = make_client(engine, cache_backend="sqlite", cache_path=path)
    with holding_write_lock(path), concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        compares = [pool.submit(client.post, "/compare", json={**PAIR, "id": str(i)}) for i in range(3)]
        healthz = pool.submit(client.get, "/healthz")
        assert healthz.result().status_code == 200
        assert time.monotonic() - started < 1
        assert [c.result().status_code for c in compares] == [200] * 3
        assert time.monotonic() - started < 2
    assert "pandalm_cache_errors_total" in client.get("/metrics").text


def test_delete_on_a_cache_file_that_cannot_be_opened_is_cache_unavailable(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = tmp_path / "verdicts.sqlite"
    path.write_bytes(b"not a database " * 1000)
    client = make_client(FakeEngine(), cache_backend="sqlite", cache_path=path)
    assert client.post("/compare", json=PAIR).status_code == 200
    assert_error(client.delete("/cache"), 503, "cache_unavailable")
