"""Results and canary items built by hand, for the quality tests."""

from __future__ import annotations

from collections.abc import Sequence

from pandalm_client.canary import CanaryItem
from pandalm_client.models import CompareResult, LabelProbabilities, OrderResult, Verdict
from pandalm_client.testset import TestItem


def one_order(verdict: Verdict | None, probability: float | None = None) -> CompareResult:
    """A pair judged in one order: `verdict`, or unparsed when None."""
    probabilities = None
    if probability is not None and verdict is not None:
        rest = (1 - probability) / 2
        probabilities = LabelProbabilities(**{"response1": rest, "response2": rest, "tie": rest, verdict: probability})
    if verdict is None:
        return CompareResult(status="unparsed", raw="not PandaLM's format")
    return CompareResult(status="ok", verdict=verdict, probabilities=probabilities)


def both_orders(original: Verdict, swapped: Verdict) -> CompareResult:
    """A pair judged with swap; each order's verdict in the request's positions."""
    orders = [
        OrderResult(order="original", verdict=original, status="ok", raw="", finish_reason="stop"),
        OrderResult(order="swapped", verdict=swapped, status="ok", raw="", finish_reason="stop"),
    ]
    consistent = original == swapped
    return CompareResult(status="ok", verdict=original if consistent else "tie", consistent=consistent, orders=orders)


def canary_items(golds: Sequence[int], recorded: Sequence[int | None] | None = None) -> list[CanaryItem]:
    recorded = recorded or [None] * len(golds)
    return [
        CanaryItem(TestItem(idx, f"instruction {idx}", "", f"one {idx}", f"two {idx}", gold), label)
        for idx, (gold, label) in enumerate(zip(golds, recorded, strict=True))
    ]
