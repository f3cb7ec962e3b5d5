"""Judging one pair: request -> PandaLM prompt(s) -> engine -> parsed, reconciled verdict.

Routes call this; it calls engines. The same steps run whatever the engine: the prompt builder and
the label set are chosen once, when the engine has started, by whether there is a tokenizer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pandalm_client.models import (
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

from ..cache.base import CacheBackend
from ..cache.generations import Generations
from ..engines.base import Engine, EnginePrompt, Generation, Sampling
from ..errors import ServiceError
from ..metrics import Metrics
from ..model import ModelProfile
from ..settings import Settings
from .admission import Admission
from .deadlines import Deadlines
from .injection import screen
from .labels import LabelRead, LabelSet, TextLabels, token_labels
from .options import ResolvedOptions, resolve_options
from .parse import ParsedOutput
from .prompt import TEMPLATE_VERSION
from .reading import merged_warnings, read_order, total_tokens
from .swap import both_orders, order_result
from .tokens import OrderedPair, PromptBuilder, PromptEncoder, TextPrompts, TokenPrompts

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Texts longer than this are screened and tokenized in a thread (a few milliseconds of work at this size).
_LARGE_TEXT_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class _Judged:
    """One order's judgement, with its verdict and probabilities in the request's positions."""

    order: Order
    parsed: ParsedOutput
    verdict: Verdict | None
    probabilities: LabelProbabilities | None
    generation: Generation
    warnings: list[ResultWarning]
    cached: bool


class Judge:
    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics, cache: CacheBackend | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.profile = ModelProfile()
        self.admission = Admission(settings.max_items_in_flight, settings.max_items_waiting, metrics)
        self.deadlines = Deadlines(settings.item_timeout_s)
        self.generations = Generations(cache, metrics, per_key=settings.cache_scope == "per-key")
        self._prompts: PromptBuilder = TextPrompts()
        self._labels: LabelSet = TextLabels()

    def configure(self, profile: ModelProfile, model_identity: str) -> None:
        """Set up prompts and labels once the engine (and so its tokenizer) is loaded.

        With a tokenizer, prompts are PandaLM's exact token ids, checked against the context, and
        labels are token ids; without one, the engine gets text and labels are matched by text.
        """
        self.profile = profile
        self.generations.model_identity = model_identity
        self.generations.template_version = TEMPLATE_VERSION
        tokenizer = self.engine.tokenizer
        if tokenizer is None:
            self._prompts, self._labels = TextPrompts(), TextLabels()
            return
        encoder = PromptEncoder(tokenizer, self.settings.bos_token)
        context_length = self.engine.context_length or self.settings.max_model_len
        self._prompts, self._labels = TokenPrompts(encoder, context_length), token_labels(encoder)

    def options(self, *layers: JudgeOptions | None) -> ResolvedOptions:
        return resolve_options(self.settings, self.engine.presets, *layers)

    async def compare(
        self,
        request: CompareRequest,
        batch_options: JudgeOptions | None = None,
        index: int | None = None,
        client: str = "",
        started: float | None = None,
    ) -> CompareResult:
        """Judge one pair, in one order or both. Never raises: a pair that cannot be judged is an error result.

        `client` names the caller for fair admission; `started` is when the pair arrived, if before this
        call (`time.perf_counter()`). Every result, error or not, is counted here, once.
        """
        started = started if started is not None else time.perf_counter()
        generations: list[Generation] = []
        try:
            check_field_lengths(request, self.settings.max_field_chars)
            options = self.options(batch_options, request.options)
            async with self.deadlines.scope() as deadline, self.admission.slot(client, started):
                self.deadlines.start(deadline)
                judged = await self._orders(request, options)
            generations = [j.generation for j in judged]
            result = self._result(request, options, judged, index, started)
        except ServiceError as exc:
            result = self.error_result(request.id, index, exc.body(), started)
        except TimeoutError:
            result = self.error_result(request.id, index, self._deadline_error(), started)
        except Exception:  # a bug: logged here, once, and reported without its internals
            logger.exception("internal error while judging a pair")
            body = ErrorBody(
                code="internal_error", message="internal error while judging this pair; see the server log"
            )
            result = self.error_result(request.id, index, body, started)
        self.metrics.observe_result(result, generations)
        return result

    def _deadline_error(self) -> ErrorBody:
        if self.deadlines.stopping:
            return ErrorBody(code="shutting_down", message="the service stopped before this pair was judged; retry it")
        return ErrorBody(
            code="deadline_exceeded",
            message=f"the pair was not judged within {self.settings.item_timeout_s:g} s (item_timeout_s)",
        )

    def error_result(self, item_id: str | None, index: int | None, error: ErrorBody, started: float) -> CompareResult:
        return CompareResult(
            id=item_id,
            index=index,
            status="error",
            error=error,
            model=self.engine.model_name,
            template_version=TEMPLATE_VERSION,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def _orders(self, request: CompareRequest, options: ResolvedOptions) -> list[_Judged]:
        first = await _off_loop_if_large(
            len(request.response1), screen, "response1", request.response1, neutralize=options.neutralize_headers
        )
        second = await _off_loop_if_large(
            len(request.response2), screen, "response2", request.response2, neutralize=options.neutralize_headers
        )
        pair = (first.text, second.text)
        if not options.swap:
            judged = [await self._judge(request, pair, options, "original")]
        else:
            try:
                # A TaskGroup cancels the other order when one fails.
                async with asyncio.TaskGroup() as group:
                    original = group.create_task(self._judge(request, pair, options, "original"))
                    swapped = group.create_task(self._judge(request, pair, options, "swapped"))
            except ExceptionGroup as group_error:
                # The order that failed first says why the pair cannot be judged; raise it as itself.
                raise group_error.exceptions[0] from None
            judged = [original.result(), swapped.result()]
        judged[0].warnings[:0] = first.warnings + second.warnings
        return judged

    async def _judge(
        self, request: CompareRequest, pair: tuple[str, str], options: ResolvedOptions, order: Order
    ) -> _Judged:
        names = ("response1", "response2") if order == "original" else ("response2", "response1")
        response1, response2 = pair if order == "original" else pair[::-1]
        verdict_mode = options.mode == "verdict"
        max_new_tokens = self._labels.max_length if verdict_mode else options.max_new_tokens
        prompt, warnings = await _off_loop_if_large(
            _size(request),
            self._prompts.build,
            OrderedPair(request.instruction, request.input, response1, response2, names),
            max_new_tokens=max_new_tokens,
            truncate=options.truncate,
        )
        sampling = Sampling(
            preset=options.preset,
            max_new_tokens=max_new_tokens,
            repetition_penalty=self.settings.repetition_penalty,
            beam_width=self.settings.beam_width,
            stop=("\n",) if verdict_mode else (),
            output_regex=self.profile.output_regex,
            ignore_eos=self.settings.ignore_eos,
        )
        generation, cached, note = await self._generate(prompt, sampling, options.cache)

        labels = LabelRead(None, note) if note is not None else self._labels.read(generation.first_logprobs)
        reading = read_order(
            generation.text,
            generation.finish_reason,
            order,
            labels,
            verdict_mode=verdict_mode,
            max_new_tokens=max_new_tokens,
        )
        warnings.extend(reading.warnings)
        return _Judged(order, reading.parsed, reading.verdict, reading.probabilities, generation, warnings, cached)

    async def _generate(
        self, prompt: EnginePrompt, sampling: Sampling, use_cache: bool
    ) -> tuple[Generation, bool, str | None]:
        """One engine call per order, in every mode: the label's log-probabilities come with the generation.

        vLLM cannot return them for the first position alone, but asked for by token id they cost 5% of
        the demo judge's pairs per second, against 23% for a one-token probe before the generation
        (benchmarks/label_logprobs.py). vLLM's beam search returns none. The generation may come from
        the cache, or be shared with an identical one in flight (cache/generations.py).
        """
        note = None
        if sampling.preset == "beam":
            note = "probabilities are not available with the beam preset"
        else:
            sampling = self._labels.ask(sampling)

        def produce() -> Awaitable[Generation]:
            return self.engine.generate(prompt, sampling, uuid.uuid4().hex)

        generation, cached = await self.generations.generate(prompt, sampling, produce, use_cache=use_cache)
        return generation, cached, note

    def _result(
        self,
        request: CompareRequest,
        options: ResolvedOptions,
        judged: list[_Judged],
        index: int | None,
        started: float,
    ) -> CompareResult:
        original = judged[0]
        consistent: bool | None = None
        orders: list[OrderResult] | None = None
        if options.swap:
            orders = [
                order_result(j.order, j.verdict, j.generation.text, j.probabilities, j.generation.finish_reason)
                for j in judged
            ]
            both = both_orders(orders)
            verdict, consistent, probs = both.verdict, both.consistent, both.probabilities
        else:
            verdict, probs = original.verdict, original.probabilities
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
                prompt_tokens=total_tokens(j.generation.prompt_tokens for j in judged),
                completion_tokens=total_tokens(j.generation.completion_tokens for j in judged),
            ),
            cached=all(j.cached for j in judged),
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            warnings=merged_warnings(j.warnings for j in judged),
        )


def _size(request: CompareRequest) -> int:
    return len(request.instruction) + len(request.input) + len(request.response1) + len(request.response2)


async def _off_loop_if_large(size: int, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run CPU-heavy work on long texts (screening, tokenizing) in a thread, so /healthz never stalls."""
    if size < _LARGE_TEXT_CHARS:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)


def check_field_lengths(request: CompareRequest, limit: int) -> None:
    """Refuse, before any work, a field longer than the server's limit (422, naming the field)."""
    for name in ("instruction", "input", "response1", "response2"):
        length = len(getattr(request, name))
        if length > limit:
            raise ServiceError(
                f"{name} has {length} characters; this server takes at most {limit} per field",
                code="invalid_request",
                details=[{"loc": [name], "msg": f"at most {limit} characters", "type": "string_too_long"}],
            )
