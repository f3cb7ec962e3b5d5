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

from pandalm_client.models import CompareRequest, CompareResult, GradeRequest, GradeResult, JudgeOptions

from ..engines.base import Engine
from ..errors import ConfigurationError, InvalidOptionError, ServiceError
from ..families.base import Family
from ..families.pandalm import PANDALM
from ..metrics import Metrics
from ..settings import Settings
from .admission import Admission
from .deadlines import Deadlines
from .grading import plan_grade, read_grade
from .labels import LabelSet, NoLabels, TextLabels, token_labels
from .options import ResolvedOptions, resolve_options
from .pipeline import Decoding, OrderPipeline, assemble
from .profile import ModelProfile
from .reading import OrderJudgement
from .tokens import PromptBuilder, PromptEncoder, TextPrompts, TokenPrompts

T = TypeVar("T")
# Texts longer than this are screened and tokenized in a thread (a few milliseconds of work at this size).
_LARGE_TEXT_CHARS = 20_000


class Judge:
    """One named judge: a family's prompts and parser over one engine, with its own admission and deadlines."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        metrics: Metrics,
        family: Family = PANDALM,
        name: str = PANDALM.name,
        *,
        admission: Admission | None = None,
        deadlines: Deadlines | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.family = family
        self.name = name
        self.profile = ModelProfile()
        self.ready = False  # set by the service once the engine has started and the judge is configured
        # One queue and one set of deadlines for every judge of a service (judge/panel.py): the places in flight
        # and the queue's length are the service's.
        self.admission = admission or Admission(settings.max_items_in_flight, settings.max_items_waiting, metrics)
        self.deadlines = deadlines or Deadlines(settings.item_timeout_s)
        self.pipeline = self._pipeline(TextPrompts(family), self._text_labels())

    def configure(self, profile: ModelProfile) -> None:
        """Set up prompts and labels once the engine is loaded, in the prompt format it declares.

        In `token_ids`, prompts are the family's exact token ids (the engine's tokenizer), checked against the
        context, and labels are token ids; in `text`, the engine gets text and labels are matched by text.
        """
        self.profile = profile
        if profile.family is not None and profile.family != self.family.name:
            raise ConfigurationError(
                f"judge {self.name!r} is of the {self.family.name} family, but its model is the {profile.family} "
                f"demo judge: use `{self.name}={self.family.name}:demo`"
            )
        if self.engine.prompt_format == "text":
            if self.family.bos == "chat":
                raise ConfigurationError(
                    f"judge {self.name!r} ({self.family.name}) needs its model's chat template, so its prompts must "
                    "be token ids: install pandalm-serve[remote] and let the tokenizer load (--tokenizer)"
                )
            self.pipeline = self._pipeline(TextPrompts(self.family), self._text_labels())
            return
        if self.engine.tokenizer is None:
            raise ConfigurationError("an engine that takes token ids must provide its tokenizer")
        encoder = PromptEncoder(self.engine.tokenizer, self.settings.bos_token, self.family.bos)
        context_length = self.engine.context_length or self.settings.max_model_len
        labels: LabelSet = token_labels(encoder) if self.family.label_first else NoLabels()
        self.pipeline = self._pipeline(TokenPrompts(encoder, context_length, self.family), labels)

    def _text_labels(self) -> LabelSet:
        return TextLabels() if self.family.label_first else NoLabels()

    def _pipeline(self, prompts: PromptBuilder, labels: LabelSet) -> OrderPipeline:
        s, p = self.settings, self.profile
        decoding = Decoding(s.repetition_penalty, s.beam_width, s.ignore_eos, p.output_regex, p.grade_regex)
        return OrderPipeline(prompts, labels, decoding, self.family)

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
            self.metrics.observe_error(self._deadline_error().code, _elapsed(started), self.name)
            raise self._deadline_error() from None
        except ServiceError as exc:
            self.metrics.observe_error(exc.code, _elapsed(started), self.name)
            raise
        except Exception:  # a bug: counted here, logged and answered once by whoever catches it
            self.metrics.observe_error("internal_error", _elapsed(started), self.name)
            raise
        latency_ms = round(_elapsed(started) * 1000, 3)
        model = self.engine.model_name
        result = assemble(request.id, index, options, judged, model, latency_ms, family=self.family, judge=self.name)
        self.metrics.observe_result(result, [j.generation for j in judged], self.name)
        return result

    async def grade(self, request: GradeRequest, client: str = "") -> GradeResult:
        """Grade one response on the family's scale; raise `ServiceError` when it cannot be graded."""
        started = time.perf_counter()
        if "absolute" not in self.family.modes:
            raise InvalidOptionError(
                f"judge {self.name!r} ({self.family.name}) does not grade single responses; "
                "choose a judge whose /info `modes` include `absolute`",
                details={"option": "judge", "value": self.name},
            )
        try:
            check_field_lengths(request, self.settings.max_field_chars, _GRADE_FIELDS)
            options = self.options(request.options)
            async with self.deadlines.scope() as deadline, self.admission.slot(client, started):
                self.deadlines.start(deadline)
                prompt, sampling = await _off_loop_if_large(
                    len(request.response) + len(request.rubric), plan_grade, self.pipeline, request, options
                )
                generation = await self.engine.generate(prompt, sampling, uuid.uuid4().hex)
        except TimeoutError:
            self.metrics.observe_error(self._deadline_error().code, _elapsed(started), self.name, grade=True)
            raise self._deadline_error() from None
        except ServiceError as exc:
            self.metrics.observe_error(exc.code, _elapsed(started), self.name, grade=True)
            raise
        latency_ms = round(_elapsed(started) * 1000, 3)
        result = read_grade(
            self.pipeline, request, options, generation, model=self.engine.model_name, judge=self.name,
            latency_ms=latency_ms,
        )  # fmt: skip
        self.metrics.observe_grade(result, generation, self.name)
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


_PAIR_FIELDS = ("instruction", "input", "response1", "response2", "rubric", "reference")
_GRADE_FIELDS = ("instruction", "input", "response", "rubric", "reference")


def check_field_lengths(
    request: CompareRequest | GradeRequest, limit: int, fields: tuple[str, ...] = _PAIR_FIELDS
) -> None:
    """Refuse, before any work, a field longer than the server's limit (422, naming the field)."""
    for name in fields:
        length = len(getattr(request, name) or "")
        if length > limit:
            raise ServiceError(
                f"{name} has {length} characters; this server takes at most {limit} per field",
                code="invalid_request",
                details=[{"loc": [name], "msg": f"at most {limit} characters", "type": "string_too_long"}],
            )
