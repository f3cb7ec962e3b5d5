"""POST /compare and POST /batch: translate HTTP to judge calls and back, nothing more."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from pandalm_client.models import (
    BatchRequest,
    BatchResult,
    CompareRequest,
    CompareResult,
    GradeRequest,
    GradeResult,
    StreamSummary,
)

from ..errors import ServiceError
from ..judge.batch import judge_batch, stream_batch, summarize
from ..state import ServicesDep
from .body import JSONRoute
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["judging"], route_class=JSONRoute)

NDJSON = "application/x-ndjson"
T = TypeVar("T")


@router.post(
    "/compare",
    response_model=CompareResult,
    responses=ERROR_RESPONSES,
    summary="Judge one pair of responses",
)
async def compare(body: CompareRequest, services: ServicesDep, request: Request) -> CompareResult | Response:
    services.require_ready()
    services.panel.accept(None, body.judge)
    work = services.panel.compare(body, client=_client(request), key=_key_label(request))
    return await _unless_disconnected(request, work)


@router.post(
    "/grade",
    response_model=GradeResult,
    responses=ERROR_RESPONSES,
    summary="Grade one response on the judge's absolute scale",
)
async def grade(body: GradeRequest, services: ServicesDep, request: Request) -> GradeResult | Response:
    services.require_ready()
    judge = services.panel.grader(body.judge)
    judge.accept()
    return await _unless_disconnected(request, judge.grade(body, client=_client(request)))


@router.post(
    "/batch",
    response_model=BatchResult,
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": f"All results at once; or, with `Accept: {NDJSON}`, one `CompareResult` line per "
            "item as it finishes (with its `index`), then a `StreamSummary` line.",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
    },
    summary="Judge many pairs concurrently",
)
async def batch(body: BatchRequest, services: ServicesDep, request: Request) -> BatchResult | Response:
    limit = services.settings.max_batch_items
    if len(body.items) > limit:
        raise ServiceError(
            f"the batch has {len(body.items)} items; this server takes at most {limit} per request. Split it.",
            code="batch_too_large",
            details={"items": len(body.items), "max_batch_items": limit},
        )
    services.require_ready()
    panel = services.panel
    # An invalid batch-level option or judge fails the whole request (422), not every item.
    panel.accept(body.options, body.judge)
    services.metrics.batch_items.observe(len(body.items))
    client = _client(request)
    if NDJSON in request.headers.get("accept", ""):
        results_stream = stream_batch(panel, body.items, body.options, client, body.judge, _key_label(request))
        return StreamingResponse(_ndjson(results_stream), media_type=NDJSON)
    work = judge_batch(panel, body.items, body.options, client, body.judge, _key_label(request))
    results = await _unless_disconnected(request, work)
    if isinstance(results, Response):
        return results
    return BatchResult(results=results, summary=summarize(results))


def _client(request: Request) -> str:
    """The caller's API key name (api/context.py), which admission shares fairly between."""
    return str(request.scope.get("state", {}).get("client", "-"))


def _key_label(request: Request) -> str:
    """The caller as the metrics name it (api/context.py, --metrics-key-label)."""
    return str(request.scope.get("state", {}).get("key_label", "-"))


async def _ndjson(results: AsyncIterator[CompareResult]) -> AsyncIterator[bytes]:
    collected: list[CompareResult] = []
    async for result in results:
        collected.append(result)
        yield result.model_dump_json().encode() + b"\n"
    yield StreamSummary(summary=summarize(collected)).model_dump_json().encode() + b"\n"


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T | Response:
    """Run `work`, cancelling it (and so the engine's generation) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return Response(status_code=499)  # nobody is listening; the status is for the access log
    return task.result()


async def _disconnected(request: Request) -> None:
    # After the body, the server's next message is the disconnect (uvicorn blocks until then).
    while (await request.receive())["type"] != "http.disconnect":
        pass
