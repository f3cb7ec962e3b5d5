"""Exit codes that mean what they say, against the scripted service: 2 for the caller's mistakes, 4 for the judge's.

tests/client/test_exit_codes_live.py runs the same cases through the real service, as CI runs the command.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest

from pandalm_client.models import CompareResult, OrderResult
from tests.client.fake_service import FakeService, Run, prefer_longer
from tests.client.test_cli import batches, outputs, write_jsonl


def gate_files(tmp_path: Path, count: int = 30, candidate: str = "no") -> list[str]:
    base = outputs(tmp_path / "base.jsonl", count, lambda i: f"a thorough answer {i}")
    cand = outputs(tmp_path / "cand.jsonl", count, lambda i: candidate)
    return ["--baseline", str(base), "--candidate", str(cand), "--out", str(tmp_path / "r"),
            "--log", str(tmp_path / "log.jsonl")]  # fmt: skip


def test_url_and_api_key_are_taken_after_the_subcommand_too(pandalm: Run, service: FakeService) -> None:
    pair = ["--instruction", "i", "--response1", "a", "--response2", "b"]
    assert pandalm("compare", *pair, "--url", "http://after:1", "--api-key", "k2")[0] == 0
    assert pandalm("--url", "http://before:1", "--api-key", "k1", "compare", *pair)[0] == 0
    assert service.connections == [("http://after:1", "k2"), ("http://before:1", "k1")]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--margin", "0.7"], "--margin"),
        (["--margin", "half"], "--margin"),
        (["--confidence", "1.5"], "--confidence"),
        (["--max-error-rate", "-1"], "--max-error-rate"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
        (["--preset", "nucleus"], "--preset"),
    ],
)
def test_a_bad_flag_value_is_exit_2_before_anything_is_judged(
    tmp_path: Path, pandalm: Run, service: FakeService, capsys: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    code, _, err = pandalm("gate", *gate_files(tmp_path), *flags)
    assert code == 2 and f"argument {named}" in err
    assert service.requests == []


def test_a_plan_for_a_superiority_test_says_an_equal_candidate_never_passes(tmp_path: Path, pandalm: Run) -> None:
    code, out, _ = pandalm("gate", *gate_files(tmp_path), "--plan", "--margin", "0")
    assert code == 0 and "an equal candidate never passes" in out


def test_rank_refuses_a_bad_bootstrap_or_confidence(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    files = [str(outputs(tmp_path / f"{n}.jsonl", 3, lambda i: "x")) for n in ("a", "b")]
    assert pandalm("rank", *files, "--bootstrap", "0")[0] == 2
    assert pandalm("rank", *files, "--confidence", "1")[0] == 2
    assert service.requests == []


@pytest.mark.parametrize("url", ["judge:8000", "127.0.0.1:8000", "ftp://judge", "http://", "http://judge:port"])
def test_a_url_that_is_not_http_is_exit_2(pandalm: Run, service: FakeService, url: str) -> None:
    code, _, err = pandalm("compare", "--instruction", "i", "--response1", "a", "--response2", "b", "--url", url)
    assert code == 2 and err.startswith(f"pandalm: --url {url!r}") and err.count("\n") == 1
    assert service.connections == []


def test_a_bad_url_in_the_environment_is_named_as_such(
    pandalm: Run, service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PANDALM_URL", "judge.internal:8000")
    code, _, err = pandalm("compare", "--instruction", "i", "--response1", "a", "--response2", "b")
    assert code == 2 and err.startswith("pandalm: PANDALM_URL 'judge.internal:8000' is not an http")


def test_401_is_exit_2_and_says_which_key_was_sent(
    tmp_path: Path, pandalm: Run, service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.api_key = "right"
    monkeypatch.delenv("PANDALM_API_KEY", raising=False)
    code, _, err = pandalm("gate", *gate_files(tmp_path))
    assert code == 2 and "HTTP 401" in err and "no API key was sent: set PANDALM_API_KEY" in err
    monkeypatch.setenv("PANDALM_API_KEY", "wrong")
    code, _, err = pandalm("gate", *gate_files(tmp_path))
    assert code == 2 and "the API key from PANDALM_API_KEY was refused" in err
    code, _, err = pandalm("gate", *gate_files(tmp_path), "--api-key", "also-wrong")
    assert code == 2 and "the API key from --api-key was refused" in err
    assert "wrong" not in err.replace("--api-key", "")  # the key itself is never printed
    assert pandalm("gate", *gate_files(tmp_path), "--api-key", "right")[0] == 1


def test_403_is_exit_2_too(pandalm: Run, service: FakeService) -> None:
    error = {"code": "unauthorized", "message": "this key may not judge", "details": None}
    service.failures = [httpx.Response(403, json={"error": error})]
    code, _, err = pandalm("compare", "--instruction", "i", "--response1", "a", "--response2", "b", "--api-key", "k")
    assert code == 2 and "HTTP 403" in err and "the API key from --api-key was refused" in err


def test_a_refused_option_is_exit_2_naming_it(pandalm: Run, service: FakeService) -> None:
    error = {"code": "invalid_option", "message": "max_new_tokens 600 exceeds this server's limit of 512",
             "details": {"option": "max_new_tokens", "value": 600, "limit": 512}}  # fmt: skip
    service.failures = [httpx.Response(422, json={"error": error})]
    code, _, err = pandalm("compare", "--instruction", "i", "--response1", "a", "--response2", "b")
    assert (code, err) == (
        2,
        f"pandalm: the service refused the option max_new_tokens (--max-new-tokens): {error['message']}\n",
    )


def test_the_service_failing_is_exit_4(pandalm: Run, service: FakeService) -> None:
    service.failures = [500]
    code, _, err = pandalm("compare", "--instruction", "i", "--response1", "a", "--response2", "b")
    assert code == 4 and "HTTP 500" in err and err.count("\n") == 1


def test_an_unexpected_error_is_one_line_and_exit_4_with_the_traceback_on_debug(
    pandalm: Run, service: FakeService
) -> None:
    def broken(item: dict[str, Any], index: int | None) -> dict[str, Any]:
        raise RuntimeError("a bug")

    service.judge = broken
    pair = ["compare", "--instruction", "i", "--response1", "a", "--response2", "b"]
    code, _, err = pandalm(*pair)
    assert (code, err) == (4, "pandalm: unexpected error: RuntimeError: a bug (--debug prints the traceback)\n")
    code, _, err = pandalm(*pair, "--debug")
    assert code == 4 and "Traceback (most recent call last)" in err


def test_batch_checks_every_line_before_judging(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"instruction": "i", "response1": "a", "response2": "b"},
                                                  {"instruction": "i", "response1": "a"}])  # fmt: skip
    code, _, err = pandalm("batch", str(pairs), "-o", str(tmp_path / "out.jsonl"))
    assert code == 2 and err.startswith(f"pandalm: {pairs}:2: field 'response2'") and "required" in err
    assert batches(service) == []


def judge_failing(codes: dict[int, str]) -> Any:
    """The longer response wins, except for the items numbered in `codes`, which fail with that error."""

    def judge(item: dict[str, Any], index: int | None) -> dict[str, Any]:
        number = int("".join(c for c in item["instruction"] if c.isdigit()))
        if number not in codes:
            return prefer_longer(item, index)
        error = {"code": codes[number], "message": f"scripted {codes[number]}", "details": None}
        return {"id": item.get("id"), "index": index, "status": "error", "error": error}

    return judge


def test_batch_lists_the_failed_items_and_exits_by_whose_fault_it_was(
    tmp_path: Path, pandalm: Run, service: FakeService
) -> None:
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"instruction": f"T{i}.", "response1": "a", "response2": "bb"}
                                                  for i in range(8)])  # fmt: skip
    service.judge = judge_failing({2: "prompt_too_long", 5: "prompt_too_long"})
    code, _, err = pandalm("batch", str(pairs), "-o", str(tmp_path / "one.jsonl"))
    assert code == 2
    assert f"{pairs}:3 (id line:3): prompt_too_long: scripted prompt_too_long" in err
    assert f"{pairs}:6 (id line:6)" in err
    service.judge = judge_failing({4: "engine_error", 5: "prompt_too_long"})
    code, _, err = pandalm("batch", str(pairs), "-o", str(tmp_path / "two.jsonl"))
    assert code == 4 and f"{pairs}:5 (id line:5): engine_error" in err


def test_gate_lists_the_items_without_a_verdict(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    service.judge = judge_failing(dict.fromkeys(range(0, 30, 3), "engine_error"))
    code, out, err = pandalm("gate", *gate_files(tmp_path))
    assert code == 4 and "JUDGE FAILURE" in out
    assert "10 item(s) without a verdict; the first 5:" in err
    assert f"{tmp_path / 'cand.jsonl'}:4 (id q3): engine_error: scripted engine_error" in err


def test_every_command_warns_of_the_demo_judge_and_the_gate_refuses_it(
    tmp_path: Path, pandalm: Run, service: FakeService
) -> None:
    service.demo = True
    code, _, err = pandalm("compare", "--instruction", "i", "--response1", "a", "--response2", "b")
    assert code == 0 and "warning" in err and "demo judge" in err
    files = gate_files(tmp_path)
    code, _, err = pandalm("gate", *files)
    assert code == 2 and "refusing to gate on the demo judge" in err and "--allow-demo" in err
    assert batches(service) == []
    code, _, err = pandalm("gate", *files, "--allow-demo")
    assert code == 1 and "demo judge" in err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["judge"]["demo"] is True
    assert "**Demo judge.**" in (tmp_path / "r" / "summary.md").read_text()
    suite = ET.parse(tmp_path / "r" / "junit.xml").getroot()
    assert suite.find("properties/property[@name='judge.demo']").get("value") == "true"  # type: ignore[union-attr]


def test_a_real_judges_report_says_it_is_no_demo(tmp_path: Path, pandalm: Run) -> None:
    code, _, err = pandalm("gate", *gate_files(tmp_path))
    assert code == 1 and "demo" not in err
    assert json.loads((tmp_path / "r" / "report.json").read_text())["judge"]["demo"] is False


def test_each_junit_case_says_why_the_prompt_lost(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    def with_orders(item: dict[str, Any], index: int | None) -> dict[str, Any]:
        result = CompareResult.model_validate(prefer_longer(item, index))
        orders = [OrderResult(order=o, verdict=result.verdict, status="ok", raw="", finish_reason="stop")
                  for o in ("original", "swapped")]  # fmt: skip
        return result.model_copy(update={"orders": orders, "consistent": True}).model_dump(mode="json")

    service.judge = with_orders
    files = gate_files(tmp_path, count=30, candidate="")
    candidate = Path(files[3])
    rows = [json.loads(line) for line in candidate.read_text().splitlines()]
    rows[0]["output"] = "a much longer and better answer than the baseline's"
    write_jsonl(candidate, rows)
    assert pandalm("gate", *files)[0] == 1
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "r" / "junit.xml").getroot().iter("testcase")}
    lost, won = cases["q1"], cases["q0"]
    properties = {p.get("name"): p.get("value") for p in lost.iter("property")}
    assert properties == {"verdict": "baseline", "reason": "response2 is longer",
                          "order.original": "baseline", "order.swapped": "baseline"}  # fmt: skip
    failure = lost.find("failure")
    assert failure is not None and failure.get("message") == "the baseline is better: response2 is longer"
    assert "order.swapped: baseline" in (failure.text or "")
    system_out = won.find("system-out")
    assert system_out is not None and "verdict: candidate" in (system_out.text or "")
    assert "response 1 is the candidate" in (system_out.text or "")
    assert (system_out.text or "").endswith(": response1 is longer")
