"""`deepeval test run` on test cases scored by `PandaLMMetric` through the real service.

DeepEval runs from its own virtualenv under .tools/ (tests/tools_eval.py), with this checkout's client,
its telemetry switched off and a guard that records any connection beyond loopback.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.client.integrations.conftest import Judge, assert_offline
from tests.fakes import UNJUDGEABLE
from tests.tools_eval import deepeval_python

pytestmark = pytest.mark.integration

TESTS = f"""
from deepeval import assert_test
from deepeval.test_case import LLMTestCase

from pandalm_client.integrations.deepeval import PandaLMMetric

QUESTION = "Give the capital of France."
LONG = "The capital of France is Paris."


def test_better() -> None:
    assert_test(LLMTestCase(input=QUESTION, actual_output=LONG, expected_output="Paris."), [PandaLMMetric()])


def test_worse() -> None:
    assert_test(LLMTestCase(input=QUESTION, actual_output="Lyon.", expected_output=LONG), [PandaLMMetric()])


def test_tie_blocking() -> None:
    case = LLMTestCase(input=QUESTION, actual_output="Paris.", expected_output="Paris.")
    assert_test(case, [PandaLMMetric(preset="greedy")], run_async=False)


def test_baseline_over_expected() -> None:
    case = LLMTestCase(input=QUESTION, actual_output="Paris.", expected_output=LONG)
    assert_test(case, [PandaLMMetric(baseline="Lyon")])


def test_strict_threshold() -> None:
    case = LLMTestCase(input=QUESTION, actual_output="Paris.", expected_output="Paris.")
    assert_test(case, [PandaLMMetric(threshold=1.0)])


def test_unjudgeable() -> None:
    case = LLMTestCase(input=QUESTION, actual_output={UNJUDGEABLE!r}, expected_output="Paris.")
    assert_test(case, [PandaLMMetric()])
"""


def test_deepeval_passes_and_fails_the_expected_cases_with_our_reasons(judge_service: Judge, tmp_path: Path) -> None:
    python = deepeval_python()
    (tmp_path / "test_answers.py").write_text(TESTS)
    env = {
        **judge_service.tool_env(tmp_path),
        "DEEPEVAL_TELEMETRY_OPT_OUT": "1",
        "DEEPEVAL_HOME": str(tmp_path / "deepeval-home"),
        "DEEPEVAL_RESULTS_FOLDER": str(tmp_path / "results"),
        "DEEPEVAL_DISABLE_DOTENV": "1",
        "NO_COLOR": "1",
    }
    run = subprocess.run(
        [str(python.with_name("deepeval")), "test", "run", "test_answers.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = re.sub(r"\x1b\[[0-9;]*m", "", run.stdout + run.stderr)
    assert_offline(tmp_path, "deepeval")
    assert run.returncode == 1, output
    failed = dict(re.findall(r"^FAILED test_answers\.py::(\w+) - (\w[\w.]*)", output, re.MULTILINE))
    # A lost comparison fails its assertion; a judge failure is an error of the test, not a lost comparison.
    assert failed == {
        "test_worse": "AssertionError",
        "test_strict_threshold": "AssertionError",
        "test_unjudgeable": "pandalm_client.integrations.JudgeFailure",
    }
    (results,) = (tmp_path / "results").glob("*.json")
    cases = {case["name"]: case["metricsData"][0] for case in json.loads(results.read_text())["testCases"]}
    scores = {name: (metric["success"], metric.get("score")) for name, metric in cases.items()}
    assert scores == {
        "test_better": (True, 1.0),
        "test_worse": (False, 0.0),
        "test_tie_blocking": (True, 0.5),
        "test_baseline_over_expected": (True, 1.0),
        "test_strict_threshold": (False, 0.5),
        "test_unjudgeable": (False, None),
    }
    for name, metric in cases.items():
        if name != "test_unjudgeable":
            assert metric["reason"].startswith("PandaLM: ") and "The longer one is better." in metric["reason"]
