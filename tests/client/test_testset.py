"""The agreement metric matches PandaLM's own `compute_metrics.py`, restated here as the oracle."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from pandalm_client.testset import Agreement, as_text, load_labelled_pairs, load_testset, majority_vote, pandalm_label


def reference_metrics(ground_truths: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """PandaLM's data/compute_metrics.py, restated (predictions aligned with items)."""

    def vote(*votes: int) -> int:
        count: dict[int, int] = defaultdict(int)
        for v in votes:
            count[v] += 1
        return max(count, key=count.get)  # type: ignore[arg-type]

    cm: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for gt, mo in zip(ground_truths, outputs, strict=True):
        prediction = mo["pandalm_result"]
        prediction = 0 if prediction in ("Tie", "tie") else int(prediction)
        cm[vote(gt["annotator1"], gt["annotator2"], gt["annotator3"])][prediction] += 1
    classes = [0, 1, 2]
    accuracy = sum(cm[i][i] for i in classes) / sum(sum(cm[i].values()) for i in classes)
    rows = []
    for c in classes:
        tp = cm[c][c]
        fp = sum(cm[x][c] for x in classes) - tp
        fn = sum(cm[c][x] for x in classes) - tp
        p = tp / (tp + fp) if tp + fp else 0
        r = tp / (tp + fn) if tp + fn else 0
        rows.append((p, r, 2 * p * r / (p + r) if p + r else 0))
    return accuracy, [sum(row[i] for row in rows) / 3 for i in range(3)]


def test_agreement_matches_the_reference_on_the_sample(pandalm_data_dir: Path) -> None:
    raw_items = {i["idx"]: i for i in json.loads((pandalm_data_dir / "testset-v1.json").read_text())}
    outputs = json.loads((pandalm_data_dir / "pandalm-7b-outputs-sample.json").read_text())
    ground_truths = [raw_items[o["idx"]] for o in outputs]
    accuracy, macro = reference_metrics(ground_truths, outputs)

    items = {i.idx: i for i in load_testset(pandalm_data_dir / "testset-v1.json")}
    agreement = Agreement()
    for o in outputs:
        agreement.add(items[o["idx"]].gold, pandalm_label(o["pandalm_result"]))
    assert agreement.accuracy == pytest.approx(accuracy)
    assert list(agreement.macro()) == pytest.approx(macro)
    assert 0 < agreement.accuracy < 1


def test_missing_predictions_count_as_wrong() -> None:
    agreement = Agreement()
    agreement.add(1, 1)
    agreement.add(2, None)
    assert agreement.accuracy == 0.5
    assert agreement.missing == 1
    assert agreement.per_label(2) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("votes", "gold"), [((1, 1, 0), 1), ((0, 2, 2), 2), ((2, 1, 0), 2), ((0, 1, 2), 0), ((1, 1, 1), 1)]
)
def test_majority_vote_breaks_three_way_splits_like_the_reference(votes: tuple[int, int, int], gold: int) -> None:
    assert majority_vote(*votes) == gold


def test_boolean_responses_are_read_as_text(pandalm_data_dir: Path) -> None:
    items = {i.idx: i for i in load_testset(pandalm_data_dir / "testset-v1.json")}
    assert items[157].response1 == "True"
    assert as_text(False) == "False"
    assert all(isinstance(i.response1, str) and isinstance(i.response2, str) for i in items.values())
    assert len(items) == 999


def test_labelled_pairs_take_verdict_or_number_labels_and_name_the_bad_line() -> None:
    pair = {"instruction": "i", "response1": "a", "response2": "b"}
    items = load_labelled_pairs([(1, {**pair, "label": "response2", "id": 7}), (2, {**pair, "label": 0})])
    assert [(i.key, i.idx, i.gold) for i in items] == [("7", 1, 2), ("2", 2, 0)]
    assert items[0].request()["id"] == "7"
    with pytest.raises(ValueError, match="line 3 has no field 'label'"):
        load_labelled_pairs([(3, pair)])
    with pytest.raises(ValueError, match="line 1: label True is not"):
        load_labelled_pairs([(1, {**pair, "label": True})])
    with pytest.raises(ValueError, match="two lines have the same id"):
        load_labelled_pairs([(1, {**pair, "label": 1, "id": "x"}), (2, {**pair, "label": 1, "id": "x"})])
