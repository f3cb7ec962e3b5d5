"""A bounded number of pairs in the engine at once; the others wait their turn, in order, and are counted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from ..metrics import Metrics


class Admission:
    def __init__(self, max_in_flight: int, metrics: Metrics) -> None:
        self._slots = asyncio.Semaphore(max_in_flight)
        self._metrics = metrics

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the places in flight while judging a pair; wait (counted as waiting) for one first."""
        started = time.perf_counter()
        self._metrics.items_waiting.inc()
        try:
            await self._slots.acquire()
        finally:
            self._metrics.items_waiting.dec()
        self._metrics.queue_time.observe(time.perf_counter() - started)
        self._metrics.items_in_flight.inc()
        try:
            yield
        finally:
            self._metrics.items_in_flight.dec()
            self._slots.release()
