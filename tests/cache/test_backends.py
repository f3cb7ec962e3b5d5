"""The cache backends: hits, bounds, restarts, several processes, and a store that fails."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from pandalm_serve.cache import build_cache
from pandalm_serve.cache.base import CacheUnavailable
from pandalm_serve.cache.memory import MemoryCache
from pandalm_serve.cache.sqlite import SQLiteCache
from pandalm_serve.settings import Settings


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_hit_after_a_miss_and_least_recently_used_out_first(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite records a hit's use once a minute at most; here, every time, to see the order at once.
    monkeypatch.setattr("pandalm_serve.cache.sqlite._TOUCH_AFTER_S", -1.0)
    cache = MemoryCache(10) if kind == "memory" else SQLiteCache(tmp_path / "c.sqlite", 10)
    assert await cache.get("a") is None
    await cache.put("a", b"verdict a")
    assert await cache.get("a") == b"verdict a"
    for i in range(30):
        await cache.put(f"k{i}", b"x")
        if i % 5 == 0:
            assert await cache.get("a") == b"verdict a"  # used often: kept
    assert await cache.get("a") == b"verdict a"
    assert await cache.get("k0") is None  # the least recently used went first
    assert await cache.get("k29") == b"x"
    assert await cache.clear() <= 11
    assert await cache.get("a") is None
    await cache.close()


async def test_sqlite_survives_a_restart(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.sqlite", 100)
    await cache.put("key", b"value")
    await cache.close()
    again = SQLiteCache(tmp_path / "c.sqlite", 100)
    assert await again.get("key") == b"value"
    await again.close()


def _write_many(path: str, start: int) -> None:
    import asyncio

    async def write() -> None:
        cache = SQLiteCache(Path(path), 100_000)
        for i in range(start, start + 300):
            await cache.put(f"key-{i}", f"value-{i}".encode())
        await cache.close()

    asyncio.run(write())


async def test_sqlite_takes_concurrent_writers_from_several_processes(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    SQLiteCache(path, 100_000)  # created once, as a service's start would
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(path), n * 300)) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    cache = SQLiteCache(path, 100_000)
    assert [await cache.get(f"key-{i}") for i in (0, 299, 600, 1199)] == [
        b"value-0",
        b"value-299",
        b"value-600",
        b"value-1199",
    ]
    assert await cache.clear() == 1200
    await cache.close()


def test_a_cache_file_that_cannot_be_written_means_no_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache's folder should be")
    with pytest.raises(CacheUnavailable):
        SQLiteCache(blocked / "c.sqlite", 10)
    assert build_cache(Settings(cache_backend="sqlite", cache_path=blocked / "c.sqlite")) is None
    assert "judging without it" in caplog.text
    assert build_cache(Settings(cache_backend="off")) is None
