"""Judging one pair, step by step: plan its orders (screen, prompt, sampling), read each order's generation, and
assemble the result. The service's judge and the Ray batch job run these same steps; they differ only in who runs
the engine between `plan` and `read` (judge/judge.py in process, jobs/pairs.py through Ray Data's vLLM stage).
"""

from __future__ import annotations

from dataclasses import dataclass

from pandalm_client.models import (
    CompareRequest,
    CompareResult,
    ErrorBody,
    Order,
    OrderResult,
    ResultWarning,
    Usage,
)

from ..engines.base import EnginePrompt, Generation, Sampling
from ..families.base import Family, PairInput
from ..families.pandalm import PANDALM
from .injection import Screened, screen
from .labels import LabelRead, LabelSet
from .options import ResolvedOptions
from .reading import OrderJudgement, merged_warnings, read_order, total_tokens
from .swap import both_orders, order_result
from .tokens import OrderedPair, PromptBuilder

_ORDERS: tuple[Order, ...] = ("original", "swapped")
_NO_BEAM_PROBABILITIES = "probabilities are not available with the beam preset"
_TEXTS = ("instruction", "input", "response1", "response2")


@dataclass(frozen=True, slots=True)
class Decoding:
    """The server's decoding settings that every order's sampling takes (the options aside)."""

    repetition_penalty: float
    beam_width: int
    ignore_eos: bool = False
    # The model's output constrained to this expression (a demo judge: its family's format), pairwise and graded.
    output_regex: str | None = None
    grade_regex: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """One order ready for the engine: its prompt and sampling, and the warnings about its prompt."""

    order: Order
    prompt: EnginePrompt
    sampling: Sampling
    warnings: list[ResultWarning]


def orders_of(options: ResolvedOptions) -> tuple[Order, ...]:
    """The orders a pair is judged in: both with `swap`, else the request's own."""
    return _ORDERS if options.swap else _ORDERS[:1]


def verdict_mode_of(family: Family, options: ResolvedOptions) -> bool:
    """Whether the pair is judged in `verdict` mode: asked for, and the family writes its label first."""
    return options.mode == "verdict" and family.label_first


@dataclass(frozen=True, slots=True)
class OrderPipeline:
    """A family's judging of one pair, for one engine's prompt format (its prompt builder and label set)."""

    prompts: PromptBuilder
    labels: LabelSet
    decoding: Decoding
    family: Family = PANDALM

    def sampling(self, options: ResolvedOptions) -> Sampling:
        """Every order's sampling. In `verdict` mode the judge stops after its label; the labels' log-probabilities
        come with the generation, in one engine call (benchmarks/label_logprobs.py), except with beam search."""
        verdict_mode = verdict_mode_of(self.family, options)
        sampling = Sampling(
            preset=options.preset,
            max_new_tokens=self.labels.max_length if verdict_mode else options.max_new_tokens,
            repetition_penalty=self.decoding.repetition_penalty,
            beam_width=self.decoding.beam_width,
            stop=("\n",) if verdict_mode else (),
            output_regex=self.decoding.output_regex,
            ignore_eos=self.decoding.ignore_eos,
            cache=options.cache,
        )
        return sampling if options.preset == "beam" else self.labels.ask(sampling)

    def plan(self, request: CompareRequest, options: ResolvedOptions) -> list[PlannedOrder]:
        """Each order's prompt and sampling. Raises `ServiceError` for a pair that cannot be judged (a prompt
        too long for the context)."""
        first = self._screen("response1", request.response1, options)
        second = self._screen("response2", request.response2, options)
        sampling = self.sampling(options)
        planned = []
        for order in orders_of(options):
            names = ("response1", "response2") if order == "original" else ("response2", "response1")
            pair = (first.text, second.text) if order == "original" else (second.text, first.text)
            prompt, fitted = self.prompts.build(
                OrderedPair(request.instruction, request.input, *pair, names, request.reference, request.rubric),
                max_new_tokens=sampling.max_new_tokens,
                truncate=options.truncate,
            )
            # The request's warnings go with the original order, once.
            once = [*first.warnings, *second.warnings, *self._unused(request, options)] if order == "original" else []
            planned.append(PlannedOrder(order, prompt, sampling, [*once, *fitted]))
        return planned

    def _screen(self, name: str, response: str, options: ResolvedOptions) -> Screened:
        """PandaLM's screening for its own section headers; other families' prompts have none to defuse."""
        if self.family.name != PANDALM.name:
            return Screened(response, [])
        return screen(name, response, neutralize=options.neutralize_headers)

    def _unused(self, request: CompareRequest, options: ResolvedOptions) -> list[ResultWarning]:
        """Say what the request asked for that this family cannot do: a field its prompt does not show (found by
        rendering the prompt with and without it), or `verdict` mode where the label is not written first."""
        warnings = []
        texts = {name: getattr(request, name) for name in _TEXTS}
        bare = self.family.pairwise_prompt(PairInput(**texts))
        for name in ("rubric", "reference"):
            if (
                getattr(request, name) is not None
                and self.family.pairwise_prompt(PairInput(**texts, **{name: getattr(request, name)})) == bare
            ):
                message = f"the {self.family.name} judge does not use a {name}: it was not shown to the judge"
                warnings.append(ResultWarning(code="field_unused", message=message))
        if options.mode == "verdict" and not self.family.label_first:
            message = f"the {self.family.name} judge writes its verdict last: judged in full mode"
            warnings.append(ResultWarning(code="mode_unavailable", message=message))
        return warnings

    def read(
        self, options: ResolvedOptions, order: Order, warnings: list[ResultWarning], generation: Generation
    ) -> OrderJudgement:
        """One order's generation read into its judgement; `warnings` are its plan's."""
        if options.preset == "beam":
            labels = LabelRead(None, _NO_BEAM_PROBABILITIES)
        else:
            labels = self.labels.read(generation.first_logprobs)
        return read_order(
            order,
            generation,
            labels,
            warnings,
            verdict_mode=verdict_mode_of(self.family, options),
            max_new_tokens=self.sampling(options).max_new_tokens,
            family=self.family,
        )


def assemble(
    request_id: str | None,
    index: int | None,
    options: ResolvedOptions,
    judged: list[OrderJudgement],
    model: str,
    latency_ms: float | None = None,
    *,
    family: Family = PANDALM,
    judge: str | None = None,
) -> CompareResult:
    """The result of a pair from its orders' judgements (original first): reconciled and averaged with swap."""
    original = judged[0]
    consistent: bool | None = None
    orders: list[OrderResult] | None = None
    if options.swap:
        orders = [
            order_result(j.order, j.verdict, j.generation.text, j.probabilities, j.generation.finish_reason)
            for j in judged
        ]
        both = both_orders(orders)
        verdict, consistent, probabilities = both.verdict, both.consistent, both.probabilities
    else:
        verdict, probabilities = original.verdict, original.probabilities
    return CompareResult(
        id=request_id,
        index=index,
        verdict=verdict,
        status="ok" if verdict is not None else "unparsed",
        reason=original.parsed.reason,
        reference=original.parsed.reference,
        raw=original.generation.text,
        model=model,
        template_version=family.template_version,
        preset=options.preset,
        mode="verdict" if verdict_mode_of(family, options) else "full",
        judge=judge,
        scores=list(original.parsed.scores) if original.parsed.scores is not None else None,
        probabilities=probabilities,
        consistent=consistent,
        orders=orders,
        finish_reason=original.generation.finish_reason,
        usage=Usage(
            prompt_tokens=total_tokens(j.generation.prompt_tokens for j in judged),
            completion_tokens=total_tokens(j.generation.completion_tokens for j in judged),
        ),
        cached=all(j.generation.cached for j in judged),
        latency_ms=latency_ms,
        warnings=merged_warnings(j.warnings for j in judged),
    )


def error_result(
    request_id: str | None,
    index: int | None,
    error: ErrorBody,
    model: str,
    latency_ms: float | None = None,
    *,
    family: Family = PANDALM,
    judge: str | None = None,
) -> CompareResult:
    """The result of a pair that was not judged."""
    return CompareResult(
        id=request_id,
        index=index,
        status="error",
        error=error,
        model=model,
        template_version=family.template_version,
        latency_ms=latency_ms,
        judge=judge,
    )
