"""The embedded default: one SQLite file (WAL, so several processes share it), bounded, least recently used
out first, surviving restarts.

Each call is one short statement on an indexed table, well under a millisecond, but another process may
hold the file's write lock for as long as it likes: the calls run on one worker thread, off the event loop,
and wait at most `_LOCK_TIMEOUT_S` for a lock. A call that fails makes the next `_PAUSE_AFTER_FAILURE_S` of
calls cache misses without touching the file, so that a locked store costs no queue of waiting calls.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .base import CacheUnavailable

# Evict in chunks, so that a full cache does not pay an eviction on every write.
_EVICT_FRACTION = 0.1
# A hit records its use only if the last record is older than this: a read stays a read, and the order of
# eviction is right to within a minute.
_TOUCH_AFTER_S = 60.0
# A write takes well under a millisecond: a lock held longer than this is another process's long work, and
# judging does not wait for it.
_LOCK_TIMEOUT_S = 0.1
# Opening the file (at start, before serving) may wait longer for a lock: a lock then would otherwise leave
# the service without its cache until a restart.
_OPEN_TIMEOUT_S = 10.0
_PAUSE_AFTER_FAILURE_S = 1.0

T = TypeVar("T")


class SQLiteCache:
    name = "sqlite"

    def __init__(self, path: Path, max_entries: int) -> None:
        self.path = path
        self.max_entries = max_entries
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=_OPEN_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, value BLOB NOT NULL, used REAL NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS generations_used ON generations (used)")
            self._count = int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])
            self._db.execute(f"PRAGMA busy_timeout = {int(_LOCK_TIMEOUT_S * 1000)}")
        except (OSError, sqlite3.Error) as exc:
            raise CacheUnavailable(f"cannot open the cache file {path}: {exc}") from exc
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="pandalm-sqlite-cache")
        self._paused_until = 0.0

    async def _run(self, call: Callable[[], T]) -> T:
        """`call` on the worker thread; a failure (or a recent one) is `CacheUnavailable`."""
        if time.monotonic() < self._paused_until:
            raise CacheUnavailable(f"the cache file {self.path} failed less than a second ago")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._worker, call)
        except sqlite3.Error as exc:
            self._paused_until = time.monotonic() + _PAUSE_AFTER_FAILURE_S
            raise CacheUnavailable(f"the cache file {self.path} failed: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        return await self._run(lambda: self._get(key))

    def _get(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value, used FROM generations WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        now = time.time()
        if now - row[1] > _TOUCH_AFTER_S:
            self._db.execute("UPDATE generations SET used = ? WHERE key = ?", (now, key))
        return bytes(row[0])

    async def put(self, key: str, value: bytes) -> None:
        await self._run(lambda: self._put(key, value))

    def _put(self, key: str, value: bytes) -> None:
        cursor = self._db.execute(
            "INSERT OR REPLACE INTO generations (key, value, used) VALUES (?, ?, ?)", (key, value, time.time())
        )
        self._count += cursor.rowcount
        if self._count > self.max_entries:
            self._evict()

    def _evict(self) -> None:
        # Other processes write too: count again before deciding how much goes.
        self._count = int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])
        excess = self._count - self.max_entries
        if excess <= 0:
            return
        doomed = excess + int(self.max_entries * _EVICT_FRACTION)
        self._db.execute(
            "DELETE FROM generations WHERE key IN (SELECT key FROM generations ORDER BY used LIMIT ?)", (doomed,)
        )
        self._count = int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    async def clear(self) -> int:
        self._paused_until = 0.0  # an administrator's request tries the file whatever happened just before
        return await self._run(self._clear)

    def _clear(self) -> int:
        count = int(self._db.execute("DELETE FROM generations").rowcount)
        self._count = 0
        return count

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._worker, self._db.close)
        self._worker.shutdown()
