"""What the three adapters share: the verdict as a score, with the candidate's position kept straight under
`swap`, the client's configuration from the environment, and a judge failure raised, not scored."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from pandalm_client import APIConnectionError, AuthenticationError, CompareResult, ErrorBody, RetryPolicy
from pandalm_client.integrations import JudgeFailure, Options, a_judge, judge, judgement
from pandalm_client.integrations.inspect import pandalm_scorer
from pandalm_client.integrations.promptfoo import get_assert
from pandalm_serve.tools.processes import free_port
from tests.client.integrations.conftest import Judge
from tests.fakes import UNJUDGEABLE

LONG, SHORT = "Paris is the capital of France.", "Lyon."


@pytest.fixture
def env(judge_service: Judge, monkeypatch: pytest.MonkeyPatch) -> Judge:
    for name, value in judge_service.env().items():
        monkeypatch.setenv(name, value)
    return judge_service


@pytest.mark.parametrize(
    ("candidate", "baseline", "score"), [(LONG, SHORT, 1.0), (SHORT, LONG, 0.0), ("Rome.", "Nice.", 0.5)]
)
def test_the_score_is_the_candidates_side_of_the_verdict(
    env: Judge, candidate: str, baseline: str, score: float
) -> None:
    found = judge("Give the capital of France.", candidate, baseline)
    assert found.score == score
    # Both orders were judged by default, and agreed (the scripted judge has no position bias).
    assert found.result.orders is not None and len(found.result.orders) == 2
    assert found.result.consistent is True


def test_the_reason_names_the_output_and_the_baseline_and_carries_the_judges_words(env: Judge) -> None:
    found = judge("Give the capital of France.", SHORT, LONG)
    assert found.reason.startswith("PandaLM: the baseline is better than the output")
    assert "The longer one is better." in found.reason
    assert found.probabilities is not None
    assert max(found.probabilities, key=found.probabilities.__getitem__) == "baseline"


async def test_the_async_path_scores_alike(env: Judge) -> None:
    assert (await a_judge("Give the capital of France.", LONG, SHORT)).score == 1.0


def test_swap_can_be_turned_off(env: Judge) -> None:
    found = judge("Give the capital of France.", LONG, SHORT, swap=False)
    assert found.score == 1.0 and found.result.orders is None


def test_an_unparsed_judgement_is_a_failure_not_a_lost_comparison(env: Judge) -> None:
    with pytest.raises(JudgeFailure, match="gave no verdict") as raised:
        judge("Give the capital of France.", f"{UNJUDGEABLE} Paris.", SHORT)
    assert raised.value.result.status == "unparsed"


def test_an_unreachable_service_is_the_clients_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANDALM_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(APIConnectionError):
        judge("Give the capital of France.", LONG, SHORT, retry=RetryPolicy(max_retries=1, initial_backoff_s=0.01))


def test_the_api_key_comes_from_the_environment_or_the_options(env: Judge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PANDALM_API_KEY")
    with pytest.raises(AuthenticationError):
        judge("Give the capital of France.", LONG, SHORT)
    assert judge("Give the capital of France.", LONG, SHORT, api_key=env.api_key).score == 1.0


def test_a_misspelt_option_fails_before_any_request() -> None:
    with pytest.raises(ValidationError, match="swapp"):
        Options.of({"swapp": True})


def test_the_promptfoo_assertion_passes_unless_worse_and_reports_its_verdict(env: Judge) -> None:
    context = {"vars": {"instruction": "Give the capital of France.", "baseline": LONG}, "prompt": "ignored"}
    lost = get_assert(SHORT, context)
    assert (lost["pass"], lost["score"]) == (False, 0.0)
    assert lost["metadata"]["pandalm_verdict"] == "response2"
    tie = get_assert("x" * len(LONG), context)
    assert (tie["pass"], tie["score"]) == (True, 0.5)


def test_the_promptfoo_assertion_needs_a_baseline(env: Judge) -> None:
    with pytest.raises(ValueError, match="baseline"):
        get_assert(SHORT, {"vars": {"instruction": "Give the capital of France."}})


def test_importing_the_adapters_core_leaves_the_tools_unimported() -> None:
    script = "import sys, pandalm_client.integrations; print(sorted({'deepeval', 'inspect_ai'} & set(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_the_inspect_scorer_refuses_an_api_key_that_its_logs_would_keep() -> None:
    with pytest.raises(ValueError, match="PANDALM_API_KEY"):
        pandalm_scorer(api_key="secret")


def test_orders_that_disagree_score_a_tie_and_say_so() -> None:
    result = CompareResult(verdict="tie", status="ok", consistent=False, reason="Response 1 is better.")
    found = judgement(result)
    assert found.score == 0.5
    assert "the two orders disagreed, so it counts as a tie" in found.reason and found.probabilities is None


def test_an_item_the_service_could_not_judge_fails_with_the_services_message() -> None:
    error = ErrorBody(code="prompt_too_long", message="The prompt has 3000 tokens; the model takes 2048.")
    with pytest.raises(JudgeFailure, match="3000 tokens"):
        judgement(CompareResult(status="error", error=error))
