"""The jury's verdict from its members' results (judge/panel.py `jury_result`)."""

from __future__ import annotations

import pytest

from pandalm_client.models import CompareResult, ErrorBody, Verdict
from pandalm_serve.judge.panel import jury_result


def ok(verdict: Verdict) -> CompareResult:
    return CompareResult(status="ok", verdict=verdict)


UNPARSED = CompareResult(status="unparsed")
FAILED = CompareResult(status="error", error=ErrorBody(code="engine_error", message="down"))


def jury(*results: CompareResult) -> CompareResult:
    names = [f"j{i}" for i in range(len(results))]
    return jury_result("id", None, names, list(results), 1.0)


@pytest.mark.parametrize(
    ("members", "verdict", "consistent", "agreement"),
    [
        ((ok("response1"), ok("response1"), ok("response2")), "response1", None, 2 / 3),
        ((ok("tie"), ok("tie"), ok("tie")), "tie", None, 1.0),
        ((ok("response1"), ok("response2")), "tie", False, 0.0),
        ((ok("response1"), ok("response2"), ok("tie")), "tie", False, 1 / 3),
        # A majority of the judges that gave a verdict; the others' failures are warnings.
        ((ok("response2"), FAILED, UNPARSED), "response2", None, 1 / 3),
        ((ok("response1"), ok("response1"), ok("response2"), ok("response2")), "tie", False, 0.0),
    ],
)
def test_the_verdict_is_a_strict_majority_of_the_judges_that_gave_one(
    members: tuple[CompareResult, ...], verdict: str, consistent: bool | None, agreement: float
) -> None:
    result = jury(*members)
    assert (result.status, result.verdict, result.consistent) == ("ok", verdict, consistent)
    assert result.agreement == pytest.approx(agreement, abs=1e-6)
    failed = sum(m.status != "ok" for m in members)
    assert [w.code for w in result.warnings].count("juror_failed") == failed


def test_a_jury_without_any_verdict_is_unparsed_never_a_tie() -> None:
    result = jury(UNPARSED, FAILED)
    assert (result.status, result.verdict) == ("unparsed", None)


def test_a_jury_whose_every_judge_failed_is_an_error() -> None:
    result = jury(FAILED, FAILED)
    assert result.status == "error" and result.error is not None and result.error.code == "engine_error"
    assert [j.status for j in result.jury or []] == ["error", "error"]
