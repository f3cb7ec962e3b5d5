"""The remote engine against PandaLM-7B's own recorded outputs reproduces its agreement with the humans."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pandalm_client.testset import VERDICT_LABELS, Agreement, load_testset, pandalm_label

pytestmark = pytest.mark.integration


def test_pandalm_eval_reproduces_pandalm_7b_agreement_exactly(
    remote_service: str, pandalm_data_dir: Path, tmp_path: Path
) -> None:
    outputs_path = pandalm_data_dir / "pandalm-7b-outputs-sample.json"
    recorded = {o["idx"]: o for o in json.loads(outputs_path.read_text())}
    testset = [t for t in json.loads((pandalm_data_dir / "testset-v1.json").read_text()) if t["idx"] in recorded]
    assert len(testset) == 59
    sample = tmp_path / "testset-sample.json"
    sample.write_text(json.dumps(testset))
    published = Agreement()
    for item in load_testset(sample):
        published.add(item.gold, pandalm_label(recorded[item.idx]["pandalm_result"]))

    run = subprocess.run(
        [sys.executable, "-m", "pandalm_client.cli", "--url", remote_service, "eval", str(sample), "--json",
         "--results", str(tmp_path / "results.jsonl")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    served = json.loads(run.stdout)
    intervals = served.pop("intervals")  # bootstrap intervals around the figures (tests/client/test_evaluation.py)
    assert served == published.report()
    for metric in ("accuracy", "macro_f1", "kappa"):
        assert intervals[metric]["lower"] <= served[metric] <= intervals[metric]["upper"], metric
    assert served["n"] == 59 and served["without_verdict"] == 0
    for line in (tmp_path / "results.jsonl").read_text().splitlines():
        result = json.loads(line)
        output = recorded[result["idx"]]
        assert result["status"] == "ok"
        assert VERDICT_LABELS[result["verdict"]] == pandalm_label(output["pandalm_result"])
        assert result["reason"] == output["pandalm_reason"]
        assert result["reference"] == output["pandalm_reference"].strip()


def test_a_prompt_the_model_never_saw_is_an_error_not_a_verdict(remote_service: str) -> None:
    pair = {"instruction": "Not in the test set.", "response1": "a", "response2": "b"}
    response = httpx.post(f"{remote_service}/compare", json=pair, timeout=60)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "remote_rejected"


def test_remote_info(remote_service: str) -> None:
    info = httpx.get(f"{remote_service}/info").json()
    assert info["engine"] == "remote"
    assert info["model"] == "pandalm-7b-replay"
    assert info["demo"] is False
