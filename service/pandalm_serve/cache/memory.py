"""An in-memory cache, bounded, least recently used out first: for tests and single short-lived processes."""

from __future__ import annotations

from collections import OrderedDict


class MemoryCache:
    name = "memory"

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, bytes] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count

    async def close(self) -> None:
        return None
