"""`inspect eval` with inspect-ai's mock model, its samples scored by `pandalm_scorer` through the real service.

The mock model always answers the same sentence, so each sample's outcome is set by its target's length.
Its answers come with their token usage: without it, the mock model counts tokens with tiktoken, which
downloads its vocabulary from the internet.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.client.integrations.conftest import Judge, assert_offline
from tests.fakes import UNJUDGEABLE

pytestmark = pytest.mark.integration

MOCK_OUTPUT = "Default output from mockllm/model"  # inspect-ai's mockllm answer
LONG_TARGET = "A reference answer much longer than the mock model's output."
TASKS = f"""
import itertools

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.model import Model, ModelOutput, ModelUsage, get_model
from inspect_ai.solver import generate

from pandalm_client.integrations.inspect import pandalm_scorer


def mock_model() -> Model:
    usage = ModelUsage(input_tokens=10, output_tokens=10, total_tokens=20)
    answers = (
        ModelOutput.from_content("mockllm/model", {MOCK_OUTPUT!r}).model_copy(update={{"usage": usage}})
        for _ in itertools.count()
    )
    return get_model("mockllm/model", custom_outputs=answers)


@task
def against_targets() -> Task:
    samples = [
        Sample(id="better", input="Say something.", target="Short."),
        Sample(id="worse", input="Say something.", target={LONG_TARGET!r}),
        Sample(id="tie", input="Say something.", target={"x" * len(MOCK_OUTPUT)!r}),
        Sample(id="baseline", input="Say something.", target={LONG_TARGET!r}, metadata={{"baseline": "Tiny."}}),
    ]
    return Task(dataset=samples, solver=generate(), scorer=pandalm_scorer(preset="greedy"), model=mock_model())


@task
def unjudgeable() -> Task:
    samples = [Sample(id="broken", input="Say something.", target={UNJUDGEABLE!r})]
    return Task(dataset=samples, solver=generate(), scorer=pandalm_scorer(), model=mock_model())
"""


def inspect_eval(judge: Judge, tmp_path: Path, task: str) -> dict[str, Any]:
    """Run one task of TASKS with `inspect eval` (each task names the mock model); its JSON log."""
    (tmp_path / "tasks.py").write_text(TASKS)
    inspect = Path(sys.executable).with_name("inspect")
    run = subprocess.run(
        [str(inspect), "eval", f"tasks.py@{task}", "--log-dir", str(tmp_path / "logs"),
         "--log-format", "json", "--display", "plain", "--max-samples", "4"],
        cwd=tmp_path, env=judge.tool_env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert_offline(tmp_path, "inspect")
    (log,) = (tmp_path / "logs").glob("*.json")
    return dict(json.loads(log.read_text()), output=run.stdout + run.stderr)


def test_the_scores_are_the_verdicts_and_the_explanations_the_reasons(judge_service: Judge, tmp_path: Path) -> None:
    log = inspect_eval(judge_service, tmp_path, "against_targets")
    assert log["status"] == "success", log["output"]
    scores = {sample["id"]: sample["scores"]["pandalm_scorer"] for sample in log["samples"]}
    assert {sample_id: score["value"] for sample_id, score in scores.items()} == {
        "better": 1.0,
        "worse": 0.0,
        "tie": 0.5,
        "baseline": 1.0,
    }
    for score in scores.values():
        assert score["explanation"].startswith("PandaLM: ") and "The longer one is better." in score["explanation"]
        assert score["answer"] == MOCK_OUTPUT
    assert scores["worse"]["metadata"]["verdict"] == "response2"
    (summary,) = log["results"]["scores"]
    assert summary["metrics"]["mean"]["value"] == pytest.approx(2.5 / 4)


def test_a_judge_failure_is_the_samples_error(judge_service: Judge, tmp_path: Path) -> None:
    log = inspect_eval(judge_service, tmp_path, "unjudgeable")
    assert log["status"] == "error", log["output"]  # `inspect eval` itself exits 0 either way
    assert "gave no verdict (unparsed)" in log["error"]["message"]
