"""`pandalm eval --canary`: the canary judged on a running service, its exit code for a deployment pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pandalm_client.canary import load_canary
from pandalm_client.models import CompareResult, ErrorBody
from pandalm_client.testset import LABEL_VERDICTS
from tests.client.fake_service import FakeService, Run, prefer_longer

RECORDED = {str(c.item.idx): LABEL_VERDICTS[c.recorded] for c in load_canary("builtin") if c.recorded is not None}


def reproduces_pandalm_7b(item: dict[str, Any], index: int | None) -> dict[str, Any]:
    """A faithful deployment: PandaLM-7B's recorded verdict for every canary item."""
    return CompareResult(id=item["id"], index=index, verdict=RECORDED[item["id"]], status="ok").model_dump(mode="json")


def batch_options(service: FakeService) -> list[dict[str, Any]]:
    return [body["options"] for body in service.bodies if isinstance(body, dict) and "items" in body]


def test_a_faithful_deployment_changes_nothing_and_exits_0(service: FakeService, pandalm: Run) -> None:
    service.judge = reproduces_pandalm_7b
    code, out, _ = pandalm("eval", "--canary", "--cache")
    assert code == 0, out
    assert "changed         0 of 30 (0.00%)" in out and "accuracy        0.7000" in out
    # Every item bypasses the verdict cache, even when the flags ask for it.
    assert batch_options(service) and all(options["cache"] is False for options in batch_options(service))


def test_changed_verdicts_exit_1_and_are_named(service: FakeService, pandalm: Run) -> None:
    service.judge = prefer_longer
    code, out, _ = pandalm("eval", "--canary", "builtin", "--json")
    report = json.loads(out)
    assert code == 1
    assert report["changed"] > 0 and report["changed"] == len(report["changed_ids"])
    assert report["changed_ratio"] == report["changed"] / 30 and report["baseline"] == "recorded"
    assert set(report) >= {"accuracy", "macro_f1", "kappa", "baseline_agreement"}


def test_an_unparsed_verdict_is_a_change(service: FakeService, pandalm: Run) -> None:
    def one_unparsed(item: dict[str, Any], index: int | None) -> dict[str, Any]:
        if index == 0:
            return CompareResult(id=item["id"], index=index, status="unparsed", raw="?").model_dump(mode="json")
        return reproduces_pandalm_7b(item, index)

    service.judge = one_unparsed
    code, out, _ = pandalm("eval", "--canary")
    assert code == 1 and "changed         1 of 30" in out


def test_a_file_without_recorded_verdicts_reports_agreement_only(
    tmp_path: Path, service: FakeService, pandalm: Run, pandalm_data_dir: Path
) -> None:
    canary = tmp_path / "mine.json"
    canary.write_text(json.dumps(json.loads((pandalm_data_dir / "testset-v1.json").read_text())[:5]))
    code, out, _ = pandalm("eval", "--canary", str(canary))
    assert code == 0 and "items           5" in out and "not measured" in out


def test_items_the_service_could_not_judge_exit_4(service: FakeService, pandalm: Run) -> None:
    def failing(item: dict[str, Any], index: int | None) -> dict[str, Any]:
        error = ErrorBody(code="engine_failed", message="the engine failed")
        return CompareResult(id=item["id"], index=index, status="error", error=error).model_dump(mode="json")

    service.judge = failing
    code, _, err = pandalm("eval", "--canary")
    assert code == 4 and "30 item(s) without a verdict" in err and "engine_failed" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval"], "either a test set or --canary"),
        (["eval", "testset.json", "--canary"], "either a test set or --canary"),
        (["eval", "--canary", "--from-results", "r.jsonl"], "--from-results do(es) not apply to --canary"),
        (["eval", "--canary", "missing.json"], "missing.json: not a canary"),
    ],
)
def test_usage_errors_exit_2(pandalm: Run, args: list[str], message: str) -> None:
    code, _, err = pandalm(*args)
    assert code == 2 and message in err, err
