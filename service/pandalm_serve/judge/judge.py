"""Judging one pair: request -> PandaLM prompt(s) -> engine -> parsed, reconciled verdict.

Routes call this; it calls the engine (the verdict cache wrapped around the real one, cache/engine.py). The
steps are judge/pipeline.py's, which the batch job runs too; the prompt builder and label set follow the
prompt format the engine declares, once it has started. A pair that cannot be judged raises: the route
answers it as an HTTP error, the batch runner (judge/batch.py) as that item's result.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from pandalm_client.models import CompareRequest, CompareResult, JudgeOptions

from ..engines.base import Engine
from ..errors import ConfigurationError, ServiceError
from ..metrics import Metrics
from ..settings import Settings
from .admission import Admission
from .deadlines import Deadlines
from .labels import LabelSet, TextLabels, token_labels
from .options import ResolvedOptions, resolve_options
from .pipeline import Decoding, OrderPipeline, assemble
from .profile import ModelProfile
from .reading import OrderJudgement
from .tokens import PromptBuilder, PromptEncoder, TextPrompts, TokenPrompts

T = TypeVar("T")
# Texts longer than this are screened and tokenized in a thread (a few milliseconds of work at this size).
_LARGE_TEXT_CHARS = 20_000


class Judge:
    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.profile = ModelProfile()
        self.admission = Admission(settings.max_items_in_flight, settings.max_items_waiting, metrics)
        self.deadlines = Deadlines(settings.item_timeout_s)
        self.pipeline = self._pipeline(TextPrompts(), TextLabels())

    def configure(self, profile: ModelProfile) -> None:
        """Set up prompts and labels once the engine is loaded, in the prompt format it declares.

        In `token_ids`, prompts are PandaLM's exact token ids (the engine's tokenizer), checked against the
        context, and labels are token ids; in `text`, the engine gets text and labels are matched by text.
        """
        self.profile = profile
        if self.engine.prompt_format == "text":
            self.pipeline = self._pipeline(TextPrompts(), TextLabels())
            return
        if self.engine.tokenizer is None:
            raise ConfigurationError("an engine that takes token ids must provide its tokenizer")
        encoder = PromptEncoder(self.engine.tokenizer, self.settings.bos_token)
        context_length = self.engine.context_length or self.settings.max_model_len
        self.pipeline = self._pipeline(TokenPrompts(encoder, context_length), token_labels(encoder))

    def _pipeline(self, prompts: PromptBuilder, labels: LabelSet) -> OrderPipeline:
        s = self.settings
        decoding = Decoding(s.repetition_penalty, s.beam_width, s.ignore_eos, self.profile.output_regex)
        return OrderPipeline(prompts, labels, decoding)

    def options(self, *layers: JudgeOptions | None) -> ResolvedOptions:
        return resolve_options(self.settings, self.engine.presets, *layers)

    def accept(self, batch_options: JudgeOptions | None = None) -> None:
        """Refuse, before any work, a request this judge cannot take: an invalid batch-level option (422, not
        every item's error) or a full queue (429)."""
        if batch_options is not None:
            self.options(batch_options)
        self.admission.check_room()

    async def compare(
        self,
        request: CompareRequest,
        batch_options: JudgeOptions | None = None,
        index: int | None = None,
        client: str = "",
        started: float | None = None,
    ) -> CompareResult:
        """Judge one pair, in one order or both; raise `ServiceError` when it cannot be judged.

        `client` names the caller for fair admission; `started` is when the pair arrived, if before this
        call (`time.perf_counter()`). Every pair, judged or not, is counted here, once.
        """
        started = started if started is not None else time.perf_counter()
        try:
            check_field_lengths(request, self.settings.max_field_chars)
            options = self.options(batch_options, request.options)
            async with self.deadlines.scope() as deadline, self.admission.slot(client, started):
                self.deadlines.start(deadline)
                judged = await self._orders(request, options)
        except TimeoutError:
            self.metrics.observe_error(self._deadline_error().code, _elapsed(started))
            raise self._deadline_error() from None
        except ServiceError as exc:
            self.metrics.observe_error(exc.code, _elapsed(started))
            raise
        except Exception:  # a bug: counted here, logged and answered once by whoever catches it
            self.metrics.observe_error("internal_error", _elapsed(started))
            raise
        latency_ms = round(_elapsed(started) * 1000, 3)
        result = assemble(request.id, index, options, judged, self.engine.model_name, latency_ms)
        self.metrics.observe_result(result, [j.generation for j in judged])
        return result

    def _deadline_error(self) -> ServiceError:
        if self.deadlines.stopping:
            return ServiceError("the service stopped before this pair was judged; retry it", code="shutting_down")
        return ServiceError(
            f"the pair was not judged within {self.settings.item_timeout_s:g} s (item_timeout_s)",
            code="deadline_exceeded",
        )

    async def _orders(self, request: CompareRequest, options: ResolvedOptions) -> list[OrderJudgement]:
        """Plan the pair's orders, then generate and read them concurrently (a TaskGroup cancels the other order
        when one fails)."""
        planned = await _off_loop_if_large(_size(request), self.pipeline.plan, request, options)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self.engine.generate(p.prompt, p.sampling, uuid.uuid4().hex)) for p in planned
                ]
        except ExceptionGroup as group_error:
            # The order that failed first says why the pair cannot be judged; raise it as itself.
            raise group_error.exceptions[0] from None
        return [
            self.pipeline.read(options, p.order, p.warnings, task.result())
            for p, task in zip(planned, tasks, strict=True)
        ]


def _elapsed(started: float) -> float:
    return time.perf_counter() - started


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
