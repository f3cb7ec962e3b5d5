"""Judging both orders: mapping the swapped order back to the request's positions, and reconciling the two."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pandalm_client.models import FinishReason, LabelProbabilities, Order, OrderResult, Verdict

_SWAPPED: dict[Verdict, Verdict] = {"response1": "response2", "response2": "response1", "tie": "tie"}


def swap_back(verdict: Verdict | None) -> Verdict | None:
    """A verdict given on the swapped order, in the request's positions."""
    return _SWAPPED[verdict] if verdict is not None else None


def swap_probabilities_back(p: LabelProbabilities | None) -> LabelProbabilities | None:
    return LabelProbabilities(response1=p.response2, response2=p.response1, tie=p.tie) if p is not None else None


def average(a: LabelProbabilities | None, b: LabelProbabilities | None) -> LabelProbabilities | None:
    if a is None or b is None:
        return None
    return LabelProbabilities(
        response1=(a.response1 + b.response1) / 2, response2=(a.response2 + b.response2) / 2, tie=(a.tie + b.tie) / 2
    )


@dataclass(frozen=True, slots=True)
class Reconciled:
    verdict: Verdict | None
    consistent: bool | None  # None: at least one order did not parse


def reconcile(original: Verdict | None, swapped_back: Verdict | None) -> Reconciled:
    """Agreeing orders give their verdict; disagreeing ones a tie, marked inconsistent; unparsed stays unparsed."""
    if original is None or swapped_back is None:
        return Reconciled(None, None)
    if original == swapped_back:
        return Reconciled(original, True)
    return Reconciled("tie", False)


def order_result(
    order: Order, verdict: Verdict | None, raw: str, probabilities: LabelProbabilities | None, finish: FinishReason
) -> OrderResult:
    """One order's part of a swapped result, its verdict already in the request's positions."""
    status = "ok" if verdict is not None else "unparsed"
    return OrderResult(
        order=order, verdict=verdict, status=status, raw=raw, probabilities=probabilities, finish_reason=finish
    )


@dataclass(frozen=True, slots=True)
class BothOrders:
    verdict: Verdict | None
    consistent: bool | None
    probabilities: LabelProbabilities | None


def both_orders(orders: Sequence[OrderResult]) -> BothOrders:
    """The result of a pair judged in both orders (original first), reconciled and averaged."""
    original, swapped = orders
    reconciled = reconcile(original.verdict, swapped.verdict)
    probabilities = average(original.probabilities, swapped.probabilities)
    return BothOrders(reconciled.verdict, reconciled.consistent, probabilities)
