"""`promptfoo eval` on the example config (integrations/promptfoo/), its assertion judged by the real service.

promptfoo 0.123 posts a "telemetry disabled" event even with PROMPTFOO_DISABLE_TELEMETRY=1: its proxy is
pointed at a closed loopback port, and a guard in every process it starts records any connection beyond
loopback, which must be none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pandalm_serve.tools.processes import free_port
from tests.client.integrations.conftest import OFFLINE, Judge, assert_offline
from tests.fakes import UNJUDGEABLE
from tests.system_tools import ROOT
from tests.tools_eval import promptfoo_bin

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "integrations" / "promptfoo"
ASSERTION = ROOT / "client" / "pandalm_client" / "integrations" / "promptfoo.py"


def promptfoo_eval(judge: Judge, config: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """Run `promptfoo eval` on `config` from its folder; the process and the rows of its results file."""
    bin_dir = promptfoo_bin()
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    env = {
        **judge.tool_env(tmp_path),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_DISABLE_SHARING": "1",
        "PROMPTFOO_DISABLE_REMOTE_GENERATION": "1",
        "PROMPTFOO_CONFIG_DIR": str(tmp_path / "promptfoo-home"),
        "PROMPTFOO_PYTHON": sys.executable,
        "HTTPS_PROXY": dead_proxy,
        "HTTP_PROXY": dead_proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "NODE_OPTIONS": f"--require {OFFLINE / 'offline.cjs'}",
    }
    results = tmp_path / "results.json"
    run = subprocess.run(
        [str(bin_dir / "promptfoo"), "eval", "-c", config.name, "-o", str(results),
         "--no-cache", "--no-table", "--no-progress-bar"],
        cwd=config.parent, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert results.exists(), run.stdout + run.stderr
    assert_offline(tmp_path, "promptfoo")
    return run, json.loads(results.read_text())["results"]["results"]


def assertion_of(row: dict[str, Any]) -> dict[str, Any]:
    """Our assertion's own grading result in a promptfoo row (the row's reason sums up all assertions)."""
    (component,) = row["gradingResult"]["componentResults"]
    return dict(component)


def test_the_example_passes_outputs_not_worse_than_their_baselines(judge_service: Judge, tmp_path: Path) -> None:
    run, rows = promptfoo_eval(judge_service, EXAMPLE / "promptfooconfig.yaml", tmp_path)
    assert run.returncode == 100, run.stdout + run.stderr  # promptfoo's exit code when a test fails
    outcomes = {row["testCase"]["description"]: (row["success"], row["score"]) for row in rows}
    assert outcomes == {
        "better than its baseline": (True, 1),
        "worse than its baseline": (False, 0),
        "the baseline read from a file": (True, 1),
        "as good as its baseline": (True, 0.5),
    }
    for row in rows:
        ours = assertion_of(row)
        assert ours["reason"].startswith("PandaLM: ") and "The longer one is better." in ours["reason"]
        probabilities = ours["metadata"]["pandalm_probabilities"]
        assert sum(probabilities.values()) == pytest.approx(1.0)
    (lost,) = [row for row in rows if not row["success"]]
    assert lost["gradingResult"]["reason"].startswith("PandaLM: the baseline is better than the output")


def test_a_judge_failure_is_reported_as_the_assertions_error(judge_service: Judge, tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        json.dumps(
            {
                "prompts": ["{{answer}}"],
                "providers": ["echo"],
                "defaultTest": {"assert": [{"type": "python", "value": f"file://{ASSERTION}"}]},
                "tests": [{"vars": {"instruction": "Say hi.", "answer": f"{UNJUDGEABLE} hi", "baseline": "Hi."}}],
            }
        )
    )
    run, (row,) = promptfoo_eval(judge_service, config, tmp_path)
    assert run.returncode == 100 and not row["success"]
    reason = assertion_of(row)["reason"]
    assert "gave no verdict (unparsed)" in reason and "PandaLM: " not in reason
