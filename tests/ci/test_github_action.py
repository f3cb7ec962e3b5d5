"""The pandalm-gate GitHub Action: valid against GitHub's schema, and its script run end to end.

The script (gate.py) runs as the action runs it: in its own process, with the INPUT_* variables, the
GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files the runner provides, against a scripted judge on a real port.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci.schemas import errors, vendored_schema
from tests.client.fake_service import FakeService, over_http
from tests.client.test_cli import outputs

ROOT = Path(__file__).resolve().parents[2]
ACTION_DIR = ROOT / ".github" / "actions" / "pandalm-gate"
ACTION = yaml.safe_load((ACTION_DIR / "action.yml").read_text())
README = (ROOT / "README.md").read_text()


def test_the_action_is_valid_against_githubs_schema() -> None:
    validator = vendored_schema("github-actions")
    assert errors(validator, ACTION) == []
    broken = copy.deepcopy(ACTION)
    del broken["runs"]["steps"][1]["shell"]  # a composite run step must name its shell
    assert errors(validator, broken)


def test_every_input_reaches_the_script_and_every_output_comes_from_it() -> None:
    steps = {step.get("id") or step["name"]: step for step in ACTION["runs"]["steps"]}
    text = json.dumps(ACTION["runs"])
    for name in ACTION["inputs"]:
        assert f"inputs.{name} }}}}" in text, name
    script = (ACTION_DIR / "gate.py").read_text()
    for variable in steps["gate"]["env"]:
        assert variable.startswith("PANDALM_") or f'"{variable}"' in script, variable
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.gate.outputs.{name} }}}}"
        assert f'"{name}"' in script, name


def test_the_log_is_cached_the_reports_uploaded_and_the_gates_code_kept_whatever_happens() -> None:
    steps = ACTION["runs"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    restore, gate = uses.index("actions/cache/restore"), next(i for i, s in enumerate(steps) if s.get("id") == "gate")
    save, upload = uses.index("actions/cache/save"), uses.index("actions/upload-artifact")
    assert restore < gate < save and gate < upload
    assert steps[save]["if"] == steps[upload]["if"] == "always()"
    assert steps[save]["with"]["key"] == steps[restore]["with"]["key"]
    assert steps[-1]["run"] == 'exit "${CODE:-4}"' and "steps.gate.outputs.exit-code" in steps[-1]["env"]["CODE"]
    # The client comes from the action's own checkout: the ref the workflow pinned, nothing else.
    assert '"$GITHUB_ACTION_PATH/../../../client"' in steps[1]["run"]
    assert (ACTION_DIR / "../../../client/pyproject.toml").resolve().is_file()


def test_the_readme_job_uses_the_action_in_at_most_12_lines() -> None:
    ci = README.split("A CI job (GitHub Actions)")[1]
    job = re.search(r"```yaml\n(.*?)```", ci, re.S)
    assert job is not None
    assert len(job.group(1).splitlines()) <= 12
    workflow = yaml.safe_load(job.group(1))
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true; GitHub does not
    assert errors(vendored_schema("github-workflows"), workflow) == []
    (step,) = [s for j in workflow["jobs"].values() for s in j["steps"] if "pandalm-gate" in s.get("uses", "")]
    assert set(step["with"]) <= set(ACTION["inputs"])
    assert {n for n, i in ACTION["inputs"].items() if i.get("required")} <= set(step["with"])


@pytest.fixture
def service() -> Iterator[tuple[FakeService, str]]:
    judge = FakeService()
    with over_http(judge) as url:
        yield judge, url


def run_action(tmp_path: Path, url: str, candidate: str, **inputs: str) -> tuple[int, str, dict[str, str], str]:
    """gate.py as action.yml runs it; returns its exit code, its log, its outputs and the step summary."""
    outputs(tmp_path / "base.jsonl", 60, lambda i: f"answer {i}")
    outputs(tmp_path / "cand.jsonl", 60, lambda i: candidate or f"answer {i}")
    (tmp_path / "output").write_text("")
    (tmp_path / "summary").write_text("")
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith(("PANDALM_", "INPUT_"))}
    env.update(PANDALM_URL=url, INPUT_BASELINE="base.jsonl", INPUT_CANDIDATE="cand.jsonl", INPUT_RETRY_DELAY="0.1",
               GITHUB_OUTPUT=str(tmp_path / "output"), GITHUB_STEP_SUMMARY=str(tmp_path / "summary"))  # fmt: skip
    env.update(inputs)
    run = subprocess.run(
        [sys.executable, str(ACTION_DIR / "gate.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    values = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines())
    return run.returncode, run.stdout + run.stderr, values, (tmp_path / "summary").read_text()


def test_a_candidate_as_good_as_its_baseline_passes(tmp_path: Path, service: tuple[FakeService, str]) -> None:
    code, log, values, summary = run_action(tmp_path, service[1], candidate="")
    assert code == 0, log
    assert values == {"exit-code": "0", "outcome": "pass", "report": "pandalm-gate/report.json",
                      "win-rate": "0.5000", "lower": values["lower"], "upper": values["upper"]}  # fmt: skip
    assert float(values["lower"]) < 0.5 < float(values["upper"])
    assert summary.count("## pandalm gate: PASS") == 1
    assert (tmp_path / ".pandalm" / "judgements.jsonl").is_file()  # what actions/cache keeps
    assert (tmp_path / "pandalm-gate" / "junit.xml").is_file()


def test_a_worse_candidate_fails_with_its_losses_in_the_summary(
    tmp_path: Path, service: tuple[FakeService, str]
) -> None:
    code, log, values, summary = run_action(tmp_path, service[1], candidate="no", INPUT_MARGIN="0.1")
    assert code == 1, log
    assert values["outcome"] == "fail" and values["win-rate"] == "0.0000"
    assert summary.startswith("## pandalm gate: FAIL") and "Worst losses" in summary
    assert json.loads((tmp_path / "pandalm-gate" / "report.json").read_text())["margin"] == 0.1


def test_a_refused_key_is_exit_2_at_once_never_retried(tmp_path: Path, service: tuple[FakeService, str]) -> None:
    judge, url = service
    judge.api_key = "the-key"
    code, log, values, summary = run_action(tmp_path, url, candidate="", PANDALM_API_KEY="not-the-key")
    assert code == 2, log
    assert "HTTP 401" in log and "PANDALM_API_KEY was refused" in log and "::warning::" not in log
    assert len(judge.requests) == 1
    assert values["outcome"] == "usage_error" and values["report"] == ""
    assert summary.startswith("## pandalm gate: exit 2 (usage_error)")


def test_a_judge_down_then_up_is_retried_and_passes(tmp_path: Path, service: tuple[FakeService, str]) -> None:
    judge, url = service
    # Down: the service answers 503 (its engine restarting) to the client's five tries of the first run.
    judge.failures = [(503, {"Retry-After": "0"})] * 5
    code, log, values, summary = run_action(tmp_path, url, candidate="")
    assert code == 0, log
    assert log.count("::warning::pandalm gate exited 4") == 1
    assert values["outcome"] == "pass"
    assert summary.count("## pandalm gate") == 1


def test_a_judge_that_stays_down_is_exit_4_after_the_retries(tmp_path: Path, service: tuple[FakeService, str]) -> None:
    judge, url = service
    judge.failures = [(503, {"Retry-After": "0"})] * 100
    code, log, values, _ = run_action(tmp_path, url, candidate="", INPUT_RETRIES="1")
    assert code == 4, log
    assert log.count("::warning::pandalm gate exited 4") == 1  # two runs, one retry
    assert len(judge.requests) == 10  # five tries of /info in each run
    assert values["outcome"] == "judge_failure"


def test_a_bad_input_is_exit_2(tmp_path: Path, service: tuple[FakeService, str]) -> None:
    code, log, values, _ = run_action(tmp_path, service[1], candidate="", INPUT_RETRIES="twice")
    assert code == 2 and "::error::" in log and values["outcome"] == "usage_error"
    code, log, _, _ = run_action(tmp_path, service[1], candidate="", INPUT_EXTRA_ARGS="--margin 0.9")
    assert code == 2 and "argument --margin" in log
    code, log, values, _ = run_action(tmp_path, service[1], candidate="", INPUT_PLAN="true")
    assert code == 0 and values["outcome"] == "plan" and service[0].requests == []
