"""Judging a batch: every item concurrently (vLLM batches them), each failing alone, and the summary."""

from __future__ import annotations

import asyncio
import logging
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

from ..errors import ServiceError
from .judge import Judge
from .panel import JudgeChoice, Panel
from .pipeline import error_result

logger = logging.getLogger(__name__)


async def stream_batch(
    panel: Panel,
    items: Sequence[BatchItem],
    options: JudgeOptions | None,
    client: str = "",
    batch_judge: JudgeChoice = None,
    key: str = "-",
) -> AsyncIterator[CompareResult]:
    """Judge all items concurrently and yield each result as it finishes.

    A batch enters the admission queue in parts, at most `max_items_in_flight` of its items at a time,
    so a large batch waits its turn instead of filling the queue (and being refused) whole. Stopping
    the iteration early (the client went away) cancels the items still running, which aborts their
    generation in the engine.
    """
    window = asyncio.Semaphore(panel.default.settings.max_items_in_flight)
    tasks = [
        asyncio.create_task(_judge_item(panel, item, options, i, client, window, batch_judge, key))
        for i, item in enumerate(items)
    ]
    try:
        for next_done in asyncio.as_completed(tasks):
            yield await next_done
    finally:
        for task in tasks:
            task.cancel()


async def judge_batch(
    panel: Panel,
    items: Sequence[BatchItem],
    options: JudgeOptions | None,
    client: str = "",
    batch_judge: JudgeChoice = None,
    key: str = "-",
) -> list[CompareResult]:
    """Every item's result, in the order of `items`."""
    results: list[CompareResult | None] = [None] * len(items)
    async for result in stream_batch(panel, items, options, client, batch_judge, key):
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
    panel: Panel,
    item: BatchItem,
    options: JudgeOptions | None,
    index: int,
    client: str,
    window: asyncio.Semaphore,
    batch_judge: JudgeChoice,
    key: str,
) -> CompareResult:
    """Judge one batch item; whatever goes wrong becomes this item's error result, never the batch's."""
    arrived = time.perf_counter()
    judge = panel.default
    if isinstance(item, InvalidItem):
        error = ErrorBody(
            code="invalid_request",
            message="this item is not a valid compare request; see details",
            details=item.details,
        )
        judge.metrics.observe_error(error.code, 0.0, judge.name)
        return _error(judge, item.id, index, error, arrived)
    try:
        judge = panel.choose(item.judge, batch_judge)[0]
    except ServiceError as exc:  # an unknown judge: this item's error
        judge.metrics.observe_error(exc.code, 0.0, judge.name)
        return _error(judge, item.id, index, exc.body(), arrived)
    async with judge.admission.holding():
        await window.acquire()
    try:
        return await panel.compare(item, options, index, client, arrived, batch_judge, key)
    except ServiceError as exc:
        return _error(judge, item.id, index, exc.body(), arrived)
    except Exception:  # a bug: logged here, once, and reported without its internals
        logger.exception("internal error while judging a pair")
        error = ErrorBody(code="internal_error", message="internal error while judging this pair; see the server log")
        return _error(judge, item.id, index, error, arrived)
    finally:
        window.release()


def _error(judge: Judge, item_id: str | None, index: int, error: ErrorBody, arrived: float) -> CompareResult:
    latency_ms = round((time.perf_counter() - arrived) * 1000, 3)
    return error_result(
        item_id, index, error, judge.engine.model_name, latency_ms, family=judge.family, judge=judge.name
    )
