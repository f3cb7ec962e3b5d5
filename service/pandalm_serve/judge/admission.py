"""A bounded number of pairs in the engine at once; the others wait their turn, fairly across clients.

Waiting pairs queue per client (an API key's name), and a freed place goes to the next client in turn:
one client's huge batch cannot starve another's single /compare. The waiting queue is bounded too;
past it, callers get 429 before any work is done (`overloaded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator

from ..errors import ServiceError
from ..metrics import Metrics

# What a caller told to come back later should wait, in seconds.
RETRY_AFTER_S = 5


class Admission:
    def __init__(self, max_in_flight: int, max_waiting: int, metrics: Metrics) -> None:
        self.max_in_flight = max_in_flight
        self.max_waiting = max_waiting
        self.in_flight = 0
        self.waiting = 0
        self.held = 0  # batch items not yet in the queue (a batch joins it in parts)
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._metrics = metrics

    def check_room(self) -> None:
        """Refuse new work (429) when the waiting queue is full, counting the batch items not yet in it."""
        if self.waiting + self.held >= self.max_waiting:
            raise ServiceError(
                f"{self.waiting + self.held} pairs are waiting, this server's limit; retry in {RETRY_AFTER_S} s",
                code="overloaded",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """Count a batch item that waits for its batch's turn to join the queue as waiting too."""
        self.held += 1
        self._set_waiting(self.waiting)
        try:
            yield
        finally:
            self.held -= 1
            self._set_waiting(self.waiting)

    @contextlib.asynccontextmanager
    async def slot(self, client: str = "", waiting_since: float | None = None) -> AsyncIterator[None]:
        """Hold one of the places in flight while judging a pair, waiting (counted) for one first.

        `waiting_since` is when the pair started to wait (`time.perf_counter()`), if before this call.
        """
        started = waiting_since if waiting_since is not None else time.perf_counter()
        if self.in_flight < self.max_in_flight and not self.waiting:
            self._take()
        else:
            await self._wait(client)
        self._metrics.queue_time.observe(time.perf_counter() - started)
        try:
            yield
        finally:
            self._release()

    async def _wait(self, client: str) -> None:
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(client, deque()).append(granted)
        self._set_waiting(self.waiting + 1)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # the place came just as the caller left: pass it on
            else:
                self._forget(client, granted)
            raise

    def _forget(self, client: str, granted: asyncio.Future[None]) -> None:
        queue = self._queues.get(client)
        if queue is not None and granted in queue:
            queue.remove(granted)
            self._set_waiting(self.waiting - 1)
            if not queue:
                del self._queues[client]

    def _take(self) -> None:
        self.in_flight += 1
        self._metrics.items_in_flight.set(self.in_flight)

    def _release(self) -> None:
        self.in_flight -= 1
        self._metrics.items_in_flight.set(self.in_flight)
        while self.in_flight < self.max_in_flight and self._queues:
            client, queue = next(iter(self._queues.items()))
            granted = queue.popleft()
            self._set_waiting(self.waiting - 1)
            if queue:
                self._queues.move_to_end(client)  # round robin: the next client's turn
            else:
                del self._queues[client]
            if not granted.cancelled():
                self._take()
                granted.set_result(None)

    def _set_waiting(self, waiting: int) -> None:
        self.waiting = waiting
        self._metrics.items_waiting.set(waiting + self.held)
