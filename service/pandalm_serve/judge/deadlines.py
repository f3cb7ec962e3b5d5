"""Deadlines of the pairs being judged: each its own (`item_timeout_s`, from admission), and all of them at once
when the service stops (the shutdown grace period), so that every pair ends with a result."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator


class Deadlines:
    def __init__(self, item_timeout_s: float) -> None:
        self.item_timeout_s = item_timeout_s
        self.stop_at: float | None = None  # the event loop's time at which every pair stops
        self._active: set[asyncio.Timeout] = set()

    @property
    def stopping(self) -> bool:
        return self.stop_at is not None

    @contextlib.asynccontextmanager
    async def scope(self) -> AsyncIterator[asyncio.Timeout]:
        """One pair's deadline: none while it waits its turn (but the shutdown's), then `start()`'s.

        When it passes, the pair's work is cancelled and `TimeoutError` raised here.
        """
        async with asyncio.timeout(self.stop_at) as timeout:
            self._active.add(timeout)
            try:
                yield timeout
            finally:
                self._active.discard(timeout)

    def start(self, timeout: asyncio.Timeout) -> None:
        """The pair is admitted: its own deadline runs from now."""
        own = asyncio.get_running_loop().time() + self.item_timeout_s
        timeout.reschedule(min(own, self.stop_at) if self.stop_at is not None else own)

    def stop(self, grace_s: float) -> None:
        """Every pair, running or waiting, ends within `grace_s` seconds from now."""
        self.stop_at = asyncio.get_running_loop().time() + grace_s
        for timeout in self._active:
            when = timeout.when()
            timeout.reschedule(min(when if when is not None else math.inf, self.stop_at))
