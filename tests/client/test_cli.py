"""The `pandalm` command line against a scripted service (the client's mock transport).

tests/client/test_gate_end_to_end.py runs the gate through the real service.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import pandalm_client.cli as cli
from pandalm_client import PandaLMClient
from tests.client.conftest import FAST
from tests.client.fake_service import FakeService, Run, prefer_longer


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def outputs(path: Path, count: int, output: Callable[[int], str]) -> Path:
    return write_jsonl(path, [{"id": f"q{i}", "instruction": f"Task {i}.", "output": output(i)} for i in range(count)])


def batches(service: FakeService) -> list[dict[str, Any]]:
    return [b for b in service.bodies if b and "items" in b]


def test_compare_prints_the_verdict_and_reason(pandalm: Run) -> None:
    code, out, _ = pandalm(
        "compare", "--instruction", "Say hi.", "--response1", "Hi", "--response2", "Hello!", "--swap"
    )
    assert code == 0
    assert out.startswith("verdict: response 2 is better\n")
    assert "reason: response2 is longer" in out
    code, out, _ = pandalm("compare", "--instruction", "i", "--response1", "a", "--response2", "b", "--json")
    assert json.loads(out)["verdict"] == "tie"


def test_gate_passes_a_candidate_equal_to_its_baseline(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    base = outputs(tmp_path / "base.jsonl", 60, lambda i: f"answer {i}")
    cand = outputs(tmp_path / "cand.jsonl", 60, lambda i: f"answer {i}")
    code, out, _ = pandalm("gate", "--baseline", str(base), "--candidate", str(cand), "--out", str(tmp_path / "r"),
                           "--log", str(tmp_path / "log.jsonl"))  # fmt: skip
    assert code == 0, out
    assert "PASS" in out
    assert all(b["options"]["swap"] is True for b in batches(service))
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["outcome"] == "pass"
    assert report["statistics"]["ties"] == 60
    assert report["judge"]["model"] == "fake-judge"
    assert report["mode"] == "fixed-n" and "Tango" in report["method"]
    assert "choose n before looking" in report["method"]


def test_gate_sequential_mode_says_so_and_allows_re_runs(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    flags = ["--out", str(tmp_path / "r"), "--log", str(tmp_path / "log.jsonl"), "--sequential"]
    few = [str(outputs(tmp_path / f"{name}.jsonl", 60, lambda i: f"answer {i}")) for name in ("base", "cand")]
    code, out, _ = pandalm("gate", "--baseline", few[0], "--candidate", few[1], *flags)
    assert code == 3 and "sequential" in out  # 60 ties are not yet enough for every look to be covered
    more = [str(outputs(tmp_path / f"{name}.jsonl", 200, lambda i: f"answer {i}")) for name in ("base", "cand")]
    code, out, _ = pandalm("gate", "--baseline", more[0], "--candidate", more[1], *flags)
    assert code == 0, out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["mode"] == "sequential" and "Waudby-Smith" in report["method"]
    assert report["prompts_needed_at_this_tie_rate"] is None


def test_gate_refuses_a_judge_whose_orders_disagree_too_often(
    tmp_path: Path, pandalm: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    def undecided(item: dict[str, Any], index: int | None) -> dict[str, Any]:
        # Every fifth prompt's orders disagree: scored as a tie, 20% inconsistent.
        result = prefer_longer(item, index)
        return {**result, "consistent": not item["id"].endswith(("0", "5"))}

    monkeypatch.setattr(cli, "PandaLMClient", lambda url, api_key=None: PandaLMClient(
        url, api_key=api_key, transport=FakeService(undecided).transport(), retry=FAST))  # fmt: skip
    base = outputs(tmp_path / "base.jsonl", 100, lambda i: f"answer {i}")
    cand = outputs(tmp_path / "cand.jsonl", 100, lambda i: f"answer {i}")
    flags = ["--baseline", str(base), "--candidate", str(cand), "--out", str(tmp_path / "r"),
             "--log", str(tmp_path / "log.jsonl")]  # fmt: skip
    code, out, err = pandalm("gate", *flags)
    assert code == 4 and "disagreed on 20.0% of the prompts" in err
    assert "JUDGE INCONSISTENT" in out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["inconsistency_rate"] == 0.2 and report["max_inconsistent_rate"] == 0.1
    assert pandalm("gate", *flags, "--max-inconsistent-rate", "0.25")[0] == 0
    code, _, err = pandalm("gate", *flags, "--max-inconsistent-rate", "1.5")
    assert code == 2 and "--max-inconsistent-rate: expected a number in [0, 1], got 1.5" in err


def test_gate_fails_a_clearly_worse_candidate_and_reports_the_losses(
    tmp_path: Path, pandalm: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    base = outputs(tmp_path / "base.jsonl", 30, lambda i: f"a thorough answer {i}")
    cand = outputs(tmp_path / "cand.jsonl", 30, lambda i: "no")
    out_dir = tmp_path / "r"
    code, out, _ = pandalm("gate", "--baseline", str(base), "--candidate", str(cand), "--out", str(out_dir),
                           "--log", str(tmp_path / "log.jsonl"))  # fmt: skip
    assert code == 1
    assert "FAIL" in out and "Worst losses" in out
    assert "FAIL" in summary.read_text()
    junit = (out_dir / "junit.xml").read_text()
    assert 'tests="31"' in junit and 'failures="31"' in junit  # 30 losses and the decision
    assert (out_dir / "summary.md").read_text().startswith("## pandalm gate: FAIL")


def test_gate_is_inconclusive_on_too_few_prompts_and_plan_says_so(
    tmp_path: Path, pandalm: Run, service: FakeService
) -> None:
    base = outputs(tmp_path / "base.jsonl", 6, lambda i: f"answer {i}")
    cand = outputs(tmp_path / "cand.jsonl", 6, lambda i: f"answer {i}")
    flags = ["--baseline", str(base), "--candidate", str(cand), "--out", str(tmp_path / "r"),
             "--log", str(tmp_path / "log.jsonl")]  # fmt: skip
    code, out, _ = pandalm("gate", *flags, "--plan")
    assert code == 0
    assert "too few: expect inconclusive" in out and "80% of the time" in out
    code, out, _ = pandalm("gate", *flags, "--plan", "--power", "0.9")
    assert "90% of the time" in out
    assert service.requests == []  # planned before judging anything
    code, out, _ = pandalm("gate", *flags)
    assert code == 3 and "INCONCLUSIVE" in out
    # After a run, the plan also gives the figure at the tie rate that run observed (all ties here).
    code, out, _ = pandalm("gate", *flags, "--plan")
    assert "observed 100%:     42  too few" in out  # 42 ties alone pass
    assert pandalm("gate", *flags, "--inconclusive", "pass")[0] == 0
    assert pandalm("gate", *flags, "--inconclusive", "fail")[0] == 1


def test_a_rerun_judges_only_what_changed(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    base = outputs(tmp_path / "base.jsonl", 10, lambda i: f"answer {i}")
    cand = outputs(tmp_path / "cand.jsonl", 10, lambda i: f"answer {i}")
    flags = ["--baseline", str(base), "--out", str(tmp_path / "r"), "--log", str(tmp_path / "log.jsonl")]
    pandalm("gate", *flags, "--candidate", str(cand))
    judged = sum(len(b["items"]) for b in batches(service))
    changed = outputs(tmp_path / "cand2.jsonl", 10, lambda i: f"answer {i}" if i else "a changed answer")
    pandalm("gate", *flags, "--candidate", str(changed))
    assert judged == 10
    assert sum(len(b["items"]) for b in batches(service)) == 11


def test_a_judge_that_returns_garbage_is_exit_4(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    service.judge = lambda item, index: {"id": item.get("id"), "index": index, "status": "unparsed", "raw": "?!"}
    base = outputs(tmp_path / "base.jsonl", 30, lambda i: f"answer {i}")
    cand = outputs(tmp_path / "cand.jsonl", 30, lambda i: f"answer {i}")
    code, out, _ = pandalm("gate", "--baseline", str(base), "--candidate", str(cand), "--out", str(tmp_path / "r"),
                           "--log", str(tmp_path / "log.jsonl"))  # fmt: skip
    assert code == 4 and "JUDGE FAILURE" in out
    assert 'errors="31"' in (tmp_path / "r" / "junit.xml").read_text()


def test_bad_input_files_are_one_line_errors_naming_the_line(tmp_path: Path, pandalm: Run) -> None:
    base = outputs(tmp_path / "base.jsonl", 3, lambda i: "x")
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"id": "q0", "instruction": "Task 0.", "output": "y"}] * 2)
    code, _, err = pandalm("gate", "--baseline", str(base), "--candidate", str(dup))
    assert (code, err) == (2, f"pandalm: {dup}:2: duplicate id 'q0' (first on line 1)\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "q0", "instruction": "Task 0.", "output": "y"}\n{not json\n')
    code, _, err = pandalm("gate", "--baseline", str(base), "--candidate", str(broken))
    assert code == 2 and err.startswith(f"pandalm: {broken}:2: not valid JSON")
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "q1", "instruction": "Another task.", "output": "y"}])
    code, _, err = pandalm("gate", "--baseline", str(base), "--candidate", str(other))
    assert code == 2 and "another instruction" in err
    code, _, err = pandalm("gate", "--baseline", str(tmp_path / "missing.jsonl"), "--candidate", str(base))
    assert code == 2 and "missing.jsonl: cannot read it" in err


def test_an_unreachable_service_is_one_line_and_exit_4(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    service.failures = [httpx.ConnectError("refused")] * 3
    code, _, err = pandalm("compare", "--instruction", "i", "--response1", "a", "--response2", "b")
    assert code == 4
    assert err.count("\n") == 1 and err.startswith("pandalm: cannot reach the PandaLM service")


def test_batch_resumes_judging_only_what_is_missing(tmp_path: Path, pandalm: Run, service: FakeService) -> None:
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"instruction": f"T{i}.", "response1": "long answer" if i % 2 else "a", "response2": "b"} for i in range(8)],
    )
    out = tmp_path / "verdicts.jsonl"
    # An interrupted earlier run: three results, one of them failed, and a torn last line.
    earlier = [{"id": "line:1", "status": "ok", "verdict": "tie"}, {"id": "line:3", "status": "error"},
               {"id": "line:2", "status": "ok", "verdict": "response1"}]  # fmt: skip
    out.write_text("".join(json.dumps(r) + "\n" for r in earlier) + '{"id": "line:4", "sta')
    code, stdout, _ = pandalm("batch", str(pairs), "-o", str(out))
    assert code == 0, stdout
    assert sorted(i["id"] for b in batches(service) for i in b["items"]) == [f"line:{n}" for n in (3, 4, 5, 6, 7, 8)]
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in results] == [f"line:{n}" for n in range(1, 9)]
    assert results[0]["verdict"] == "tie"  # kept from the earlier run
    assert "8 pairs (6 judged now, 2 from" in stdout
    service.bodies.clear()
    assert pandalm("batch", str(pairs), "-o", str(out))[0] == 0
    assert batches(service) == []  # nothing left to judge


def test_eval_reports_agreement_with_the_human_labels(tmp_path: Path, pandalm: Run, pandalm_data_dir: Path) -> None:
    items = json.loads((pandalm_data_dir / "testset-v1.json").read_text())[:40]
    testset = tmp_path / "testset.json"
    testset.write_text(json.dumps(items))
    code, out, _ = pandalm("eval", str(testset), "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) >= {"n", "accuracy", "macro_precision", "macro_recall", "macro_f1", "kappa", "confusion"}
    assert report["n"] == 40 and 0 <= report["accuracy"] <= 1
    assert sum(map(sum, report["confusion"]["counts"])) == 40
    code, out, _ = pandalm("eval", str(testset))
    assert "Cohen's kappa" in out
    testset.write_text('[{"idx": 1}]')
    code, _, err = pandalm("eval", str(testset))
    assert code == 2 and "not a test set" in err and "item 0 (from 0) has no field 'instruction'" in err


def judged_testset(tmp_path: Path, pandalm: Run, data_dir: Path, count: int) -> tuple[Path, Path, dict[str, Any]]:
    """The first `count` items of PandaLM's test set judged by the service: the set, the results, the report."""
    testset = tmp_path / "testset.json"
    testset.write_text(json.dumps(json.loads((data_dir / "testset-v1.json").read_text())[:count]))
    judged = tmp_path / "judged.jsonl"
    code, out, _ = pandalm("eval", str(testset), "--json", "--results", str(judged))
    assert code == 0
    return testset, judged, json.loads(out)


def test_eval_scores_a_results_file_without_calling_the_service(
    tmp_path: Path, pandalm: Run, service: FakeService, pandalm_data_dir: Path
) -> None:
    testset, judged, served = judged_testset(tmp_path, pandalm, pandalm_data_dir, 30)
    service.bodies.clear()
    # Results carry the test set's idx as their id, in any order: matched by id, not position.
    lines = judged.read_text().splitlines()
    rows = [{**json.loads(line), "id": str(json.loads(line)["idx"]), "index": None} for line in lines]
    shuffled = write_jsonl(tmp_path / "shuffled.jsonl", rows[::-1])
    code, out, _ = pandalm("eval", str(testset), "--json", "--from-results", str(shuffled))
    assert code == 0 and service.bodies == []
    assert json.loads(out) == served
    # A pair missing from the file counts as without a verdict, never as a guess.
    write_jsonl(shuffled, rows[1:])
    code, out, _ = pandalm("eval", str(testset), "--json", "--from-results", str(shuffled))
    assert code == 0 and json.loads(out)["without_verdict"] == served["without_verdict"] + 1
    shuffled.write_text('{"status": "maybe"}\n')
    code, _, err = pandalm("eval", str(testset), "--from-results", str(shuffled))
    assert code == 2 and "not a compare result" in err


def test_eval_against_another_deployment(tmp_path: Path, pandalm: Run, pandalm_data_dir: Path) -> None:
    testset, judged, report = judged_testset(tmp_path, pandalm, pandalm_data_dir, 50)
    assert set(report["intervals"]) == {"accuracy", "macro_f1", "kappa"}
    assert report["intervals"]["accuracy"]["lower"] <= report["accuracy"] <= report["intervals"]["accuracy"]["upper"]
    # The other deployment: the same verdicts, except that it gets the first ten items right.
    rows = [json.loads(line) for line in judged.read_text().splitlines()]
    verdicts = {0: "tie", 1: "response1", 2: "response2"}
    other = [{**r, "verdict": verdicts[r["gold"]]} if i < 10 else r for i, r in enumerate(rows)]
    against = write_jsonl(tmp_path / "other.jsonl", other)
    code, out, _ = pandalm("eval", str(testset), "--json", "--from-results", str(judged), "--against", str(against))
    assert code == 0
    mcnemar = json.loads(out)["against"]["mcnemar"]
    fixed = sum(1 for r in rows[:10] if r["verdict"] != verdicts[r["gold"]])
    assert (mcnemar["only_first_right"], mcnemar["only_second_right"]) == (0, fixed)
    code, out, _ = pandalm("eval", str(testset), "--from-results", str(judged), "--against", str(against))
    assert "McNemar exact p" in out and "this minus that" in out


def test_rank_orders_models_by_the_judges_preference(tmp_path: Path, pandalm: Run) -> None:
    def answers(length: int) -> Callable[[int], str]:
        return lambda i: "x" * (length + i % 3)

    files = [
        outputs(tmp_path / f"{name}.jsonl", 20, answers(n)) for name, n in (("short", 1), ("long", 30), ("middle", 10))
    ]
    table = tmp_path / "rank.json"
    code, out, _ = pandalm("rank", *map(str, files), "--json", str(table), "--heatmap", str(tmp_path / "h.png"),
                           "--bootstrap", "50", "--log", str(tmp_path / "log.jsonl"))  # fmt: skip
    assert code == 0, out
    ranking = json.loads(table.read_text())["ranking"]
    assert [r["model"] for r in ranking] == ["long", "middle", "short"]
    # The judge prefers the longer answer, so "long" never lost: said so, not given a prior-made strength.
    assert ranking[0]["record"] == "never lost" and ranking[0]["strength"] is None
    assert "never lost" in out and "log-strength differences" in out
    assert (tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    again = tmp_path / "again.json"
    pandalm("rank", *map(str, files), "--json", str(again), "--bootstrap", "50", "--log", str(tmp_path / "log.jsonl"))
    assert json.loads(again.read_text())["ranking"] == ranking  # seeded
