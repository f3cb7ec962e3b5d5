"""`pandalm gate` through the real service, with a judge whose preference is known: the longer response.

Not with the demo judge, whose verdicts are random. The service runs under uvicorn on loopback, with a
scripted engine in place of vLLM; the command line runs as CI runs it, in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine, prefers_longer
from tests.support import serving


@pytest.fixture(scope="module")
def service_url() -> Iterator[str]:
    with serving(create_app(Settings(), engine=FakeEngine(prefers_longer))) as url:
        yield url


def write(path: Path, outputs: list[str]) -> Path:
    rows = [{"id": f"q{i}", "instruction": f"Task {i}.", "input": "", "output": o} for i, o in enumerate(outputs)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def gate(url: str, tmp_path: Path, baseline: list[str], candidate: list[str], *extra: str) -> tuple[int, str]:
    base, cand = write(tmp_path / "base.jsonl", baseline), write(tmp_path / "cand.jsonl", candidate)
    run = subprocess.run(
        [sys.executable, "-m", "pandalm_client.cli", "gate", "--baseline", str(base), "--candidate", str(cand),
         "--out", str(tmp_path / "gate"), "--log", str(tmp_path / "log.jsonl"), *extra],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PANDALM_URL": url},
    )  # fmt: skip
    return run.returncode, run.stdout + run.stderr


def test_a_candidate_equal_to_its_baseline_passes(service_url: str, tmp_path: Path) -> None:
    answers = [f"Answer number {i}." for i in range(60)]
    code, out = gate(service_url, tmp_path, answers, answers)
    assert code == 0, out
    report = json.loads((tmp_path / "gate" / "report.json").read_text())
    assert report["statistics"]["ties"] == 60 and report["judge"]["model"] == "fake-judge"


def test_too_few_equal_prompts_are_inconclusive_and_the_plan_says_so(service_url: str, tmp_path: Path) -> None:
    answers = [f"Answer number {i}." for i in range(8)]
    code, out = gate(service_url, tmp_path, answers, answers, "--plan")
    assert code == 0 and "too few: expect inconclusive" in out
    assert gate(service_url, tmp_path, answers, answers)[0] == 3


def test_a_clearly_worse_candidate_fails(service_url: str, tmp_path: Path) -> None:
    baseline = [f"A complete and careful answer to task {i}." for i in range(30)]
    candidate = ["Short." if i % 10 else baseline[i] + " And more." for i in range(30)]
    code, out = gate(service_url, tmp_path, baseline, candidate)
    assert code == 1, out
    assert "FAIL" in out
