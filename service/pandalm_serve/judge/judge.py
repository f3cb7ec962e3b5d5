"""Judging: request -> PandaLM prompt(s) -> engine -> parsed, reconciled verdict. Routes call this; it calls engines."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pandalm_client.models import (
    BatchSummary,
    CompareRequest,
    CompareResult,
    ErrorBody,
    JudgeOptions,
    LabelProbabilities,
    Order,
    OrderResult,
    ResultWarning,
    Usage,
    Verdict,
)

from ..engines.base import Engine, EnginePrompt, Generation, LabelCandidates, Sampling
from ..errors import ServiceError
from ..metrics import Metrics
from ..settings import Settings
from .injection import screen
from .labels import (
    LABEL_TEXTS,
    LabelTokens,
    average,
    label_logprobs,
    label_tokens,
    probabilities,
    reconcile,
    swap_back,
    swap_probabilities_back,
    verdict_from_label,
)
from .options import ResolvedOptions, resolve_options
from .parse import ParsedOutput, parse_output
from .prompt import TEMPLATE_VERSION, build_prompt
from .tokens import PromptEncoder, fit_prompt

logger = logging.getLogger(__name__)

# Verdict mode without a tokenizer to count the labels' tokens (remote engine): enough for `Tie`.
_VERDICT_MODE_TOKENS = 3


@dataclass(frozen=True, slots=True)
class _Judged:
    """One order's judgement, with its verdict and probabilities in the request's positions."""

    order: Order
    parsed: ParsedOutput
    verdict: Verdict | None
    probabilities: LabelProbabilities | None
    generation: Generation
    warnings: list[ResultWarning]


class Judge:
    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self._encoder: PromptEncoder | None = None
        self._labels: LabelTokens | None = None

    def on_engine_started(self) -> None:
        """Set up tokenization once the engine (and so its tokenizer) is loaded."""
        if self.engine.tokenizer is not None:
            self._encoder = PromptEncoder(self.engine.tokenizer, self.settings.bos_token)
            self._labels = label_tokens(self._encoder)

    def options(self, *layers: JudgeOptions | None) -> ResolvedOptions:
        return resolve_options(self.settings, self.engine.presets, *layers)

    async def compare(
        self, request: CompareRequest, batch_options: JudgeOptions | None = None, index: int | None = None
    ) -> CompareResult:
        """Judge one pair, in one order or both. Raises `ServiceError` when it cannot be judged."""
        started = time.perf_counter()
        options = self.options(batch_options, request.options)
        first = screen("response1", request.response1, neutralize=options.neutralize_headers)
        second = screen("response2", request.response2, neutralize=options.neutralize_headers)
        pair = (first.text, second.text)
        if options.swap:
            # A TaskGroup cancels the other order when one fails.
            async with asyncio.TaskGroup() as group:
                original = group.create_task(self._judge(request, pair, options, "original"))
                swapped = group.create_task(self._judge(request, pair, options, "swapped"))
            judged = [original.result(), swapped.result()]
        else:
            judged = [await self._judge(request, pair, options, "original")]
        result = self._result(request, options, judged, first.warnings + second.warnings, index, started)
        self.metrics.observe_result(result, [j.generation for j in judged])
        return result

    async def _judge(
        self, request: CompareRequest, pair: tuple[str, str], options: ResolvedOptions, order: Order
    ) -> _Judged:
        names = ("response1", "response2") if order == "original" else ("response2", "response1")
        response1, response2 = pair if order == "original" else pair[::-1]
        verdict_mode = options.mode == "verdict"
        max_new_tokens = options.max_new_tokens
        if verdict_mode:
            max_new_tokens = self._labels.max_length if self._labels else _VERDICT_MODE_TOKENS
        prompt, warnings = self._encode(request, response1, response2, options, max_new_tokens, names)
        sampling = Sampling(
            preset=options.preset,
            max_new_tokens=max_new_tokens,
            repetition_penalty=self.settings.repetition_penalty,
            beam_width=self.settings.beam_width,
            stop=("\n",) if verdict_mode else (),
            labels=LabelCandidates(self._labels.all_ids if self._labels else None, LABEL_TEXTS),
        )
        generation = await self.engine.generate(prompt, sampling, request_id=uuid.uuid4().hex)

        parsed = parse_output(generation.text)
        verdict = parsed.verdict
        if verdict is None and verdict_mode and generation.finish_reason == "length":
            verdict = verdict_from_label(generation.text)  # `T` cut off at the limit: the first token decides
        probs = self._probabilities(generation)
        if generation.logprobs_note:
            warnings.append(ResultWarning(code="no_probabilities", message=generation.logprobs_note))
        if generation.finish_reason == "length" and not verdict_mode:
            warnings.append(
                ResultWarning(
                    code="output_cut_off",
                    message=f"the judge's output was cut off at max_new_tokens={max_new_tokens}: "
                    "its reason or reference may be incomplete",
                )
            )
        if order == "swapped":
            return _Judged(order, parsed, swap_back(verdict), swap_probabilities_back(probs), generation, warnings)
        return _Judged(order, parsed, verdict, probs, generation, warnings)

    def _probabilities(self, generation: Generation) -> LabelProbabilities | None:
        if generation.label_logprobs is None:
            return None
        if self._labels is None:  # the engine matched each label itself (remote)
            return probabilities(generation.label_logprobs)
        return probabilities(label_logprobs(generation.label_logprobs, self._labels.starts))

    def _encode(
        self,
        request: CompareRequest,
        response1: str,
        response2: str,
        options: ResolvedOptions,
        max_new_tokens: int,
        names: tuple[str, str],
    ) -> tuple[EnginePrompt, list[ResultWarning]]:
        """The prompt for one order, tokenized and fitted to the context when the engine has a tokenizer."""
        if self._encoder is None or self.engine.context_length is None:
            # The remote server tokenizes, and reports a prompt that is too long itself.
            return EnginePrompt(build_prompt(request.instruction, request.input, response1, response2)), []
        fitted = fit_prompt(
            self._encoder,
            request.instruction,
            request.input,
            response1,
            response2,
            context_length=self.engine.context_length,
            max_new_tokens=max_new_tokens,
            truncate=options.truncate,
            names=names,
        )
        return EnginePrompt(fitted.text, fitted.token_ids), fitted.warnings

    def _result(
        self,
        request: CompareRequest,
        options: ResolvedOptions,
        judged: list[_Judged],
        warnings: list[ResultWarning],
        index: int | None,
        started: float,
    ) -> CompareResult:
        original = judged[0]
        consistent: bool | None = None
        orders: list[OrderResult] | None = None
        if options.swap:
            reconciled = reconcile(judged[0].verdict, judged[1].verdict)
            verdict, consistent = reconciled.verdict, reconciled.consistent
            probs = average(judged[0].probabilities, judged[1].probabilities)
            orders = [
                OrderResult(
                    order=j.order,
                    verdict=j.verdict,
                    status="ok" if j.verdict is not None else "unparsed",
                    raw=j.generation.text,
                    probabilities=j.probabilities,
                    finish_reason=j.generation.finish_reason,
                )
                for j in judged
            ]
        else:
            verdict, probs = original.verdict, original.probabilities
        for j in judged:
            warnings.extend(w for w in j.warnings if w not in warnings)
        return CompareResult(
            id=request.id,
            index=index,
            verdict=verdict,
            status="ok" if verdict is not None else "unparsed",
            reason=original.parsed.reason,
            reference=original.parsed.reference,
            raw=original.generation.text,
            model=self.engine.model_name,
            template_version=TEMPLATE_VERSION,
            preset=options.preset,
            mode=options.mode,
            probabilities=probs,
            consistent=consistent,
            orders=orders,
            finish_reason=original.generation.finish_reason,
            usage=Usage(
                prompt_tokens=_total(j.generation.prompt_tokens for j in judged),
                completion_tokens=_total(j.generation.completion_tokens for j in judged),
            ),
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            warnings=warnings,
        )

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
        self.metrics.observe_result(result, [])
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


def summarize(results: Iterable[CompareResult]) -> BatchSummary:
    summary = BatchSummary()
    for result in results:
        setattr(summary, result.outcome, getattr(summary, result.outcome) + 1)
        if result.consistent is False:
            summary.inconsistent += 1
    return summary


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without the echoed input, which may be large or confidential."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors(include_url=False)]


def _total(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None
