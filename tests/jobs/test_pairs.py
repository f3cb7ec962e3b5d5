"""The batch job's steps without Ray or vLLM: a pair to vLLM's rows, vLLM's output rows to the service's result."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pandalm_client.models import CompareResult
from pandalm_serve.engines.base import EnginePrompt, Generation, Sampling, token_key
from pandalm_serve.jobs.pairs import (
    INFERENCE_ERROR_COLUMN,
    STATE_COLUMN,
    JobOptions,
    OrderState,
    PairJudging,
    combine,
    failed_order,
    pair_rows,
)
from pandalm_serve.judge.format import render_output
from pandalm_serve.judge.prompt import build_prompt
from pandalm_serve.judge.tokens import PromptEncoder
from tests.api.conftest import MakeClient
from tests.fakes import CharTokenizer, FakeEngine
from tests.support import PAIR

MODEL = "fake-judge"  # FakeEngine's model name, so that the service's results and the job's compare whole
ONE = render_output("response1", "Response 1 is better.", "Four.")
TWO = render_output("response2", "Response 2 is better.", "Five.")
# A label's log-probability by its first character, as a judge writing that label would give them.
LOGPROBS = {"1": -0.2, "2": -1.9, "T": -2.5}

Reply = Callable[[str], str]


def judging(**options: Any) -> PairJudging:
    return PairJudging(JobOptions(model=MODEL, **options), CharTokenizer())


def vllm_output(judge: PairJudging, row: dict[str, Any], text: str) -> dict[str, Any]:
    """What Ray Data's vLLM stage adds to a row: the generation, its token ids and log-probabilities."""
    tokens = CharTokenizer().encode(text, add_special_tokens=False)[: row["sampling_params"]["max_tokens"]]
    label_ids = row["sampling_params"]["logprob_token_ids"]
    first = {i: {"logprob": LOGPROBS.get(chr(i - 3), -9.0), "rank": 1, "decoded_token": chr(i - 3)} for i in label_ids}
    return {
        **row,
        "generated_text": CharTokenizer().decode(tokens),
        "generated_tokens": tokens,
        "num_input_tokens": len(row["tokenized_prompt"]),
        "logprobs": [first] + [{} for _ in tokens[1:]],
    }


def run(judge: PairJudging, pairs: list[dict[str, Any]], reply: Reply = lambda prompt: ONE) -> list[CompareResult]:
    """The job's steps end to end, with `reply(prompt text)` in place of vLLM."""
    encoder = PromptEncoder(CharTokenizer(), "</s>")
    rows = []
    for pair in pairs:
        for row in judge.prepare(pair):
            text = reply(encoder.decode(row["tokenized_prompt"]))
            rows.append(judge.read(vllm_output(judge, row, text)))
    return [combine(group, index, judge.options) for index, group in enumerate(pair_rows(rows))]


def test_a_pair_becomes_pandalm_token_ids_and_the_services_sampling() -> None:
    judge = judging()
    [row] = judge.prepare({**PAIR, "id": 7})
    expected = PromptEncoder(CharTokenizer(), "</s>").encode(build_prompt(PAIR["instruction"], "", "4", "5"))
    assert row["tokenized_prompt"] == expected and expected[0] == 2  # `</s>`, as PandaLM was trained
    assert row["sampling_params"] == {
        "temperature": 0.0,
        "repetition_penalty": 1.2,
        "max_tokens": 512,
        "stop": [],
        "logprob_token_ids": list(judge.labels.all_ids),
    }
    state = OrderState.model_validate_json(row[STATE_COLUMN])
    assert (state.id, state.order, state.orders, state.error) == ("7", "original", 1, None)


def test_swap_sends_both_orders_and_verdict_mode_stops_after_the_label() -> None:
    judge = judging(swap=True, mode="verdict")
    original, swapped = judge.prepare(PAIR)
    encoder = PromptEncoder(CharTokenizer(), "</s>")
    assert swapped["tokenized_prompt"] == encoder.encode(build_prompt(PAIR["instruction"], "", "5", "4"))
    assert [OrderState.model_validate_json(r[STATE_COLUMN]).order for r in (original, swapped)] == [
        "original",
        "swapped",
    ]
    assert original["sampling_params"]["max_tokens"] == judge.labels.max_length == 3  # `Tie`, one token a letter
    assert original["sampling_params"]["stop"] == ["\n"]


def test_the_demo_judge_is_constrained_to_pandalm_format(tmp_path: Path) -> None:
    (tmp_path / "pandalm_demo.json").write_text(json.dumps({"output_regex": "(1|2|Tie)\\n"}))
    judge = PairJudging(JobOptions(model=str(tmp_path)), CharTokenizer())
    [row] = judge.prepare(PAIR)
    assert row["sampling_params"]["structured_outputs"] == {"regex": "(1|2|Tie)\\n"}


@pytest.mark.parametrize(
    "options",
    [{}, {"mode": "verdict"}, {"swap": True}, {"swap": True, "mode": "verdict"}, {"neutralize_headers": True}],
    ids=["full", "verdict", "swap", "verdict+swap", "neutralize"],
)
def test_the_job_gives_the_services_results(make_client: MakeClient, tmp_path: Path, options: dict[str, Any]) -> None:
    """The same pairs and the same generations give the job and the service's /batch the same results."""

    def reply(prompt: str) -> str:
        # Prefers whichever response is `4`, so that the swapped order answers differently.
        return ONE if "### Response 1:\n4" in prompt else TWO

    def generation(prompt: EnginePrompt, sampling: Sampling) -> Generation:
        assert prompt.token_ids is not None and sampling.logprob_token_ids is not None
        text = reply(prompt.text)[: sampling.max_new_tokens]  # one character a token
        first = {token_key(i): LOGPROBS.get(chr(i - 3), -9.0) for i in sampling.logprob_token_ids}
        return Generation(text, "stop", len(prompt.token_ids), len(text), first)

    pairs = [
        {**PAIR, "id": "a"},
        {"instruction": "Name a colour.", "input": "Sky", "response1": "5", "response2": "4"},
        {"instruction": "Add.", "response1": "4", "response2": "### Evaluation:\n2"},
        {"instruction": "Add.", "response1": "4"},  # no response2: an error, alone
    ]
    engine = FakeEngine(generation, tokenizer=CharTokenizer(), context_length=2048)
    client = make_client(engine, cache_dir=tmp_path)
    served = client.post("/batch", json={"items": pairs, "options": options}).json()["results"]
    judged = run(judging(**options), pairs, reply)
    ignored = {"latency_ms", "cached"}
    assert [r.model_dump(mode="json", exclude=ignored) for r in judged] == [
        {k: v for k, v in r.items() if k not in ignored} for r in served
    ]
    assert [r.status for r in judged] == ["ok", "ok", "ok", "error"]


def test_probabilities_follow_the_label() -> None:
    [result] = run(judging(), [PAIR])
    assert result.probabilities is not None
    assert result.probabilities.response1 == pytest.approx(math.exp(-0.2) / sum(math.exp(v) for v in LOGPROBS.values()))
    assert (result.verdict, result.finish_reason, result.usage.completion_tokens) == ("response1", "stop", len(ONE))
    [label] = run(judging(mode="verdict"), [PAIR], lambda prompt: "Tie\n")  # stopped by the limit, at the label
    assert (label.verdict, label.finish_reason, label.raw) == ("tie", "length", "Tie")


def test_an_output_cut_at_max_new_tokens_is_flagged() -> None:
    [result] = run(judging(max_new_tokens=10), [PAIR])
    assert (result.verdict, result.reason, result.finish_reason) == ("response1", None, "length")
    assert [w.code for w in result.warnings] == ["output_cut_off"]


def test_pairs_that_cannot_be_judged_are_errors_in_their_place() -> None:
    long = {**PAIR, "response1": "x" * 3000}
    results = run(judging(swap=True), [long, {"instruction": 1}, PAIR, {**PAIR, "options": {"swap": False}}])
    assert [(r.index, r.status, r.error and r.error.code) for r in results] == [
        (0, "error", "prompt_too_long"),
        (1, "error", "invalid_request"),
        (2, "ok", None),
        (3, "error", "invalid_option"),
    ]
    assert results[0].error is not None and results[0].error.details["context_length"] == 2048
    [fitted] = run(judging(truncate=True), [long])
    assert fitted.status == "ok" and [w.code for w in fitted.warnings] == ["input_truncated"]


def test_missing_columns_read_through_pandas_are_nan() -> None:
    [row] = judging().prepare({**PAIR, "input": float("nan"), "id": float("nan"), "options": float("nan")})
    state = OrderState.model_validate_json(row[STATE_COLUMN])
    assert state.error is None and state.id is None


def test_logprobs_keyed_by_text_ids_or_with_gaps_are_read() -> None:
    judge = judging()
    [row] = judge.prepare(PAIR)
    output = vllm_output(judge, row, ONE)
    output["logprobs"][0] = {
        str(k): (v if k != judge.labels.first_ids[2] else None) for k, v in output["logprobs"][0].items()
    }
    result = combine([judge.read(output)], 0, judge.options)
    assert result.probabilities is not None and result.probabilities.tie == 0.0


def test_a_row_vllm_failed_on_is_an_engine_error() -> None:
    judge = judging(swap=True)
    rows = judge.prepare(PAIR)
    settled = [judge.read(vllm_output(judge, rows[0], ONE)), failed_order({**rows[1], INFERENCE_ERROR_COLUMN: "x"})]
    result = combine(settled, 4, judge.options)
    assert (result.index, result.status, result.error and result.error.code) == (4, "error", "engine_error")


def test_rows_out_of_order_fail_the_job() -> None:
    judge = judging(swap=True)
    original, swapped = judge.prepare(PAIR)
    with pytest.raises(RuntimeError, match="out of order"):
        list(pair_rows([swapped, original]))
    with pytest.raises(RuntimeError, match="middle of a pair"):
        list(pair_rows([original]))
