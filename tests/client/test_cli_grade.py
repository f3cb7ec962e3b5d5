"""`pandalm grade`: one response from flags or a file of them, its output modes and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.fake_service import FakeService, Run, grade_by_length, judge
from tests.client.test_cli import write_jsonl

ONE = ["--instruction", "Explain rain.", "--response", "Water falls from clouds.", "--rubric", "Accurate? 1-5"]


@pytest.fixture
def served(service: FakeService) -> FakeService:
    service.judges = [judge("panda"), judge("prom", "pairwise", "absolute", family="prometheus2")]
    return service


def graded(service: FakeService) -> list[dict[str, Any]]:
    return [
        body for request, body in zip(service.requests, service.bodies, strict=True) if request.url.path == "/grade"
    ]


def test_grade_prints_the_score_and_feedback(pandalm: Run, served: FakeService) -> None:
    code, out, _ = pandalm("grade", *ONE, "--reference", "Droplets fall.", "--input", "for a child", "--max-new-tokens",
                           "64")  # fmt: skip
    assert code == 0
    assert out.splitlines()[:2] == ["score: 3 (on 1-5)", "feedback: 24 characters"]
    assert "judge: prom: fake-grader" in out  # the service's first judge that grades
    assert graded(served) == [
        {
            "instruction": "Explain rain.",
            "input": "for a child",
            "response": "Water falls from clouds.",
            "rubric": "Accurate? 1-5",
            "reference": "Droplets fall.",
            "options": {"max_new_tokens": 64},
        }
    ]
    code, out, _ = pandalm("grade", *ONE, "--judge", "prom", "--json")
    assert code == 0 and json.loads(out)["score"] == 3 and graded(served)[-1]["judge"] == "prom"


def test_an_unparsed_grade_is_said_so_never_a_score(pandalm: Run, served: FakeService) -> None:
    served.grader = lambda body: {"status": "unparsed", "raw": "four, maybe"}
    code, out, _ = pandalm("grade", *ONE)
    assert code == 0 and out == "unparsed: the judge's output has no score on its scale:\nfour, maybe\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--judge", "panda"], "--judge panda: that judge cannot do absolute judging"),
        (["--judge", "gpt"], "--judge gpt: http://127.0.0.1:8000 serves no judge of that name"),
        (["--judge", "a", "--judge", "b"], None),  # once only: a later value replaces the first
    ],
)
def test_a_judge_that_cannot_grade_is_exit_2_before_grading(
    pandalm: Run, served: FakeService, args: list[str], says: str | None
) -> None:
    code, _, err = pandalm("grade", *ONE, *args)
    assert code == 2
    if says:
        assert says in err
    assert graded(served) == []


def test_the_services_422_and_5xx_are_exit_2_and_4(pandalm: Run, service: FakeService) -> None:
    error = {"code": "invalid_option", "message": "the judge 'panda' cannot grade", "details": {"option": "judge"}}
    service.failures = [None, httpx.Response(422, json={"error": error})]
    code, _, err = pandalm("grade", *ONE, "--judge", "panda")
    assert (
        code == 2 and err == "pandalm: the service refused the option judge (--judge): the judge 'panda' cannot grade\n"
    )
    service.failures = [None, 503, 503, 503]
    code, _, err = pandalm("grade", *ONE)
    assert code == 4 and "not_ready" in err


def test_grade_needs_the_flags_or_a_file_not_both(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    code, _, err = pandalm("grade", "--instruction", "i", "--response", "r")
    assert code == 2 and err == "pandalm: grade needs --rubric (or --file with one request a line)\n"
    code, _, err = pandalm("grade", *ONE, "--file", str(tmp_path / "x.jsonl"))
    assert code == 2 and "--instruction, --response, --rubric would be ignored" in err
    assert service.requests == []


def requests_file(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "responses.jsonl",
        [
            {"id": "a", "instruction": "i", "response": "short", "rubric": "r"},
            {"instruction": "i", "response": "a much longer response", "rubric": "r", "options": {"preset": "beam"}},
            {"id": "c", "instruction": "i", "response": "x" * 60, "rubric": "r", "judge": "prom2"},
        ],
    )


def test_a_file_is_graded_in_order_with_the_flags_as_defaults(
    tmp_path: Path, pandalm: Run, served: FakeService
) -> None:
    served.judges.append(judge("prom2", "absolute", family="prometheus2"))
    path = requests_file(tmp_path)
    code, out, _ = pandalm("grade", "--file", str(path), "--judge", "prom", "--json", "--max-new-tokens", "32")
    assert code == 0
    results = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["score"], r["judge"]) for r in results] == [("a", 1, "prom"), ("line:2", 3, "prom"),
                                                                    ("c", 5, "prom2")]  # fmt: skip
    bodies = sorted(graded(served), key=lambda b: b["id"])
    assert [b["options"] for b in bodies] == [{"max_new_tokens": 32}, {"max_new_tokens": 32},
                                              {"preset": "beam", "max_new_tokens": 32}]  # fmt: skip
    code, out, _ = pandalm("grade", "--file", str(path), "--judge", "prom")
    assert out.splitlines() == [
        "a: 1 (on 1-5): 5 characters",
        "line:2: 3 (on 1-5): 22 characters",
        "c: 5 (on 1-5): 60 characters",
        "3 responses: 3 graded (mean score 3.00), 0 unparsed, 0 failed",
    ]


def test_a_file_with_a_bad_line_is_exit_2_naming_it(tmp_path: Path, pandalm: Run, served: FakeService) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "i", "response": "r", "rubric": "r"},
                                                {"instruction": "i", "response": "r"}])  # fmt: skip
    code, _, err = pandalm("grade", "--file", str(path))
    assert code == 2 and err == f"pandalm: {path}:2: field 'rubric': field required\n"
    path = write_jsonl(tmp_path / "judge.jsonl", [{"instruction": "i", "response": "r", "rubric": "r", "judge": "x"}])
    code, _, err = pandalm("grade", "--file", str(path))
    assert code == 2 and "--judge x: http://127.0.0.1:8000 serves no judge of that name" in err
    assert graded(served) == []


def test_items_refused_for_their_own_sake_are_listed_and_exit_2(
    tmp_path: Path, pandalm: Run, served: FakeService
) -> None:
    def scripted(body: dict[str, Any]) -> dict[str, Any] | httpx.Response:
        if body["id"] == "a":
            return {"status": "unparsed", "raw": "?"}
        if body["id"] == "c":
            return httpx.Response(400, json={"error": {"code": "prompt_too_long", "message": "too long"}})
        return grade_by_length(body)

    served.grader = scripted
    served.judges.append(judge("prom2", "absolute", family="prometheus2"))
    code, out, err = pandalm("grade", "--file", str(requests_file(tmp_path)))
    assert code == 2
    assert "3 responses: 1 graded (mean score 3.00), 1 unparsed, 1 failed" in out
    assert "2 response(s) without a score" in err
    assert "(id a): unparsed: the judge's output has no score on its scale" in err
    assert "(id c): error: prompt_too_long: too long" in err
