"""One order's generation read into a judgement: the service's judge and the batch job both read it here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pandalm_client.models import FinishReason, LabelProbabilities, Order, ResultWarning, Verdict

from .labels import LabelRead, verdict_from_label
from .parse import ParsedOutput, parse_output
from .swap import swap_back, swap_probabilities_back


@dataclass(frozen=True, slots=True)
class OrderReading:
    """What one order's output says, its verdict and probabilities in the request's positions."""

    parsed: ParsedOutput
    verdict: Verdict | None
    probabilities: LabelProbabilities | None
    warnings: list[ResultWarning]  # about this output: to add after the prompt's own


def read_order(
    text: str,
    finish_reason: FinishReason,
    order: Order,
    labels: LabelRead,
    *,
    verdict_mode: bool,
    max_new_tokens: int,
) -> OrderReading:
    """Parse the judge's output (never inventing a verdict), take the label probabilities as read, say what is
    missing or cut off, and put the swapped order back in the request's positions."""
    parsed = parse_output(text)
    verdict = parsed.verdict
    if verdict is None and verdict_mode and finish_reason == "length":
        verdict = verdict_from_label(text)  # `T` cut off at the limit: the first token decides
    warnings: list[ResultWarning] = []
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
    return OrderReading(parsed, verdict, probabilities, warnings)


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
