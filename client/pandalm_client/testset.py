"""PandaLM's human-labelled test set and the agreement figures its paper reports.

The metrics follow the reference's `data/compute_metrics.py`: the gold label is the annotators'
majority vote (ties between votes go to the first annotator listed), and precision, recall and F1
are macro-averaged over the three labels. Cohen's kappa is added: agreement beyond chance.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .models import CompareResult, Verdict

# Labels as the test set writes them: 1 and 2 for the better response, 0 for a tie.
LABELS = (0, 1, 2)
VERDICT_LABELS: dict[Verdict, int] = {"response1": 1, "response2": 2, "tie": 0}
LABEL_VERDICTS: dict[int, Verdict] = {label: verdict for verdict, label in VERDICT_LABELS.items()}


@dataclass(frozen=True, slots=True)
class TestItem:
    idx: int  # testset-v1's `idx`; a labelled pairs file's line number
    instruction: str
    input: str
    response1: str
    response2: str
    gold: int
    name: str | None = None  # a labelled pair's own `id`

    @property
    def key(self) -> str:
        """The item's id in requests and results: its own `id`, else its `idx`."""
        return self.name if self.name is not None else str(self.idx)

    def request(self) -> dict[str, str]:
        return {
            "id": self.key,
            "instruction": self.instruction,
            "input": self.input,
            "response1": self.response1,
            "response2": self.response2,
        }


def as_text(value: Any) -> str:
    """A few published responses are JSON booleans (`true`): judge them as the text `True`."""
    return value if isinstance(value, str) else str(value)


def majority_vote(*votes: int) -> int:
    counts = Counter(votes)  # insertion-ordered, so a three-way split goes to the first annotator
    return max(counts, key=lambda vote: counts[vote])


def load_testset(path: Path) -> list[TestItem]:
    """The items of a file shaped like testset-v1.json; a malformed item is a ValueError naming its position."""
    items = []
    for position, raw in enumerate(json.loads(path.read_text())):
        try:
            items.append(
                TestItem(
                    idx=int(raw["idx"]),
                    instruction=as_text(raw["instruction"]),
                    input=as_text(raw.get("input", "")),
                    response1=as_text(raw["response1"]),
                    response2=as_text(raw["response2"]),
                    gold=majority_vote(raw["annotator1"], raw["annotator2"], raw["annotator3"]),
                )
            )
        except KeyError as exc:
            raise ValueError(f"item {position} (from 0) has no field {exc.args[0]!r}") from exc
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"item {position} (from 0) is malformed: {exc}") from exc
    return items


def gold_label(value: Any) -> int:
    """A labelled pair's `label`: `response1`, `response2` or `tie` (or the test set's 1, 2, 0)."""
    if isinstance(value, str) and value in VERDICT_LABELS:
        return VERDICT_LABELS[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in LABELS:
        return value
    raise ValueError(f"label {value!r} is not response1, response2 or tie (nor 1, 2 or 0)")


def load_labelled_pairs(rows: list[tuple[int, dict[str, Any]]]) -> list[TestItem]:
    """A team's own labelled pairs, (line number, object) each: `{"id"?, "instruction", "input"?, "response1",
    "response2", "label"}`; a malformed one is a ValueError naming its line."""
    items = []
    for number, raw in rows:
        try:
            raw_id = raw.get("id")
            items.append(
                TestItem(
                    idx=number,
                    name=None if raw_id is None else str(raw_id),
                    instruction=as_text(raw["instruction"]),
                    input=as_text(raw.get("input", "")),
                    response1=as_text(raw["response1"]),
                    response2=as_text(raw["response2"]),
                    gold=gold_label(raw["label"]),
                )
            )
        except KeyError as exc:
            raise ValueError(f"line {number} has no field {exc.args[0]!r}") from exc
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
    if len({item.key for item in items}) != len(items):
        raise ValueError("two lines have the same id")
    return items


def pandalm_label(result: Any) -> int:
    """A label of PandaLM's published outputs (1, 2, 0, or the text `Tie`) as 0, 1 or 2."""
    if isinstance(result, str) and result.strip().lower() == "tie":
        return 0
    label = int(result)
    if label not in LABELS:
        raise ValueError(f"unknown PandaLM label {result!r}")
    return label


def result_label(result: CompareResult | None) -> int | None:
    """The test set's label for a result's verdict; None when there is no verdict (counted wrong)."""
    verdict = result.verdict if result is not None and result.status == "ok" else None
    return VERDICT_LABELS[verdict] if verdict else None


@dataclass
class Agreement:
    """Agreement of predictions with the gold labels; a missing prediction (None) is always wrong."""

    confusion: dict[int, Counter[int | None]] = field(default_factory=lambda: {g: Counter() for g in LABELS})

    def add(self, gold: int, predicted: int | None) -> None:
        self.confusion[gold][predicted] += 1

    @property
    def total(self) -> int:
        return sum(sum(row.values()) for row in self.confusion.values())

    @property
    def missing(self) -> int:
        return sum(row[None] for row in self.confusion.values())

    @property
    def accuracy(self) -> float:
        return sum(self.confusion[g][g] for g in LABELS) / self.total if self.total else 0.0

    def per_label(self, label: int) -> tuple[float, float, float]:
        tp = self.confusion[label][label]
        predicted = sum(self.confusion[g][label] for g in LABELS)
        actual = sum(self.confusion[label].values())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1

    def macro(self) -> tuple[float, float, float]:
        rows = [self.per_label(label) for label in LABELS]
        return tuple(sum(r[i] for r in rows) / len(LABELS) for i in range(3))  # type: ignore[return-value]

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa of the judge against the gold labels; an item without a verdict disagrees.

        None when undefined: no items, or chance agreement of 1 (judge and gold both give one label only),
        where kappa is 0 / 0 rather than "no agreement beyond chance".
        """
        total = self.total
        if not total:
            return None
        expected = sum(
            (sum(self.confusion[label].values()) / total) * (sum(self.confusion[g][label] for g in LABELS) / total)
            for label in LABELS
        )
        return (self.accuracy - expected) / (1 - expected) if expected < 1 else None

    def report(self) -> dict[str, Any]:
        """Scores as fractions between 0 and 1, and the confusion matrix with its label order."""
        precision, recall, f1 = self.macro()
        columns: list[int | None] = [*LABELS, None]
        return {
            "n": self.total,
            "without_verdict": self.missing,
            "accuracy": round(self.accuracy, 4),
            "macro_precision": round(precision, 4),
            "macro_recall": round(recall, 4),
            "macro_f1": round(f1, 4),
            "kappa": None if (kappa := self.kappa) is None else round(kappa, 4),
            "confusion": {
                "rows": "human majority vote: 0 (tie), 1, 2",
                "columns": "judge's verdict: 0 (tie), 1, 2, none (unparsed or failed)",
                "labels": ["0", "1", "2", "none"],
                "counts": [[self.confusion[g][p] for p in columns] for g in LABELS],
            },
        }
