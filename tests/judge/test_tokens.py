from __future__ import annotations

import pytest
from transformers import LlamaTokenizer

from pandalm_serve.errors import ConfigurationError, PromptTooLongError
from pandalm_serve.judge.prompt import build_prompt
from pandalm_serve.judge.tokens import PromptEncoder, _share, fit_prompt
from tests.fakes import CharTokenizer


def test_prompt_ids_start_with_eos_as_pandalm_was_trained(llama_tokenizer: LlamaTokenizer) -> None:
    prompt = build_prompt("Say hi.", "", "Hi", "Hello")
    assert llama_tokenizer(prompt).input_ids[0] == 1  # what the downloaded config would do
    ids = PromptEncoder(llama_tokenizer, "</s>").encode(prompt)
    assert ids[0] == 2
    assert ids[1:] == llama_tokenizer.encode(prompt, add_special_tokens=False)
    assert 1 not in ids


def test_empty_bos_setting_keeps_the_tokenizer_default(llama_tokenizer: LlamaTokenizer) -> None:
    prompt = build_prompt("Say hi.", "", "Hi", "Hello")
    assert PromptEncoder(llama_tokenizer, None).encode(prompt) == llama_tokenizer(prompt).input_ids


def test_unknown_bos_token_is_refused_at_start(llama_tokenizer: LlamaTokenizer) -> None:
    with pytest.raises(ConfigurationError, match="not in the model's vocabulary"):
        PromptEncoder(llama_tokenizer, "<|begin_of_text|>")


def fit(
    r1: str, r2: str, *, context: int = 600, new: int = 100, truncate: bool = True
) -> tuple[str, list[int], list[str]]:
    fitted = fit_prompt(
        PromptEncoder(CharTokenizer(), "</s>"), "Do it.", "", r1, r2,
        context_length=context, max_new_tokens=new, truncate=truncate,
    )  # fmt: skip
    return fitted.text, fitted.token_ids, [w.message for w in fitted.warnings]


def test_a_prompt_that_fits_is_untouched() -> None:
    text, ids, warnings = fit("short", "also short")
    assert text == build_prompt("Do it.", "", "short", "also short")
    assert len(ids) == len(text) + 1 and warnings == []


def test_exactly_full_context_fits() -> None:
    base = len(build_prompt("Do it.", "", "", "")) + 1
    _, ids, _ = fit("a" * (500 - base), "", truncate=False)
    assert len(ids) == 500


def test_too_long_without_truncate_raises_with_counts() -> None:
    with pytest.raises(PromptTooLongError) as info:
        fit("a" * 2000, "b", truncate=False)
    assert info.value.details["context_length"] == 600
    assert "options.truncate" in info.value.message


def test_truncation_cuts_the_longer_response_and_keeps_the_shorter() -> None:
    text, ids, warnings = fit("a" * 2000, "kept whole")
    assert len(ids) <= 500
    assert "### Response 2:\nkept whole\n\n" in text
    assert warnings == [warnings[0]] and warnings[0].startswith("response1 was truncated from 2000 to ")


def test_truncation_shares_the_room_when_both_are_long() -> None:
    text, ids, warnings = fit("a" * 2000, "b" * 3000)
    assert len(ids) <= 500
    kept1 = text.split("### Response 1:\n")[1].split("\n")[0]
    kept2 = text.split("### Response 2:\n")[1].split("\n")[0]
    assert set(kept1) == {"a"} and set(kept2) == {"b"}
    assert abs(len(kept1) - len(kept2)) <= 1
    assert len(warnings) == 2


def test_an_instruction_too_long_for_any_truncation_raises() -> None:
    with pytest.raises(PromptTooLongError, match="instruction and input are too long"):
        fit_prompt(
            PromptEncoder(CharTokenizer(), "</s>"), "x" * 1000, "", "a", "b",
            context_length=600, max_new_tokens=100, truncate=True,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("room", "len1", "len2", "expected"),
    [(100, 10, 500, (10, 90)), (100, 500, 10, (90, 10)), (100, 500, 500, (50, 50)), (101, 500, 500, (50, 51))],
)
def test_share(room: int, len1: int, len2: int, expected: tuple[int, int]) -> None:
    assert _share(room, len1, len2) == expected
