"""The embedded default: one SQLite file (WAL, so several processes share it), bounded, least recently used
out first, surviving restarts.

Each call is one short statement on an indexed table, well under a millisecond: it runs on the event loop
rather than paying a thread hop per item (benchmarks/cache_cost.py).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from .base import CacheUnavailable

# Evict in chunks, so that a full cache does not pay an eviction on every write.
_EVICT_FRACTION = 0.1
# A hit records its use only if the last record is older than this: a read stays a read, and the order of
# eviction is right to within a minute.
_TOUCH_AFTER_S = 60.0


class SQLiteCache:
    name = "sqlite"

    def __init__(self, path: Path, max_entries: int) -> None:
        self.path = path
        self.max_entries = max_entries
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, value BLOB NOT NULL, used REAL NOT NULL)"
            )
            self._db.execute("CREATE INDEX IF NOT EXISTS generations_used ON generations (used)")
            self._count = int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])
        except (OSError, sqlite3.Error) as exc:
            raise CacheUnavailable(f"cannot open the cache file {path}: {exc}") from exc

    async def get(self, key: str) -> bytes | None:
        try:
            row = self._db.execute("SELECT value, used FROM generations WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            now = time.time()
            if now - row[1] > _TOUCH_AFTER_S:
                self._db.execute("UPDATE generations SET used = ? WHERE key = ?", (now, key))
        except sqlite3.Error as exc:
            raise CacheUnavailable(f"the cache file {self.path} failed: {exc}") from exc
        return bytes(row[0])

    async def put(self, key: str, value: bytes) -> None:
        try:
            cursor = self._db.execute(
                "INSERT OR REPLACE INTO generations (key, value, used) VALUES (?, ?, ?)", (key, value, time.time())
            )
            self._count += cursor.rowcount
            if self._count > self.max_entries:
                self._evict()
        except sqlite3.Error as exc:
            raise CacheUnavailable(f"the cache file {self.path} failed: {exc}") from exc

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
        try:
            count = int(self._db.execute("DELETE FROM generations").rowcount)
        except sqlite3.Error as exc:
            raise CacheUnavailable(f"the cache file {self.path} failed: {exc}") from exc
        self._count = 0
        return count

    async def close(self) -> None:
        self._db.close()
