"""Admission: a bounded number in flight, a bounded queue, and turns taken fairly across clients."""

from __future__ import annotations

import asyncio

import pytest

from pandalm_serve.errors import ServiceError
from pandalm_serve.judge.admission import Admission
from pandalm_serve.metrics import Metrics


async def test_waiting_pairs_take_turns_across_clients() -> None:
    admission = Admission(max_in_flight=1, max_waiting=100, metrics=Metrics())
    order: list[str] = []
    release = asyncio.Event()

    async def pair(client: str, name: str) -> None:
        async with admission.slot(client):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(pair("a", "a0"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(pair("a", f"a{i}")) for i in range(1, 5)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(pair("b", "b1")))
    await asyncio.sleep(0)
    assert (admission.in_flight, admission.waiting) == (1, 5)
    release.set()
    await asyncio.gather(first, *tasks)
    # A FIFO queue would serve b1 last; in turns, b gets the place after a's next.
    assert order == ["a0", "a1", "b1", "a2", "a3", "a4"]


async def test_a_full_queue_refuses_with_retry_after_and_a_cancelled_waiter_leaves_no_trace() -> None:
    metrics = Metrics()
    admission = Admission(max_in_flight=1, max_waiting=1, metrics=metrics)
    hold = asyncio.Event()

    async def pair() -> None:
        async with admission.slot():
            await hold.wait()

    running = asyncio.create_task(pair())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(pair())
    await asyncio.sleep(0)
    with pytest.raises(ServiceError) as refused:
        admission.check_room()
    assert refused.value.code == "overloaded" and refused.value.headers == {"Retry-After": "5"}
    waiting.cancel()
    await asyncio.sleep(0)
    assert (admission.in_flight, admission.waiting) == (1, 0)
    admission.check_room()  # room again
    hold.set()
    await running
    assert (admission.in_flight, admission.waiting) == (0, 0)
    assert metrics.items_in_flight._value.get() == 0


async def test_batch_items_not_yet_in_the_queue_count_toward_its_limit() -> None:
    admission = Admission(max_in_flight=1, max_waiting=3, metrics=Metrics())
    release = asyncio.Event()

    async def held() -> None:
        async with admission.holding():
            await release.wait()

    items = [asyncio.create_task(held()) for _ in range(3)]
    await asyncio.sleep(0)
    assert admission.waiting == 0  # none has joined the queue yet...
    with pytest.raises(ServiceError):
        admission.check_room()  # ...but they are waiting all the same
    release.set()
    await asyncio.gather(*items)
    admission.check_room()
