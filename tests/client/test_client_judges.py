"""The client's judges: `judge`, `rubric` and `reference` sent as given, a jury, and `grade` (POST /grade)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pandalm_client import (
    AsyncPandaLMClient,
    GradeResult,
    JudgeOptions,
    PandaLMClient,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from tests.client.conftest import FAST
from tests.client.fake_service import FakeService, judge
from tests.client.test_client import client, pair


def served() -> FakeService:
    service = FakeService()
    service.judges = [judge("panda"), judge("prom", "pairwise", "absolute", family="prometheus2"), judge("lm")]
    return service


def sent(service: FakeService, path: str) -> list[dict[str, Any]]:
    return [body for request, body in zip(service.requests, service.bodies, strict=True) if request.url.path == path]


def test_compare_sends_judge_rubric_and_reference_exactly_as_given() -> None:
    service = served()
    with client(service) as judges:
        one = judges.compare("Say hi.", "Hello.", "Hi", judge="prom", rubric="Is it polite?", reference="Hello!")
        jury = judges.compare("Say hi.", "Hello.", "Hi", judge=("panda", "lm"), swap=True)
        default = judges.compare("Say hi.", "Hello.", "Hi")
    first, second, third = sent(service, "/compare")
    assert first == {
        "instruction": "Say hi.",
        "input": "",
        "response1": "Hello.",
        "response2": "Hi",
        "judge": "prom",
        "rubric": "Is it polite?",
        "reference": "Hello!",
    }
    assert second["judge"] == ["panda", "lm"] and second["options"] == {"swap": True}  # a tuple goes as a list
    assert "rubric" not in second and "reference" not in second
    assert "judge" not in third  # the server's default, not a name the client guessed
    assert one.judge == "prom" and default.judge == "panda"
    assert jury.judge == ["panda", "lm"] and jury.agreement == 1.0
    assert jury.jury is not None and [j.judge for j in jury.jury] == ["panda", "lm"]


def test_a_list_of_one_judge_stays_a_jury_of_one() -> None:
    service = served()
    with client(service) as judges:
        judges.compare("i", "a", "b", judge=["lm"])
    assert sent(service, "/compare")[0]["judge"] == ["lm"]


@pytest.mark.parametrize(
    "bad", ["", "two words", "x" * 65, ["panda", "panda"], [f"j{i}" for i in range(10)], []], ids=repr
)
def test_a_judge_the_wire_refuses_fails_before_any_request(bad: Any) -> None:
    service = served()
    with client(service) as judges:
        with pytest.raises(ValidationError, match="judge"):
            judges.compare("i", "a", "b", judge=bad)
        with pytest.raises(ValidationError, match="judge"):
            judges.batch([pair(0)], judge=bad)
    assert service.requests == []


def test_an_unknown_judge_is_the_services_422() -> None:
    service = served()
    with client(service) as judges, pytest.raises(UnprocessableEntityError) as refused:
        judges.compare("i", "a", "b", judge="gpt")
    assert refused.value.code == "invalid_option" and "no judge named 'gpt'" in str(refused.value)


def test_batch_sends_the_batch_judge_in_every_call_and_items_keep_their_own() -> None:
    service = served()
    items = [pair(i) for i in range(5)]
    items[3] = {**items[3], "judge": "lm"}
    with client(service, batch_size=2) as judges:
        results = judges.batch(items, judge=["panda", "prom"], mode="verdict")
    bodies = sent(service, "/batch")
    assert [len(b["items"]) for b in bodies] == [2, 2, 1]
    assert all(b["judge"] == ["panda", "prom"] and b["options"] == {"mode": "verdict"} for b in bodies)
    assert bodies[1]["items"][1]["judge"] == "lm"
    assert [r.judge for r in results] == [["panda", "prom"]] * 3 + ["lm", ["panda", "prom"]]
    with client(service) as judges:
        judges.batch([pair(0)])
    assert "judge" not in sent(service, "/batch")[-1]


def test_a_cut_stream_is_resumed_with_the_same_judge() -> None:
    service = served()
    service.failures = [None, "cut"]
    with client(service, batch_size=10) as judges:
        results = judges.batch([pair(i) for i in range(4)], judge="lm")
    first, second = sent(service, "/batch")
    assert first["judge"] == second["judge"] == "lm" and len(second["items"]) == 2
    assert all(r.judge == "lm" for r in results)


def test_grade_sends_the_request_and_parses_the_result() -> None:
    service = served()
    with client(service) as judges:
        result = judges.grade(
            "Explain rain.",
            "Water falls from clouds.",
            "Is it accurate? 1: wrong ... 5: exact",
            input="to a child",
            reference="Droplets in clouds grow heavy and fall.",
            judge="prom",
            id="g1",
            options={"max_new_tokens": 64},
        )
        default = judges.grade("i", "short", "rubric", options=JudgeOptions(preset="beam"))
    assert sent(service, "/grade") == [
        {
            "instruction": "Explain rain.",
            "input": "to a child",
            "response": "Water falls from clouds.",
            "rubric": "Is it accurate? 1: wrong ... 5: exact",
            "reference": "Droplets in clouds grow heavy and fall.",
            "id": "g1",
            "judge": "prom",
            "options": {"max_new_tokens": 64},
        },
        {"instruction": "i", "input": "", "response": "short", "rubric": "rubric", "options": {"preset": "beam"}},
    ]
    assert isinstance(result, GradeResult)
    assert (result.id, result.status, result.score, result.scale, result.judge) == ("g1", "ok", 3, [1, 5], "prom")
    assert result.feedback == "24 characters"
    assert default.judge == "prom"  # the server's first judge that grades


def test_grade_errors_are_typed_and_a_bad_request_never_leaves() -> None:
    service = served()
    with client(service) as judges:
        with pytest.raises(UnprocessableEntityError) as refused:
            judges.grade("i", "r", "rubric", judge="panda")  # pairwise only
        assert refused.value.code == "invalid_option" and "cannot do absolute" in str(refused.value)
        service.failures = [503] * 4
        with pytest.raises(ServiceUnavailableError):
            judges.grade("i", "r", "rubric")
        requests = len(service.requests)
        with pytest.raises(ValidationError, match="rubric"):
            judges.grade("i", "r", "")
        with pytest.raises(ValidationError, match="swapp"):
            judges.grade("i", "r", "rubric", options={"swapp": True})
        assert len(service.requests) == requests


def test_an_unparsed_grade_is_a_result_without_a_score() -> None:
    service = served()
    service.grader = lambda body: {"status": "unparsed", "raw": "I would say four-ish"}
    with client(service) as judges:
        result = judges.grade("i", "r", "rubric")
    assert (result.status, result.score, result.raw) == ("unparsed", None, "I would say four-ish")


async def test_the_async_client_sends_the_same_bodies() -> None:
    service = served()
    sync = served()
    async with AsyncPandaLMClient("http://judge", transport=service.transport(), retry=FAST) as judges:
        await judges.compare("i", "aa", "b", judge=["panda", "lm"], rubric="r", reference="ref")
        await judges.batch([pair(0), pair(1)], judge="lm")
        graded = await judges.grade("i", "a response", "rubric", judge="prom", reference="x")
    with PandaLMClient("http://judge", transport=sync.transport(), retry=FAST) as judges:
        judges.compare("i", "aa", "b", judge=["panda", "lm"], rubric="r", reference="ref")
        judges.batch([pair(0), pair(1)], judge="lm")
        judges.grade("i", "a response", "rubric", judge="prom", reference="x")
    assert service.bodies == sync.bodies
    assert graded.score == 2 and graded.judge == "prom"
