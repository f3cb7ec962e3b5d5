"""Judging: request -> PandaLM prompt -> engine -> parsed verdict. Routes call this; engines are called by it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from pydantic import ValidationError

from pandalm_client.models import (
    BatchSummary,
    CompareRequest,
    CompareResult,
    ErrorBody,
    JudgeOptions,
    Usage,
)

from ..engines.base import Engine, EnginePrompt, Generation, Sampling
from ..errors import ServiceError
from ..metrics import Metrics
from ..settings import Settings
from .options import ResolvedOptions, resolve_options
from .parse import parse_output
from .prompt import TEMPLATE_VERSION, build_prompt
from .tokens import PromptEncoder, fit_prompt

logger = logging.getLogger(__name__)


class Judge:
    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self._encoder: PromptEncoder | None = None

    def on_engine_started(self) -> None:
        """Set up tokenization once the engine (and so its tokenizer) is loaded."""
        if self.engine.tokenizer is not None:
            self._encoder = PromptEncoder(self.engine.tokenizer, self.settings.bos_token)

    def options(self, *layers: JudgeOptions | None) -> ResolvedOptions:
        return resolve_options(self.settings, self.engine.presets, *layers)

    def encode(self, request: CompareRequest, options: ResolvedOptions) -> tuple[EnginePrompt, list[str]]:
        """The prompt for one pair, tokenized and fitted to the context when the engine has a tokenizer."""
        if self._encoder is None or self.engine.context_length is None:
            # The remote server tokenizes, and reports a prompt that is too long itself.
            text = build_prompt(request.instruction, request.input, request.response1, request.response2)
            return EnginePrompt(text), []
        fitted = fit_prompt(
            self._encoder,
            request.instruction,
            request.input,
            request.response1,
            request.response2,
            context_length=self.engine.context_length,
            max_new_tokens=options.max_new_tokens,
            truncate=options.truncate,
        )
        return EnginePrompt(fitted.text, fitted.token_ids), fitted.warnings

    async def compare(
        self, request: CompareRequest, batch_options: JudgeOptions | None = None, index: int | None = None
    ) -> CompareResult:
        """Judge one pair. Raises `ServiceError` when it cannot be judged."""
        started = time.perf_counter()
        options = self.options(batch_options, request.options)
        prompt, warnings = self.encode(request, options)
        sampling = Sampling(
            preset=options.preset,
            max_new_tokens=options.max_new_tokens,
            repetition_penalty=self.settings.repetition_penalty,
            beam_width=self.settings.beam_width,
        )
        generation = await self.engine.generate(prompt, sampling, request_id=uuid.uuid4().hex)
        result = self._result(request, options, generation, warnings, index, time.perf_counter() - started)
        self.metrics.observe_result(result, generation)
        return result

    async def compare_or_error(self, item: Any, batch_options: JudgeOptions | None, index: int) -> CompareResult:
        """Judge one batch item; whatever goes wrong becomes this item's error, never the batch's."""
        started = time.perf_counter()
        item_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
        error = None
        try:
            request = CompareRequest.model_validate(item)
        except ValidationError as exc:
            error = ErrorBody(
                code="invalid_request",
                message="this item is not a valid compare request; see details",
                details=validation_details(exc),
            )
        if error is None:
            try:
                return await self.compare(request, batch_options, index)
            except ServiceError as exc:
                error = exc.body()
            except Exception:
                logger.exception("internal error while judging batch item %d", index)
                error = ErrorBody(
                    code="internal_error", message="internal error while judging this item; see the server log"
                )
        result = CompareResult(
            id=item_id,
            index=index,
            status="error",
            error=error,
            model=self.engine.model_name,
            template_version=TEMPLATE_VERSION,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        self.metrics.observe_result(result, None)
        return result

    async def stream_batch(self, items: list[Any], batch_options: JudgeOptions | None) -> AsyncIterator[CompareResult]:
        """Judge all items concurrently (vLLM batches them) and yield each result as it finishes.

        Stopping the iteration early (the client went away) cancels the items still running,
        which aborts their generation in the engine.
        """
        tasks = [asyncio.create_task(self.compare_or_error(item, batch_options, i)) for i, item in enumerate(items)]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()

    async def batch(self, items: list[Any], batch_options: JudgeOptions | None) -> list[CompareResult]:
        results: list[CompareResult | None] = [None] * len(items)
        async for result in self.stream_batch(items, batch_options):
            assert result.index is not None
            results[result.index] = result
        return [r for r in results if r is not None]

    def _result(
        self,
        request: CompareRequest,
        options: ResolvedOptions,
        generation: Generation,
        warnings: list[str],
        index: int | None,
        seconds: float,
    ) -> CompareResult:
        parsed = parse_output(generation.text)
        warnings = list(warnings)
        if generation.finish_reason == "length":
            warnings.append(
                f"the judge's output was cut off at max_new_tokens={options.max_new_tokens}: "
                "its reason or reference may be incomplete"
            )
        return CompareResult(
            id=request.id,
            index=index,
            verdict=parsed.verdict,
            status="ok" if parsed.verdict is not None else "unparsed",
            reason=parsed.reason,
            reference=parsed.reference,
            raw=generation.text,
            model=self.engine.model_name,
            template_version=TEMPLATE_VERSION,
            preset=options.preset,
            finish_reason=generation.finish_reason,
            usage=Usage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens),
            latency_ms=round(seconds * 1000, 3),
            warnings=warnings,
        )


def summarize(results: Iterable[CompareResult]) -> BatchSummary:
    summary = BatchSummary()
    for result in results:
        key = result.verdict if result.status == "ok" and result.verdict else result.status
        setattr(summary, key, getattr(summary, key) + 1)
    return summary


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without the echoed input, which may be large or confidential."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors(include_url=False)]
