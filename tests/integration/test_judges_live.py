"""Every judge family's demo judge, served together by one process on vLLM's CPU build: each answers by name,
in its own format, end to end; the grading family grades; a jury of all four returns a majority."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import FAMILY_JUDGES
from tests.support import CAPITAL_PAIR

pytestmark = pytest.mark.integration

NAMES = [judge.split("=")[0] for judge in FAMILY_JUDGES]
FAMILY = {judge.split("=")[0]: judge.split("=")[1].split(":")[0] for judge in FAMILY_JUDGES}
VERSION = {"panda": "pandalm-v1", "prom": "prometheus2-v1", "jlm": "judgelm-v1", "mt": "mtbench-v1"}


def test_info_lists_one_demo_judge_per_family(judges_service: str) -> None:
    judges = httpx.get(f"{judges_service}/info").json()["judges"]
    assert [(j["name"], j["family"], j["demo"], j["ready"]) for j in judges] == [
        (name, FAMILY[name], True, True) for name in NAMES
    ]
    assert {j["name"]: j["modes"] for j in judges}["prom"] == ["pairwise", "absolute"]


@pytest.mark.parametrize("name", NAMES)
def test_each_familys_demo_judge_compares_a_pair_in_both_orders(judges_service: str, name: str) -> None:
    body = {**CAPITAL_PAIR, "judge": name, "options": {"swap": True, "cache": False}}
    result = httpx.post(f"{judges_service}/compare", json=body, timeout=300).json()
    # The demo's output is constrained to its family's format, so every order parses with the family's parser.
    assert (result["status"], result["judge"], result["template_version"]) == ("ok", name, VERSION[name])
    assert [o["status"] for o in result["orders"]] == ["ok", "ok"]
    assert result["verdict"] in {"response1", "response2", "tie"} and result["consistent"] in {True, False}
    if name == "jlm":
        assert len(result["scores"]) == 2 and all(1 <= s <= 10 for s in result["scores"])
    if name == "mt":
        assert result["raw"].rstrip().endswith(("[[A]]", "[[B]]", "[[C]]"))


def test_the_grading_familys_demo_judge_grades_on_its_scale(judges_service: str) -> None:
    body = {"instruction": CAPITAL_PAIR["instruction"], "response": CAPITAL_PAIR["response1"],
            "rubric": "Is the answer correct?", "reference": "Paris.", "options": {"cache": False}}  # fmt: skip
    result = httpx.post(f"{judges_service}/grade", json=body, timeout=300).json()
    assert (result["status"], result["judge"], result["scale"]) == ("ok", "prom", [1, 5])
    assert 1 <= result["score"] <= 5 and "[RESULT]" in result["raw"]


def test_a_jury_of_every_family_returns_each_verdict_and_their_majority(judges_service: str) -> None:
    body = {**CAPITAL_PAIR, "judge": NAMES, "options": {"cache": False}}
    result = httpx.post(f"{judges_service}/compare", json=body, timeout=300).json()
    assert result["status"] == "ok" and result["judge"] == NAMES
    assert [j["judge"] for j in result["jury"]] == NAMES and all(j["status"] == "ok" for j in result["jury"])
    votes = [j["verdict"] for j in result["jury"]]
    winner = max(set(votes), key=votes.count)
    if votes.count(winner) * 2 > len(votes):
        assert result["verdict"] == winner and result["agreement"] == votes.count(winner) / len(votes)
    else:
        assert (result["verdict"], result["consistent"]) == ("tie", False)


def test_judging_by_one_judge_leaves_the_others_engines_alone(judges_service: str) -> None:
    before = httpx.get(f"{judges_service}/metrics").text
    httpx.post(f"{judges_service}/compare", json={**CAPITAL_PAIR, "judge": "mt", "options": {"cache": False}},
               timeout=300)  # fmt: skip
    after = httpx.get(f"{judges_service}/metrics").text

    def count(text: str, judge: str) -> float:
        prefix = f'pandalm_generations_total{{finish_reason="stop",judge="{judge}"}} '
        return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))

    assert count(after, "mt") == count(before, "mt") + 1
    assert all(count(after, name) == count(before, name) for name in NAMES if name != "mt")


def test_pandalm_eval_judge_runs_through_every_pairwise_family(
    judges_service: str, pandalm_data_dir: Path, tmp_path: Path
) -> None:
    """A team's own labelled pairs (here 8 of PandaLM's test set), each family's judge in turn, side by side."""
    items = json.loads((pandalm_data_dir / "testset-v1.json").read_text())[:8]
    labels = {0: "tie", 1: "response1", 2: "response2"}
    ours = tmp_path / "ours.jsonl"
    ours.write_text("".join(
        json.dumps({"id": str(item["idx"]), "instruction": item["instruction"], "input": item["input"],
                    "response1": item["response1"], "response2": item["response2"],
                    "label": labels[item["annotator1"]]}) + "\n"
        for item in items
    ))  # fmt: skip
    judges = [arg for name in NAMES for arg in ("--judge", name)]
    run = subprocess.run(
        # The demo judges' answers are short: 256 tokens leave the prompt room, as a real deployment might choose.
        [sys.executable, "-m", "pandalm_client.cli", "--url", judges_service, "eval", str(ours), *judges, "--json",
         "--no-cache", "--max-new-tokens", "256", "--truncate"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    reports = json.loads(run.stdout)
    assert [r["judge"] for r in reports] == NAMES
    for report in reports:
        assert report["n"] == 8 and 0 <= report["accuracy"] <= 1 and report["error_share"] == 0, report
    assert "demo" in run.stderr  # every judge here is a random-weight demo: the command says so
