"""Several judges in one app, each on its own fake engine: chosen by name, in a jury, in a batch, and /grade."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import MakeClient
from tests.fakes import CharTokenizer, FakeEngine
from tests.support import assert_error

PAIR = {"instruction": "Add 2 and 2.", "response1": "4", "response2": "5"}
PANDALM_SAYS_1 = "1\n\n### Reason: Correct.\n\n### Reference: 4.\n"
JUDGELM_SAYS_2 = "3 8\nAssistant 2 is better."
JUDGELM_SAYS_TIE = "5 5\nBoth are fine."


def panel(make_client: MakeClient, judgelm_reply: str = JUDGELM_SAYS_2, **settings: object) -> TestClient:
    engines = {
        "panda": FakeEngine(PANDALM_SAYS_1, tokenizer=CharTokenizer(), context_length=4096),
        "jlm": FakeEngine(judgelm_reply, tokenizer=CharTokenizer(), context_length=4096),
        "jlm2": FakeEngine(judgelm_reply, tokenizer=CharTokenizer(), context_length=4096),
    }
    return make_client(engines=engines, judge=["panda=pandalm:demo", "jlm=judgelm:demo", "jlm2=judgelm:demo"],
                       **settings)  # fmt: skip


def test_info_lists_every_judge_the_default_first(make_client: MakeClient) -> None:
    info = panel(make_client).get("/info").json()
    assert [(j["name"], j["family"], j["modes"], j["ready"]) for j in info["judges"]] == [
        ("panda", "pandalm", ["pairwise"], True),
        ("jlm", "judgelm", ["pairwise"], True),
        ("jlm2", "judgelm", ["pairwise"], True),
    ]
    assert info["template_version"] == "pandalm-v1"


def test_a_request_picks_its_judge_by_name_and_the_result_names_it(make_client: MakeClient) -> None:
    client = panel(make_client)
    default = client.post("/compare", json=PAIR).json()
    assert (default["judge"], default["verdict"], default["template_version"]) == ("panda", "response1", "pandalm-v1")
    chosen = client.post("/compare", json={**PAIR, "judge": "jlm"}).json()
    assert (chosen["judge"], chosen["verdict"], chosen["scores"]) == ("jlm", "response2", [3.0, 8.0])
    assert chosen["template_version"] == "judgelm-v1" and chosen["reason"] == "Assistant 2 is better."


def test_each_judge_gets_its_own_familys_prompt(make_client: MakeClient) -> None:
    engines = {"panda": FakeEngine(PANDALM_SAYS_1, tokenizer=CharTokenizer(), context_length=4096),
               "jlm": FakeEngine(JUDGELM_SAYS_2, tokenizer=CharTokenizer(), context_length=4096)}  # fmt: skip
    client = make_client(engines=engines, judge=["panda=pandalm:demo", "jlm=judgelm:demo"])
    client.post("/compare", json={**PAIR, "judge": "jlm"})
    (prompt,) = engines["jlm"].prompts
    assert "[The Start of Assistant 1's Answer]\n4" in prompt.text and engines["panda"].prompts == []


def test_swap_maps_a_scoring_judges_second_order_back(make_client: MakeClient) -> None:
    result = panel(make_client).post("/compare", json={**PAIR, "judge": "jlm", "options": {"swap": True}}).json()
    # Both orders say "Assistant 2 is better": the responses disagree with themselves, a tie marked inconsistent.
    assert [o["verdict"] for o in result["orders"]] == ["response2", "response1"]
    assert (result["verdict"], result["consistent"]) == ("tie", False)


def test_an_unknown_judge_is_a_422_naming_the_servers_judges(make_client: MakeClient) -> None:
    error = assert_error(panel(make_client).post("/compare", json={**PAIR, "judge": "gpt"}), 422, "invalid_option")
    assert "panda, jlm, jlm2" in error["message"] and error["details"] == {"option": "judge", "value": "gpt"}


def test_what_a_judge_cannot_use_or_do_is_said_in_warnings(make_client: MakeClient) -> None:
    client = panel(make_client)
    panda = client.post("/compare", json={**PAIR, "rubric": "Correctness.", "reference": "4"}).json()
    assert [w["code"] for w in panda["warnings"]] == ["field_unused", "field_unused"]
    jlm = client.post("/compare", json={**PAIR, "judge": "jlm", "reference": "4", "options": {"mode": "verdict"}})
    assert [w["code"] for w in jlm.json()["warnings"]] == ["mode_unavailable"]  # JudgeLM shows the reference
    assert jlm.json()["mode"] == "full"


def test_a_jury_returns_the_majority_with_each_judges_verdict(make_client: MakeClient) -> None:
    result = panel(make_client).post("/compare", json={**PAIR, "judge": ["panda", "jlm", "jlm2"]}).json()
    assert (result["status"], result["verdict"], result["judge"]) == ("ok", "response2", ["panda", "jlm", "jlm2"])
    assert [(j["judge"], j["verdict"]) for j in result["jury"]] == [
        ("panda", "response1"),
        ("jlm", "response2"),
        ("jlm2", "response2"),
    ]
    assert result["agreement"] == round(2 / 3, 6) and result["consistent"] is None


def test_a_split_jury_is_a_tie_marked_inconsistent(make_client: MakeClient) -> None:
    result = panel(make_client).post("/compare", json={**PAIR, "judge": ["panda", "jlm"]}).json()
    assert (result["verdict"], result["consistent"], result["agreement"]) == ("tie", False, 0.0)


def test_a_batch_takes_a_judge_per_item_and_a_default_for_the_rest(make_client: MakeClient) -> None:
    body = {"items": [PAIR, {**PAIR, "judge": "panda"}, {**PAIR, "judge": "nope"}], "judge": "jlm"}
    response = panel(make_client).post("/batch", json=body).json()
    assert [(r["judge"], r["status"]) for r in response["results"]] == [
        ("jlm", "ok"),
        ("panda", "ok"),
        ("panda", "error"),
    ]
    assert response["results"][2]["error"]["code"] == "invalid_option"
    assert response["summary"]["error"] == 1


def test_an_unknown_batch_judge_fails_the_whole_batch(make_client: MakeClient) -> None:
    assert_error(panel(make_client).post("/batch", json={"items": [PAIR], "judge": "nope"}), 422, "invalid_option")


def test_grading_by_a_judge_that_only_compares_is_a_422(make_client: MakeClient) -> None:
    client = panel(make_client)
    body = {"instruction": "x", "response": "y", "rubric": "r"}
    assert "grades" in assert_error(client.post("/grade", json=body), 422, "invalid_option")["message"]
    assert_error(client.post("/grade", json={**body, "judge": "jlm"}), 422, "invalid_option")


def test_metrics_count_each_judges_work_apart(make_client: MakeClient) -> None:
    client = panel(make_client)
    client.post("/compare", json=PAIR)
    client.post("/compare", json={**PAIR, "judge": "jlm"})
    text = client.get("/metrics").text
    assert 'pandalm_judgements_total{judge="panda",outcome="response1"} 1.0' in text
    assert 'pandalm_judgements_total{judge="jlm",outcome="response2"} 1.0' in text
    assert 'family="judgelm"' in text and 'judge="jlm2"' in text  # pandalm_build_info, one series a judge


def test_a_configured_judges_cache_keys_are_its_own(make_client: MakeClient) -> None:
    client = panel(make_client, judgelm_reply=JUDGELM_SAYS_TIE, cache_backend="memory")
    client.post("/compare", json={**PAIR, "judge": "jlm"})
    # The same model, family, prompt and settings under another judge's name: judged again, not from the cache.
    assert client.post("/compare", json={**PAIR, "judge": "jlm2"}).json()["cached"] is False
    assert client.post("/compare", json={**PAIR, "judge": "jlm"}).json()["cached"] is True


def grader(make_client: MakeClient, reply: str) -> tuple[TestClient, FakeEngine]:
    engine = FakeEngine(reply, tokenizer=CharTokenizer(), context_length=4096)
    engines = {"panda": FakeEngine(PANDALM_SAYS_1, tokenizer=CharTokenizer(), context_length=4096), "prom": engine}
    return make_client(engines=engines, judge=["panda=pandalm:demo", "prom=prometheus2:demo"]), engine


GRADE = {"instruction": "Name the capital of France.", "response": "Paris.", "rubric": "Is it correct?"}


def test_grade_goes_to_the_first_judge_that_grades_and_reads_its_score(make_client: MakeClient) -> None:
    client, engine = grader(make_client, "Feedback: The response is correct. [RESULT] 5")
    result = client.post("/grade", json={**GRADE, "id": "g1"}).json()
    assert (result["status"], result["score"], result["scale"], result["judge"]) == ("ok", 5, [1, 5], "prom")
    assert result["feedback"] == "Feedback: The response is correct." and result["id"] == "g1"
    assert result["template_version"] == "prometheus2-v1"
    (prompt,) = engine.prompts
    assert prompt.text.startswith("[INST] You are a fair judge assistant") and "Is it correct?" in prompt.text
    info = client.get("/info").json()["judges"]
    assert [j["modes"] for j in info] == [["pairwise"], ["pairwise", "absolute"]]
    assert 'pandalm_grades_total{judge="prom",outcome="5"} 1.0' in client.get("/metrics").text


def test_a_grade_off_the_scale_is_unparsed_never_a_score(make_client: MakeClient) -> None:
    client, _ = grader(make_client, "Feedback: Excellent. [RESULT] 7")
    result = client.post("/grade", json={**GRADE, "judge": "prom"}).json()
    assert (result["status"], result["score"], result["raw"]) == ("unparsed", None, "Feedback: Excellent. [RESULT] 7")


def test_a_grade_without_a_rubric_is_a_422(make_client: MakeClient) -> None:
    client, _ = grader(make_client, "[RESULT] 3")
    assert_error(client.post("/grade", json={k: v for k, v in GRADE.items() if k != "rubric"}), 422, "invalid_request")


def test_a_grading_judge_compares_too_with_its_relative_prompt(make_client: MakeClient) -> None:
    client, engine = grader(make_client, "Feedback: B is right. [RESULT] B")
    result = client.post("/compare", json={**PAIR, "judge": "prom", "rubric": "Is the sum right?"}).json()
    assert (result["verdict"], result["reason"], result["warnings"]) == ("response2", "Feedback: B is right.", [])
    assert "###Response A:\n4" in engine.prompts[0].text and "Is the sum right?" in engine.prompts[0].text
