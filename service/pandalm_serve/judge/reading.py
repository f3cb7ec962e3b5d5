"""One order's generation read into its judgement (`OrderJudgement`, the one type of it): the service's judge and
the batch job both read it here, through judge/pipeline.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from pandalm_client.models import LabelProbabilities, Order, ResultWarning, Verdict

from ..engines.base import Generation
from ..families.base import Family, ParsedVerdict
from ..families.pandalm import PANDALM
from .labels import LabelRead, verdict_from_label
from .swap import swap_back, swap_probabilities_back


@dataclass(frozen=True, slots=True)
class OrderJudgement:
    """One order's judgement: its generation, what it says, its verdict and probabilities in the request's
    positions, and every warning about it (its prompt's first)."""

    order: Order
    generation: Generation
    parsed: ParsedVerdict
    verdict: Verdict | None
    probabilities: LabelProbabilities | None
    warnings: list[ResultWarning]


def read_order(
    order: Order,
    generation: Generation,
    labels: LabelRead,
    prompt_warnings: list[ResultWarning],
    *,
    verdict_mode: bool,
    max_new_tokens: int,
    family: Family = PANDALM,
) -> OrderJudgement:
    """Parse the judge's output with its family's parser (never inventing a verdict), take the label
    probabilities as read, say what is missing or cut off, and put the swapped order back in the request's
    positions."""
    text, finish_reason = generation.text, generation.finish_reason
    parsed = family.parse_pairwise(text)
    verdict = parsed.verdict
    if verdict is None and verdict_mode and finish_reason == "length" and family.label_first:
        verdict = verdict_from_label(text)  # `T` cut off at the limit: the first token decides
    warnings = list(prompt_warnings)
    if labels.note:
        warnings.append(ResultWarning(code="no_probabilities", message=labels.note))
    if finish_reason == "length" and not verdict_mode:
        warnings.append(
            ResultWarning(
                code="output_cut_off",
                message=f"the judge's output was cut off at max_new_tokens={max_new_tokens}: "
                "its reason or reference may be incomplete",
            )
        )
    probabilities = labels.probabilities
    if order == "swapped":
        verdict, probabilities = swap_back(verdict), swap_probabilities_back(probabilities)
        if parsed.scores is not None:
            parsed = dataclasses.replace(parsed, scores=(parsed.scores[1], parsed.scores[0]))
    return OrderJudgement(order, generation, parsed, verdict, probabilities, warnings)


def total_tokens(values: Iterable[int | None]) -> int | None:
    """The orders' token counts summed, or None when no order knows its count."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def merged_warnings(per_order: Iterable[list[ResultWarning]]) -> list[ResultWarning]:
    """The orders' warnings in one list, each once, in order."""
    warnings: list[ResultWarning] = []
    for order_warnings in per_order:
        warnings.extend(w for w in order_warnings if w not in warnings)
    return warnings
