"""The cache backends: hits, bounds, restarts, several processes, and a store that fails."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path

import pytest

from pandalm_serve.cache import build_cache
from pandalm_serve.cache.base import CacheUnavailable
from pandalm_serve.cache.memory import MemoryCache
from pandalm_serve.cache.sqlite import SQLiteCache
from pandalm_serve.settings import Settings
from tests.support import holding_write_lock


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


async def test_a_cache_file_that_cannot_be_opened_fails_every_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache's folder should be")
    with pytest.raises(CacheUnavailable):
        SQLiteCache(blocked / "c.sqlite", 10)
    unusable = build_cache(Settings(cache_backend="sqlite", cache_path=blocked / "c.sqlite"))
    assert "judging without it" in caplog.text
    assert unusable is not None
    for call in (unusable.get("k"), unusable.put("k", b"v"), unusable.clear()):
        with pytest.raises(CacheUnavailable):
            await call
    assert build_cache(Settings(cache_backend="off")) is None


async def test_a_corrupted_cache_file_is_unusable_not_empty(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"not a database " * 1000)
    unusable = build_cache(Settings(cache_backend="sqlite", cache_path=path))
    assert unusable is not None
    with pytest.raises(CacheUnavailable):
        await unusable.clear()


async def test_a_write_lock_held_by_another_process_fails_fast_and_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = SQLiteCache(path, 100)
    await cache.put("before", b"kept")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    with holding_write_lock(path):
        started = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await cache.put("during", b"lost")
        assert time.monotonic() - started < 1
        assert ticks >= 3  # the loop went on while the write waited for the lock
        with pytest.raises(CacheUnavailable, match="less than a second ago"):
            await cache.get("before")  # a miss without touching the file, for a second
    ticker.cancel()
    cache._paused_until = 0.0
    assert await cache.get("before") == b"kept"
    await cache.put("after", b"stored")
    assert await cache.get("after") == b"stored"
    await cache.close()
