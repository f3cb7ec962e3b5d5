"""Judging a batch: every item concurrently (vLLM batches them), each failing alone, and the summary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence

from pandalm_client.models import (
    BatchItem,
    BatchSummary,
    CompareResult,
    ErrorBody,
    InvalidItem,
    JudgeOptions,
)

from .judge import Judge


async def stream_batch(
    judge: Judge, items: Sequence[BatchItem], options: JudgeOptions | None, client: str = ""
) -> AsyncIterator[CompareResult]:
    """Judge all items concurrently and yield each result as it finishes.

    A batch enters the admission queue in parts, at most `max_items_in_flight` of its items at a time,
    so a large batch waits its turn instead of filling the queue (and being refused) whole. Stopping
    the iteration early (the client went away) cancels the items still running, which aborts their
    generation in the engine.
    """
    window = asyncio.Semaphore(judge.settings.max_items_in_flight)
    tasks = [asyncio.create_task(_judge_item(judge, item, options, i, client, window)) for i, item in enumerate(items)]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()


async def judge_batch(
    judge: Judge, items: Sequence[BatchItem], options: JudgeOptions | None, client: str = ""
) -> list[CompareResult]:
    """Every item's result, in the order of `items`."""
    results: list[CompareResult | None] = [None] * len(items)
    async for result in stream_batch(judge, items, options, client):
        assert result.index is not None
        results[result.index] = result
    return [r for r in results if r is not None]


def summarize(results: Iterable[CompareResult]) -> BatchSummary:
    summary = BatchSummary()
    for result in results:
        setattr(summary, result.outcome, getattr(summary, result.outcome) + 1)
        if result.consistent is False:
            summary.inconsistent += 1
        if result.error is not None and result.error.code == "shutting_down":
            summary.interrupted += 1
    return summary


async def _judge_item(
    judge: Judge,
    item: BatchItem,
    options: JudgeOptions | None,
    index: int,
    client: str,
    window: asyncio.Semaphore,
) -> CompareResult:
    """Judge one batch item; whatever goes wrong becomes this item's error, never the batch's."""
    if isinstance(item, InvalidItem):
        error = ErrorBody(
            code="invalid_request",
            message="this item is not a valid compare request; see details",
            details=item.details,
        )
        result = judge.error_result(item.id, index, error, time.perf_counter())
        judge.metrics.observe_result(result, [])
        return result
    arrived = time.perf_counter()
    async with judge.admission.holding():
        await window.acquire()
    try:
        return await judge.compare(item, options, index, client, arrived)
    finally:
        window.release()
