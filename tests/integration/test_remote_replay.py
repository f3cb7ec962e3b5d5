"""The remote engine against PandaLM-7B's own recorded outputs reproduces its agreement with the humans."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pandalm_serve.tools.evaluate import evaluate_predictions, evaluate_service
from pandalm_serve.tools.testset import VERDICT_LABELS, load_testset, pandalm_label

pytestmark = pytest.mark.integration


def test_service_reproduces_pandalm_agreement_exactly(remote_service: str, pandalm_data_dir: Path) -> None:
    outputs_path = pandalm_data_dir / "pandalm-7b-outputs-sample.json"
    recorded = {o["idx"]: o for o in json.loads(outputs_path.read_text())}
    items = [i for i in load_testset(pandalm_data_dir / "testset-v1.json") if i.idx in recorded]
    assert len(items) == 59

    served, results = evaluate_service(items, remote_service, batch_size=25)
    published = evaluate_predictions(items, outputs_path)

    assert served.missing == 0
    assert served.report() == published.report()
    for result in results:
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
