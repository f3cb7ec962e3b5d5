"""Grading one response on a family's absolute scale (`POST /grade`): prompt, engine, score. The same steps as a
pair's (judge/pipeline.py) without orders: one prompt, one generation, one reading by the family's parser."""

from __future__ import annotations

import dataclasses

from pandalm_client.models import GradeRequest, GradeResult, ResultWarning, Usage

from ..engines.base import EnginePrompt, Generation, Sampling
from ..families.base import GradeInput
from .options import ResolvedOptions
from .pipeline import OrderPipeline


def plan_grade(
    pipeline: OrderPipeline, request: GradeRequest, options: ResolvedOptions
) -> tuple[EnginePrompt, Sampling]:
    """The grading prompt and its sampling (the family's labels are its verdicts, not scores: none asked)."""
    sampling = dataclasses.replace(
        pipeline.sampling(options),
        max_new_tokens=options.max_new_tokens,
        stop=(),
        output_regex=pipeline.decoding.grade_regex,
        logprob_token_ids=None,
        top_logprobs=None,
    )
    item = GradeInput(request.instruction, request.input, request.response, request.rubric, request.reference)
    return pipeline.prompts.build_grade(item, max_new_tokens=sampling.max_new_tokens), sampling


def read_grade(
    pipeline: OrderPipeline,
    request: GradeRequest,
    options: ResolvedOptions,
    generation: Generation,
    *,
    model: str,
    judge: str,
    latency_ms: float | None,
) -> GradeResult:
    """The grade a generation gives, read by the family's parser; a score off the scale is `unparsed`."""
    family = pipeline.family
    parsed = family.parse_grade(generation.text)
    warnings = []
    if generation.finish_reason == "length":
        warnings.append(
            ResultWarning(
                code="output_cut_off",
                message=f"the judge's output was cut off at max_new_tokens={options.max_new_tokens}",
            )
        )
    if options.mode == "verdict":
        warnings.append(ResultWarning(code="mode_unavailable", message="grading writes its score last: full mode"))
    scale = family.score_range
    return GradeResult(
        id=request.id,
        status="ok" if parsed.score is not None else "unparsed",
        score=parsed.score,
        scale=list(scale) if scale is not None else None,
        feedback=parsed.feedback,
        raw=generation.text,
        judge=judge,
        model=model,
        template_version=family.template_version,
        finish_reason=generation.finish_reason,
        usage=Usage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens),
        cached=generation.cached,
        latency_ms=latency_ms,
        warnings=warnings,
    )
