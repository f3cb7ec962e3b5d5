"""The canary: a small labelled set judged again and again, to catch a deployment whose verdicts changed.

A canary file is a test set in PandaLM's format (testset-v1.json, as `pandalm eval` reads it), each item
optionally with the verdict recorded for it (`pandalm_result`: 1, 2, or 0 / `Tie`, as in PandaLM's published
outputs). The bundled one (`builtin`, data/canary.json) is 30 items of PandaLM's test set with PandaLM-7B's
recorded verdicts: a faithful PandaLM-7B deployment changes none of them. The service's canary
(pandalm_serve.quality.canary) and `pandalm eval --canary` score a run with `score` here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from .evaluation import metrics
from .models import CompareRequest, CompareResult, JudgeOptions
from .testset import TestItem, load_testset, pandalm_label, result_label

BUILTIN = "builtin"
# The field of a canary item holding its recorded verdict, as PandaLM's published outputs name it.
RECORDED_FIELD = "pandalm_result"
Baseline = Literal["recorded", "first_run", "none"]


@dataclass(frozen=True, slots=True)
class CanaryItem:
    item: TestItem
    recorded: int | None  # the verdict recorded with the set (0 tie, 1, 2), if any

    def request(self, options: JudgeOptions | None = None) -> CompareRequest:
        """The item as a compare request that bypasses the verdict cache (a cached verdict proves nothing)."""
        fields = (options or JudgeOptions()).model_dump(exclude_none=True)
        return CompareRequest(**self.item.request(), options=JudgeOptions.model_validate({**fields, "cache": False}))


def builtin_path() -> Path:
    """The bundled canary file, installed with the client package."""
    return Path(str(resources.files("pandalm_client") / "data" / "canary.json"))


def load_canary(source: str | Path) -> list[CanaryItem]:
    """The canary `builtin`, or the file at `source`; a malformed file is a ValueError saying what is wrong."""
    path = builtin_path() if str(source) == BUILTIN else Path(source)
    items = load_testset(path)
    if not items:
        raise ValueError(f"{path}: the canary has no items")
    raw = json.loads(path.read_text())
    recorded: list[int | None] = []
    for position, entry in enumerate(raw):
        try:
            recorded.append(pandalm_label(entry[RECORDED_FIELD]) if RECORDED_FIELD in entry else None)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"item {position} (from 0): {RECORDED_FIELD} is not 1, 2 or 0 ({exc})") from exc
    return [CanaryItem(item, label) for item, label in zip(items, recorded, strict=True)]


class CanaryReport(BaseModel):
    """One run of the canary: agreement with the labels, and verdicts changed against the baseline."""

    items: int = Field(description="Items judged.")
    statuses: dict[str, int] = Field(description="Items by status: ok, unparsed, error.")
    accuracy: float = Field(description="Agreement with the human labels; an item without a verdict is wrong.")
    macro_f1: float
    kappa: float | None = Field(description="Cohen's kappa; null where undefined (one label only).")
    baseline: Baseline = Field(
        description="What verdicts are compared with: `recorded` with the set, the process's `first_run`, or "
        "`none` (nothing to compare with)."
    )
    baseline_agreement: dict[str, float | None] | None = Field(
        description="Accuracy, macro F1 and kappa of the baseline's verdicts, null without a baseline."
    )
    compared: int = Field(description="Items with a baseline verdict.")
    changed: int = Field(description="Of those, items whose verdict differs (a missing verdict differs).")
    changed_ratio: float | None = Field(description="changed / compared; null when nothing was compared.")
    changed_ids: list[int] = Field(description="The test set's `idx` of each changed item.")


def recorded_labels(items: Sequence[CanaryItem]) -> list[int | None] | None:
    """The verdicts recorded with the set, or None when no item has one."""
    labels = [c.recorded for c in items]
    return labels if any(label is not None for label in labels) else None


def score(
    items: Sequence[CanaryItem],
    results: Sequence[CompareResult],
    first_run: Sequence[int | None] | None = None,
) -> CanaryReport:
    """Score a run's results (one per item, in order) against the labels and the baseline: the recorded
    verdicts when the set has them, else `first_run`'s labels when given."""
    if len(items) != len(results):
        raise ValueError(f"{len(results)} results for {len(items)} canary items")
    labels = [result_label(r) for r in results]
    figures = metrics([(c.item.gold, label) for c, label in zip(items, labels, strict=True)])
    recorded = recorded_labels(items)
    kind: Baseline = "recorded" if recorded is not None else "first_run" if first_run is not None else "none"
    baseline = recorded if recorded is not None else first_run
    changed_ids: list[int] = []
    compared = 0
    baseline_agreement = None
    if baseline is not None:
        pairs = [(c, b, label) for c, b, label in zip(items, baseline, labels, strict=True) if b is not None]
        compared = len(pairs)
        changed_ids = [c.item.idx for c, b, label in pairs if label != b]
        baseline_agreement = metrics([(c.item.gold, b) for c, b, _ in pairs])
    return CanaryReport(
        items=len(items),
        statuses=dict(Counter(r.status for r in results)),
        accuracy=figures["accuracy"] or 0.0,
        macro_f1=figures["macro_f1"] or 0.0,
        kappa=figures["kappa"],
        baseline=kind,
        baseline_agreement=baseline_agreement,
        compared=compared,
        changed=len(changed_ids),
        changed_ratio=len(changed_ids) / compared if compared else None,
        changed_ids=changed_ids,
    )
