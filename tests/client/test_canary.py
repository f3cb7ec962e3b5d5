"""The canary's files: the bundled one, another in PandaLM's test-set format, and scoring a run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pandalm_client.canary import builtin_path, load_canary, score
from pandalm_client.models import CompareResult, JudgeOptions
from pandalm_client.testset import LABEL_VERDICTS, load_testset, pandalm_label

ROOT = Path(__file__).resolve().parents[2]


def test_the_builtin_canary_is_pandalms_items_with_pandalm_7bs_recorded_verdicts(pandalm_data_dir: Path) -> None:
    items = load_canary("builtin")
    assert len(items) == 30 and all(c.recorded is not None for c in items)
    testset = {item.idx: item for item in load_testset(pandalm_data_dir / "testset-v1.json")}
    outputs = {o["idx"]: o for o in json.loads((pandalm_data_dir / "pandalm-7b-outputs-sample.json").read_text())}
    for canary in items:
        assert canary.item == testset[canary.item.idx]
        assert canary.recorded == pandalm_label(outputs[canary.item.idx]["pandalm_result"])


def test_a_testset_file_without_recorded_verdicts_loads_with_none(tmp_path: Path, pandalm_data_dir: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(json.loads((pandalm_data_dir / "testset-v1.json").read_text())[:3]))
    items = load_canary(path)
    assert [c.item.idx for c in items] == [0, 1, 2] and all(c.recorded is None for c in items)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "no items"),
        ('[{"idx": 1, "instruction": "i", "response1": "a", "response2": "b"}]', "annotator1"),
        (
            '[{"idx": 1, "instruction": "i", "response1": "a", "response2": "b", "annotator1": 1, "annotator2": 1, '
            '"annotator3": 1, "pandalm_result": 7}]',
            "pandalm_result is not 1, 2 or 0",
        ),
    ],
)
def test_a_malformed_canary_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_canary(path)


def test_a_canary_request_never_uses_the_cache_and_keeps_the_other_options() -> None:
    (first, *_) = load_canary("builtin")
    request = first.request(JudgeOptions(mode="verdict", cache=True))
    assert request.options == JudgeOptions(mode="verdict", cache=False)
    assert request.id == str(first.item.idx)


def test_scoring_needs_one_result_per_item() -> None:
    with pytest.raises(ValueError, match="1 results for 30 canary items"):
        score(load_canary("builtin"), [CompareResult(status="unparsed")])


def test_the_recorded_verdicts_score_as_pandalm_7b_did() -> None:
    items = load_canary("builtin")
    results = [CompareResult(status="ok", verdict=LABEL_VERDICTS[c.recorded or 0]) for c in items]
    report = score(items, results)
    assert report.changed == 0 and report.baseline == "recorded"
    assert report.accuracy == report.baseline_agreement["accuracy"] == 21 / 30  # type: ignore[index]


def test_the_committed_canary_is_what_the_script_builds() -> None:
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "canary_set.py"), "--check"], capture_output=True)
    assert check.returncode == 0, check.stderr


def test_check_fails_on_an_edited_canary(tmp_path: Path) -> None:
    for name in ("canary_set.py", "generated.py"):
        (tmp_path / "scripts").mkdir(exist_ok=True)
        shutil.copy(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    shutil.copytree(ROOT / "data" / "pandalm", tmp_path / "data" / "pandalm")
    target = tmp_path / "client" / "pandalm_client" / "data" / "canary.json"
    target.parent.mkdir(parents=True)
    target.write_text(builtin_path().read_text().replace('"pandalm_result": 2', '"pandalm_result": 1', 1))
    check = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "canary_set.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 1 and "canary.json is stale" in check.stderr
