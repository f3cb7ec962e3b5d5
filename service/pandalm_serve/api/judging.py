"""POST /compare and POST /batch: translate HTTP to judge calls and back, nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pandalm_client.models import (
    BatchRequest,
    BatchResult,
    CompareRequest,
    CompareResult,
    JudgeOptions,
    StreamSummary,
)

from ..errors import ServiceError
from ..judge.judge import summarize
from ..state import ServicesDep
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["judging"])

NDJSON = "application/x-ndjson"
T = TypeVar("T")


class _BatchEnvelope(BaseModel):
    # Items stay raw here: each is validated on its own, so one bad item fails alone.
    model_config = ConfigDict(extra="forbid")
    items: list[Any] = Field(min_length=1)
    options: JudgeOptions | None = None


_BATCH_SCHEMA = BatchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
_BATCH_SCHEMA.pop("$defs", None)


@router.post(
    "/compare",
    response_model=CompareResult,
    responses=ERROR_RESPONSES,
    summary="Judge one pair of responses",
)
async def compare(body: CompareRequest, services: ServicesDep, request: Request) -> CompareResult | Response:
    services.require_ready()
    return await _unless_disconnected(request, services.judge.compare(body))


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
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BATCH_SCHEMA}}}},
    summary="Judge many pairs concurrently",
)
async def batch(services: ServicesDep, request: Request) -> BatchResult | Response:
    envelope = await _read_envelope(request)
    if len(envelope.items) > services.settings.max_batch_items:
        raise ServiceError(
            f"the batch has {len(envelope.items)} items; this server takes at most "
            f"{services.settings.max_batch_items} per request. Split it.",
            code="batch_too_large",
            status=413,
            details={"items": len(envelope.items), "max_batch_items": services.settings.max_batch_items},
        )
    services.require_ready()
    judge = services.judge
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(_ndjson(judge.stream_batch(envelope.items, envelope.options)), media_type=NDJSON)
    results = await _unless_disconnected(request, judge.batch(envelope.items, envelope.options))
    if isinstance(results, Response):
        return results
    return BatchResult(results=results, summary=summarize(results))


async def _read_envelope(request: Request) -> _BatchEnvelope:
    try:
        raw = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"the body is not valid JSON: {exc}", "type": "json_invalid"}]
        ) from exc
    try:
        return _BatchEnvelope.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc


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
