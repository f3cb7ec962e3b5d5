from __future__ import annotations

import math

import pytest
from transformers import LlamaTokenizer

from pandalm_client.models import LabelProbabilities, Verdict
from pandalm_serve.engines.base import Sampling
from pandalm_serve.judge.labels import TextLabels, TokenLabels, probabilities, token_labels, verdict_from_label
from pandalm_serve.judge.prompt import build_prompt
from pandalm_serve.judge.swap import average, reconcile, swap_back, swap_probabilities_back
from pandalm_serve.judge.tokens import PromptEncoder

# `1` and `2` one token each; `Tie` written as one token, or starting with `T`.
LABELS = TokenLabels(first_ids=(19, 20, 585), starts=((19,), (20,), (585, 54)), max_length=2)
GREEDY = Sampling(preset="greedy", max_new_tokens=1, repetition_penalty=1.2, beam_width=4)


@pytest.mark.parametrize(
    ("original", "swapped_back", "verdict", "consistent"),
    [
        ("response1", "response1", "response1", True),
        ("response2", "response2", "response2", True),
        ("tie", "tie", "tie", True),
        ("response1", "response2", "tie", False),
        ("response2", "response1", "tie", False),
        ("response1", "tie", "tie", False),
        ("tie", "response2", "tie", False),
        (None, "response1", None, None),
        ("tie", None, None, None),
        (None, None, None, None),
    ],
)
def test_reconciliation_truth_table(
    original: Verdict | None, swapped_back: Verdict | None, verdict: Verdict | None, consistent: bool | None
) -> None:
    result = reconcile(original, swapped_back)
    assert (result.verdict, result.consistent) == (verdict, consistent)


def test_swapped_labels_map_back_to_the_request_positions() -> None:
    assert swap_back("response1") == "response2"
    assert swap_back("response2") == "response1"
    assert swap_back("tie") == "tie"
    assert swap_back(None) is None
    p = LabelProbabilities(response1=0.7, response2=0.2, tie=0.1)
    assert swap_probabilities_back(p) == LabelProbabilities(response1=0.2, response2=0.7, tie=0.1)


def test_a_judge_preferring_position_one_averages_to_no_preference() -> None:
    seen_first = LabelProbabilities(response1=0.7, response2=0.2, tie=0.1)
    as_swapped = swap_probabilities_back(seen_first)  # the same judge, the responses the other way round
    mean = average(seen_first, as_swapped)
    assert mean is not None
    assert mean.response1 == pytest.approx(mean.response2) == pytest.approx(0.45)
    assert average(seen_first, None) is None


def test_probabilities_are_normalised_over_the_three_labels() -> None:
    p = probabilities([math.log(0.3), math.log(0.1), math.log(0.1)])
    assert p is not None
    assert p.response1 + p.response2 + p.tie == pytest.approx(1.0)
    assert p.response1 == pytest.approx(0.6)
    missing = probabilities([math.log(0.5), None, -math.inf])
    assert missing == LabelProbabilities(response1=1.0, response2=0.0, tie=0.0)
    assert probabilities([None, None, None]) is None


def test_label_tokens_are_taken_after_the_prompt(llama_tokenizer: LlamaTokenizer) -> None:
    encoder = PromptEncoder(llama_tokenizer, "</s>")
    labels = token_labels(encoder)
    prompt_ids = encoder.encode(build_prompt("Instruction.", "", "Response one.", "Response two."))
    for first_id, text in zip(labels.first_ids, ("1", "2", "Tie"), strict=True):
        assert (
            encoder.encode(build_prompt("Instruction.", "", "Response one.", "Response two.") + text)[len(prompt_ids)]
            == first_id
        )
    # On its own, this LLaMA-style tokenizer writes `Tie` with a leading `▁` piece: not what follows `\n`.
    alone = llama_tokenizer.encode("Tie", add_special_tokens=False)
    assert alone[0] != labels.first_ids[2]
    assert labels.first_ids[2] == llama_tokenizer.convert_tokens_to_ids("T")
    assert labels.max_length == 3  # T, i, e with this character-level vocabulary


def test_token_labels_ask_for_every_starting_token_by_id() -> None:
    asked = LABELS.ask(GREEDY)
    assert (asked.logprob_token_ids, asked.top_logprobs) == ((19, 20, 585, 54), None)


def test_a_label_takes_its_most_likely_starting_token() -> None:
    read = LABELS.read({"19": math.log(0.3), "20": math.log(0.2), "585": math.log(0.1), "54": math.log(0.25)})
    assert read.probabilities is not None and read.note is None
    assert read.probabilities.tie == pytest.approx(0.25 / 0.75)
    # A token the engine masked (-inf, or vLLM's server's -9999) or did not return has no mass.
    read = LABELS.read({"19": -math.inf, "20": math.log(0.1), "585": -9999.0})
    assert read.probabilities == LabelProbabilities(response1=0.0, response2=1.0, tie=0.0)


def test_probabilities_follow_the_greedy_choice() -> None:
    # Greedy decoding picks `1` (0.3), though the two tokens that start `Tie` add up to more.
    p = LABELS.read({"19": math.log(0.3), "20": math.log(0.1), "585": math.log(0.2), "54": math.log(0.2)}).probabilities
    assert p is not None and max(p.response1, p.response2, p.tie) == p.response1


def test_no_log_probabilities_is_said_plainly() -> None:
    for labels in (LABELS, TextLabels()):
        read = labels.read(None)
        assert read.probabilities is None and read.note and "no log-probabilities" in read.note


def test_text_labels_match_the_top_tokens_by_text() -> None:
    asked = TextLabels().ask(GREEDY)
    assert (asked.logprob_token_ids, asked.top_logprobs) == (None, 5)
    top = {"1": math.log(0.5), " 2": math.log(0.2), "T": math.log(0.04), "Tie": math.log(0.1), "The": -1.0}
    read = TextLabels().read(top)
    assert read.note is None and read.probabilities is not None
    assert read.probabilities.response1 == pytest.approx(0.5 / 0.8)
    partial = TextLabels().read({"1": -0.1, "2": -3.0})
    assert partial.note and "Tie" in partial.note
    assert partial.probabilities is not None and partial.probabilities.tie == 0.0


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("1", "response1"), ("2", "response2"), ("Tie", "tie"), ("T", "tie"), ("ti", "tie"), ("", None), ("Th", None)],
)
def test_a_label_cut_at_the_limit_is_decided_by_its_first_token(text: str, verdict: Verdict | None) -> None:
    assert verdict_from_label(text) == verdict
