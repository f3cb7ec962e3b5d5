"""The `pandalm` command line against the real demo judge (vLLM on the random-weight model): it warns, and
the gate refuses to decide a release on it unless told it is a trial run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.test_gate_end_to_end import write

pytestmark = pytest.mark.integration


def pandalm(url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PANDALM_URL", "PANDALM_API_KEY")}
    run = subprocess.run([sys.executable, "-m", "pandalm_client.cli", *args, "--url", url],
                         capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    return run.returncode, run.stdout, run.stderr


def test_the_demo_judge_is_announced_and_cannot_gate_a_release(vllm_service: str, tmp_path: Path) -> None:
    code, out, err = pandalm(vllm_service, "compare", "--instruction", "Add 2 and 2.", "--response1", "4",
                             "--response2", "5")  # fmt: skip
    assert code == 0 and out.startswith("verdict:")
    assert "warning" in err and "demo judge" in err
    base = write(tmp_path / "base.jsonl", ["Four.", "Paris.", "Blue."])
    cand = write(tmp_path / "cand.jsonl", ["4", "Lyon.", "Green."])
    gate = ["gate", "--baseline", str(base), "--candidate", str(cand), "--out", str(tmp_path / "gate"),
            "--log", str(tmp_path / "log.jsonl")]  # fmt: skip
    code, _, err = pandalm(vllm_service, *gate)
    assert code == 2 and "refusing to gate on the demo judge" in err
    assert not (tmp_path / "gate").exists() and not (tmp_path / "log.jsonl").exists()  # nothing judged
    # Random weights disagree with themselves across orders: allowed here, so that the gate decides.
    code, _, err = pandalm(vllm_service, *gate, "--allow-demo", "--max-inconsistent-rate", "1")
    assert code in (0, 1, 3), err  # random verdicts on three prompts: some decision, never a crash or exit 4
    report = json.loads((tmp_path / "gate" / "report.json").read_text())
    assert report["judge"]["demo"] is True and report["prompts"] == 3
