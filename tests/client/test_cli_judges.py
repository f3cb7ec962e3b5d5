"""`--judge` on every command that judges, a jury, and the judges recorded in reports, against the scripted service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.client.fake_service import FakeService, Run, judge, prefer_longer
from tests.client.test_cli import batches, outputs, write_jsonl

PAIR = ["--instruction", "Say hi.", "--response1", "Hello there.", "--response2", "Hi"]


@pytest.fixture
def served(service: FakeService) -> FakeService:
    service.judges = [judge("panda"), judge("prom", "pairwise", "absolute", family="prometheus2"), judge("lm")]
    return service


def sent(service: FakeService, path: str) -> list[dict[str, Any]]:
    return [body for request, body in zip(service.requests, service.bodies, strict=True) if request.url.path == path]


def test_compare_sends_one_judge_or_a_jury_and_says_which_judged(pandalm: Run, served: FakeService) -> None:
    code, out, _ = pandalm("compare", *PAIR, "--judge", "prom", "--rubric", "Is it warm?", "--reference", "Hello!")
    assert code == 0 and "judge: prom: fake-judge" in out
    code, out, _ = pandalm("compare", *PAIR, "--judge", "panda", "--judge", "lm")
    assert code == 0
    assert "jury: panda, lm (100% of them gave the majority's verdict)" in out
    assert "  lm: response 1 is better" in out
    first, second = sent(served, "/compare")
    assert (first["judge"], first["rubric"], first["reference"]) == ("prom", "Is it warm?", "Hello!")
    assert second["judge"] == ["panda", "lm"] and "rubric" not in second
    code, out, _ = pandalm("compare", *PAIR, "--judge", "lm", "--json")
    assert json.loads(out)["judge"] == "lm"


def test_a_judge_the_service_does_not_serve_is_exit_2_before_judging(pandalm: Run, served: FakeService) -> None:
    code, _, err = pandalm("compare", *PAIR, "--judge", "panda", "--judge", "gpt")
    assert code == 2
    assert err.startswith("pandalm: --judge gpt: http://127.0.0.1:8000 serves no judge of that name")
    assert "it serves panda (pandalm: pairwise), prom (prometheus2: pairwise/absolute), lm" in err
    assert [r.url.path for r in served.requests] == ["/info"]


def test_an_unknown_judge_refused_by_the_service_with_422_is_exit_2(pandalm: Run, service: FakeService) -> None:
    # A service whose /info lists no judges: the name goes out, and its 422 is the caller's mistake.
    error = {"code": "invalid_option", "message": "no judge named 'gpt'", "details": {"option": "judge"}}
    service.failures = [None, httpx.Response(422, json={"error": error})]
    code, _, err = pandalm("compare", *PAIR, "--judge", "gpt")
    assert code == 2
    assert err == "pandalm: the service refused the option judge (--judge): no judge named 'gpt'\n"
    assert sent(service, "/compare")[0]["judge"] == "gpt"


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--judge", "two words"], "argument --judge: expected a judge's name"),
        (["--judge", "a", "--judge", "a"], "--judge names a judge twice: a, a"),
        ([x for i in range(10) for x in ("--judge", f"j{i}")], "--judge is given 10 times: at most 9 judges"),
    ],
)
def test_a_bad_judge_flag_is_exit_2_before_any_request(
    pandalm: Run, service: FakeService, flags: list[str], says: str
) -> None:
    code, _, err = pandalm("compare", *PAIR, *flags)
    assert code == 2 and says in err
    assert service.requests == []


def test_batch_judges_the_lines_without_a_judge_with_judge(tmp_path: Path, pandalm: Run, served: FakeService) -> None:
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"instruction": "T.", "response1": "long answer", "response2": "b"}, {"instruction": "T.", "response1": "a",
          "response2": "bb", "judge": "lm"}],
    )  # fmt: skip
    out = tmp_path / "verdicts.jsonl"
    code, _, _ = pandalm("batch", str(pairs), "-o", str(out), "--judge", "panda", "--judge", "prom")
    assert code == 0
    assert [b["judge"] for b in batches(served)] == [["panda", "prom"]]
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["judge"] for r in results] == [["panda", "prom"], "lm"]


def test_gate_records_the_jury_and_keeps_each_judges_verdicts_apart(
    tmp_path: Path, pandalm: Run, served: FakeService
) -> None:
    base = outputs(tmp_path / "base.jsonl", 60, lambda i: f"answer {i}")
    cand = outputs(tmp_path / "cand.jsonl", 60, lambda i: f"answer {i}")
    flags = ["--baseline", str(base), "--candidate", str(cand), "--out", str(tmp_path / "r"),
             "--log", str(tmp_path / "log.jsonl")]  # fmt: skip
    code, out, _ = pandalm("gate", *flags, "--judge", "panda", "--judge", "lm")
    assert code == 0, out
    assert all(b["judge"] == ["panda", "lm"] for b in batches(served))
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["judge"]["name"] == ["panda", "lm"]
    assert report["judge"]["model"] == "panda-model, lm-model"
    assert [j["name"] for j in report["judge"]["judges"]] == ["panda", "lm"]
    assert "judged by the jury `panda`, `lm`" in (tmp_path / "r" / "summary.md").read_text()
    assert '<property name="judge.name" value="panda, lm" />' in (tmp_path / "r" / "junit.xml").read_text()
    judged = sum(len(b["items"]) for b in batches(served))
    pandalm("gate", *flags, "--judge", "panda", "--judge", "lm")  # the same jury: every verdict from the log
    assert sum(len(b["items"]) for b in batches(served)) == judged == 60
    pandalm("gate", *flags, "--judge", "prom")  # another judge: judged again, not the jury's verdicts reused
    assert sum(len(b["items"]) for b in batches(served)) == 120
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["judge"]["name"] == "prom" and report["judge"]["template_version"] == "prometheus2-v1"


def test_gate_refuses_a_demo_judge_named_by_judge(tmp_path: Path, pandalm: Run, served: FakeService) -> None:
    served.judges.append(judge("toy", demo=True))
    base = outputs(tmp_path / "base.jsonl", 5, lambda i: f"answer {i}")
    code, _, err = pandalm("gate", "--baseline", str(base), "--candidate", str(base), "--judge", "toy",
                           "--out", str(tmp_path / "r"), "--log", str(tmp_path / "log.jsonl"))  # fmt: skip
    assert code == 2 and "demo judge(s) toy" in err and "refusing to gate on the demo judge" in err
    assert batches(served) == []


def test_rank_sends_the_judge_and_records_it(tmp_path: Path, pandalm: Run, served: FakeService) -> None:
    files = [str(outputs(tmp_path / f"{n}.jsonl", 5, n.__mul__)) for n in ("a", "bb")]
    table = tmp_path / "rank.json"
    code, _, _ = pandalm("rank", *files, "--judge", "lm", "--json", str(table), "--bootstrap", "20",
                         "--log", str(tmp_path / "log.jsonl"))  # fmt: skip
    assert code == 0
    assert [b["judge"] for b in batches(served)] == ["lm"]
    assert json.loads(table.read_text())["judge"]["name"] == "lm"


def gold_test_set(tmp_path: Path, data_dir: Path, count: int) -> tuple[Path, dict[str, str]]:
    """The first `count` items of PandaLM's test set, and each item's majority label as a verdict, by id."""
    from pandalm_client.testset import LABEL_VERDICTS, load_testset

    testset = tmp_path / "testset.json"
    testset.write_text(json.dumps(json.loads((data_dir / "testset-v1.json").read_text())[:count]))
    return testset, {str(item.idx): LABEL_VERDICTS[item.gold] for item in load_testset(testset)}


def test_eval_compares_judges_side_by_side(
    tmp_path: Path, pandalm: Run, served: FakeService, pandalm_data_dir: Path
) -> None:
    testset, gold = gold_test_set(tmp_path, pandalm_data_dir, 40)

    def by_judge(item: dict[str, Any], index: int | None) -> dict[str, Any]:
        # `panda` agrees with the humans on every item, `lm` prefers the longer response, `prom` is never parsed.
        result = prefer_longer(item, index)
        if item["judge"] == "panda":
            return {**result, "verdict": gold[item["id"]]}
        if item["judge"] == "prom":
            return {**result, "status": "unparsed", "verdict": None, "raw": "?"}
        return result

    served.judge = by_judge
    flags = ["eval", str(testset), "--judge", "lm", "--judge", "panda", "--judge", "prom"]
    code, out, _ = pandalm(*flags, "--json", "--results", str(tmp_path / "judged.jsonl"))
    assert code == 0
    lm, panda, prom = json.loads(out)
    assert [lm["judge"], panda["judge"], prom["judge"]] == ["lm", "panda", "prom"]
    assert (panda["accuracy"], panda["kappa"], panda["unparsed_share"]) == (1.0, 1.0, 0.0)
    assert (prom["accuracy"], prom["without_verdict"], prom["unparsed_share"]) == (0.0, 40, 1.0)
    assert 0 < lm["accuracy"] < 1 and lm["n"] == 40
    assert panda["against"]["judge"] == "lm" and "against" not in lm
    assert panda["against"]["mcnemar"]["only_second_right"] == 0
    assert sorted(b["judge"] for b in batches(served)) == ["lm", "panda", "prom"]
    for name in ("lm", "panda", "prom"):
        assert len((tmp_path / f"judged.{name}.jsonl").read_text().splitlines()) == 40
    code, out, _ = pandalm(*flags)
    assert code == 0
    header, *rows = out.splitlines()[2:6]
    assert header.split()[:5] == ["judge", "accuracy", "macro", "F1", "kappa"]
    assert rows[1].startswith("panda  1.0000") and rows[2].rstrip().endswith("100.0%    0.0%")
    assert "most accurate: panda; against lm, the next:" in out and "McNemar exact p" in out


def test_eval_with_one_judge_is_todays_report_naming_it(
    tmp_path: Path, pandalm: Run, served: FakeService, pandalm_data_dir: Path
) -> None:
    testset, _ = gold_test_set(tmp_path, pandalm_data_dir, 10)
    code, out, _ = pandalm("eval", str(testset), "--json", "--judge", "prom")
    report = json.loads(out)
    assert code == 0 and report["judge"] == "prom" and report["n"] == 10 and "intervals" in report
    assert [b["judge"] for b in batches(served)] == ["prom"]
    code, _, err = pandalm("eval", str(testset), "--judge", "prom", "--from-results", str(testset))
    assert code == 2 and "give one" in err
    code, _, err = pandalm("eval", str(testset), "--judge", "prom", "--judge", "lm", "--against", str(testset))
    assert code == 2 and "--against compares with one deployment" in err
    served.judges.append(judge("grader", "absolute", family="prometheus2"))
    code, _, err = pandalm("eval", str(testset), "--judge", "grader")
    assert code == 2 and "--judge grader: that judge cannot do pairwise judging" in err


def test_eval_takes_a_teams_own_labelled_pairs(tmp_path: Path, pandalm: Run, served: FakeService) -> None:
    labels = ["response1", "response1", "tie", "response1"]
    rows = [
        {"id": f"ours-{i}", "instruction": f"T{i}.", "response1": "x" * (4 - i), "response2": "x" * i, "label": label}
        for i, label in enumerate(labels)
    ]
    pairs = write_jsonl(tmp_path / "ours.jsonl", rows)
    code, out, _ = pandalm("eval", str(pairs), "--json", "--judge", "panda", "--judge", "lm")
    assert code == 0
    panda, lm = json.loads(out)
    # The scripted judge prefers the longer response: right on the first three pairs, wrong on the fourth.
    assert panda["accuracy"] == lm["accuracy"] == 0.75 and panda["n"] == 4
    assert [i["id"] for b in batches(served) for i in b["items"]][:4] == ["ours-0", "ours-1", "ours-2", "ours-3"]
    pairs.write_text(json.dumps({**rows[0], "label": "both"}) + "\n")
    code, _, err = pandalm("eval", str(pairs), "--judge", "panda")
    assert code == 2
    assert "not a file of labelled pairs (line 1: label 'both' is not response1, response2 or tie" in err


def test_a_demo_judge_is_warned_about_whether_default_or_named(pandalm: Run, service: FakeService) -> None:
    service.demo = True  # a service that lists no judges: /info's `demo` describes its one judge
    code, _, err = pandalm("compare", *PAIR)
    assert code == 0 and "serves the random-weight demo judge (fake-judge): its verdicts are noise" in err
    service.demo = False
    service.judges = [judge("panda"), judge("toy", demo=True)]
    assert "warning" not in pandalm("compare", *PAIR, "--judge", "panda")[2]
    code, _, err = pandalm("compare", *PAIR, "--judge", "panda", "--judge", "toy")
    assert code == 0 and "serves demo judge(s) toy: its verdicts are noise" in err
