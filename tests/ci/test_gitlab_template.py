"""The GitLab CI template: valid against GitLab's schema, and its job's script run in bash against a scripted judge."""

from __future__ import annotations

import copy
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.ci.schemas import errors, vendored_schema
from tests.client.fake_service import FakeService, over_http
from tests.client.test_cli import outputs

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = yaml.safe_load((ROOT / "deploy" / "ci" / "gitlab-gate.yml").read_text())
JOB = TEMPLATE["pandalm-gate"]
README = (ROOT / "README.md").read_text()


def test_the_template_is_valid_against_gitlabs_schema() -> None:
    validator = vendored_schema("gitlab-ci")
    assert errors(validator, TEMPLATE) == []
    broken = copy.deepcopy(TEMPLATE)
    broken["pandalm-gate"]["artifacts"]["when"] = "sometimes"
    assert errors(validator, broken)


def test_the_job_caches_the_log_and_keeps_the_reports_whatever_the_outcome() -> None:
    assert JOB["cache"]["paths"] == [".pandalm/"] and JOB["cache"]["when"] == "always"
    assert JOB["artifacts"]["when"] == "always" and JOB["artifacts"]["paths"] == ["pandalm-gate/"]
    assert JOB["artifacts"]["reports"]["junit"] == "pandalm-gate/junit.xml"
    # Job-level variables would override those of the pipeline that includes the template.
    assert "variables" not in JOB


def test_the_readme_include_sets_what_the_job_needs() -> None:
    snippet = re.search(r"\*\*GitLab CI\*\*.*?```yaml\n(.*?)```", README, re.S)
    assert snippet is not None
    pipeline = yaml.safe_load(snippet.group(1))
    assert errors(vendored_schema("gitlab-ci"), {**pipeline, "pandalm-gate": JOB}) == []
    assert pipeline["include"][0]["remote"].endswith("/deploy/ci/gitlab-gate.yml")
    required = set(re.findall(r"\$\{(GATE_[A-Z]+):\?", "\n".join(JOB["script"])))
    assert required == {"GATE_CLIENT", "GATE_BASELINE", "GATE_CANDIDATE"} <= set(pipeline["variables"])


@pytest.fixture
def service() -> Iterator[tuple[FakeService, str]]:
    judge = FakeService()
    with over_http(judge) as url:
        yield judge, url


def run_job(tmp_path: Path, url: str, **variables: str) -> tuple[int, str]:
    """The job's script in bash, as the runner runs it, but with the client already installed: a `pandalm` on PATH."""
    outputs(tmp_path / "base.jsonl", 60, lambda i: f"answer {i}")
    outputs(tmp_path / "cand.jsonl", 60, lambda i: f"answer {i}")
    shim = tmp_path / "bin" / "pandalm"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pandalm_client.cli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    lines = [line for line in JOB["script"] if "pip install" not in line and "apt-get" not in line]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANDALM_", "GATE_"))}
    env.update(PATH=f"{shim.parent}:{env['PATH']}", PANDALM_URL=url, GATE_CLIENT="installed above",
               GATE_BASELINE="base.jsonl", GATE_CANDIDATE="cand.jsonl", GATE_RETRY_DELAY="0.1")  # fmt: skip
    env.update(variables)
    script = "set -eo pipefail\n" + "\n".join(lines)  # as GitLab's bash runs a job's script
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout + run.stderr


def test_the_job_passes_an_equal_candidate_and_leaves_the_reports(
    tmp_path: Path, service: tuple[FakeService, str]
) -> None:
    code, log = run_job(tmp_path, service[1], GATE_MARGIN="0.1", GATE_ARGS="--inconclusive fail")
    assert code == 0, log
    assert (tmp_path / "pandalm-gate" / "junit.xml").is_file()
    assert (tmp_path / ".pandalm" / "judgements.jsonl").is_file()


def test_the_job_retries_a_judge_down_then_up(tmp_path: Path, service: tuple[FakeService, str]) -> None:
    judge, url = service
    judge.failures = [(503, {"Retry-After": "0"})] * 5
    code, log = run_job(tmp_path, url)
    assert code == 0, log
    assert log.count("pandalm gate exited 4") == 1


def test_the_job_does_not_retry_a_refused_key(tmp_path: Path, service: tuple[FakeService, str]) -> None:
    judge, url = service
    judge.api_key = "the-key"
    code, log = run_job(tmp_path, url, PANDALM_API_KEY="not-the-key")
    assert code == 2 and "HTTP 401" in log and "exited 4" not in log
    assert len(judge.requests) == 1


def test_the_job_says_what_is_missing(tmp_path: Path, service: tuple[FakeService, str]) -> None:
    code, log = run_job(tmp_path, service[1], GATE_BASELINE="")
    assert code != 0 and "set GATE_BASELINE" in log
