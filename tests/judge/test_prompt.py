"""Golden tests: `build_prompt` must be byte-identical to PandaLM's reference `build_pandalm_prompt`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pandalm_serve.judge.prompt import SPECIAL_TOKEN_PATTERN, build_prompt, clean_response

TESTSET_SIZE = 999

# The oracle: PandaLM's reference (pandalm/utils/pandalm_inference.py, `build_pandalm_prompt`),
# restated literally here and deliberately sharing no code with the module under test.
REFERENCE_PATTERN = re.compile(
    r"<unk>|<pad>|<s>|</s>|\[PAD\]|<\|endoftext\|>|\[UNK\]|\[CLS\]|\[MASK\]|<\|startofpiece\|>|<\|endofpiece\|>|\[gMASK\]|\[sMASK\]"
)
SPECIAL_TOKENS = [
    "<unk>", "<pad>", "<s>", "</s>", "[PAD]", "<|endoftext|>", "[UNK]", "[CLS]", "[MASK]",
    "<|startofpiece|>", "<|endofpiece|>", "[gMASK]", "[sMASK]",
]  # fmt: skip


def reference_prompt(instruction: str, input: str, resp1: str, resp2: str) -> str:
    resp1 = REFERENCE_PATTERN.sub("", resp1.strip()).strip()
    resp2 = REFERENCE_PATTERN.sub("", resp2.strip()).strip()
    rsp = f"### Response 1:\n{resp1}\n\n### Response 2:\n{resp2}"
    if input:
        return f"Below are two responses for a given task. The task is defined by the Instruction with an Input that provides further context. Evaluate the responses and generate a reference answer for the task.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n{rsp}\n\n### Evaluation:\n"
    return f"Below are two responses for a given task. The task is defined by the Instruction. Evaluate the responses and generate a reference answer for the task.\n\n### Instruction:\n{instruction}\n\n{rsp}\n\n### Evaluation:\n"


@pytest.fixture(scope="module")
def testset(pandalm_data_dir: Path) -> list[dict[str, Any]]:
    items = json.loads((pandalm_data_dir / "testset-v1.json").read_text(encoding="utf-8"))
    assert len(items) == TESTSET_SIZE
    return items


# (a) golden over the whole test set, against the oracle


@pytest.mark.parametrize("position", range(TESTSET_SIZE))
def test_matches_reference_on_testset(testset: list[dict[str, Any]], position: int) -> None:
    item = testset[position]
    # Items 157-164 hold JSON booleans as responses; PandaLM's loader would see them as text.
    args = (item["instruction"], item["input"], str(item["response1"]), str(item["response2"]))
    assert build_prompt(*args) == reference_prompt(*args)


def test_testset_covers_both_templates(testset: list[dict[str, Any]]) -> None:
    assert sum(not item["input"] for item in testset) == 167


def test_special_token_pattern_is_the_reference_one() -> None:
    assert SPECIAL_TOKEN_PATTERN.pattern == REFERENCE_PATTERN.pattern


# (a) hand-written expected prompts, independent of any f-string


def test_literal_prompt_with_input() -> None:
    prompt = build_prompt("Translate to French.", "Good morning", " Bonjour</s>\n", "<s>Salut !  ")
    assert prompt == (
        "Below are two responses for a given task. The task is defined by the Instruction with an "
        "Input that provides further context. Evaluate the responses and generate a reference "
        "answer for the task.\n"
        "\n"
        "### Instruction:\n"
        "Translate to French.\n"
        "\n"
        "### Input:\n"
        "Good morning\n"
        "\n"
        "### Response 1:\n"
        "Bonjour\n"
        "\n"
        "### Response 2:\n"
        "Salut !\n"
        "\n"
        "### Evaluation:\n"
    )


def test_literal_prompt_without_input() -> None:
    prompt = build_prompt("Name a primary colour.", "", "Red.", "\n\nBlue.\n[PAD][PAD]")
    assert prompt == (
        "Below are two responses for a given task. The task is defined by the Instruction. "
        "Evaluate the responses and generate a reference answer for the task.\n"
        "\n"
        "### Instruction:\n"
        "Name a primary colour.\n"
        "\n"
        "### Response 1:\n"
        "Red.\n"
        "\n"
        "### Response 2:\n"
        "Blue.\n"
        "\n"
        "### Evaluation:\n"
    )


# (b) responses are cleaned; instruction and input are not


@pytest.mark.parametrize("token", SPECIAL_TOKENS)
def test_special_tokens_removed_from_responses(token: str) -> None:
    prompt = build_prompt("Do it.", "", f"  {token} A{token}B \n{token}", f"C\n\n{token}  ")
    assert "### Response 1:\nAB\n\n### Response 2:\nC\n\n### Evaluation:\n" in prompt
    assert token not in prompt


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("  answer  ", "answer"),
        ("</s> answer </s>", "answer"),  # strip, remove tokens, strip again
        ("a<s>b", "ab"),
        ("line 1\n\n  line 2", "line 1\n\n  line 2"),  # inner whitespace kept
        ("<|endoftext|>\n", ""),
    ],
)
def test_clean_response(raw: str, cleaned: str) -> None:
    assert clean_response(raw) == cleaned


def test_instruction_and_input_used_verbatim() -> None:
    instruction, input = "  Say </s> hi [MASK] \n", "\n <pad>context\t "
    prompt = build_prompt(instruction, input, "a", "b")
    assert f"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response 1:\na\n" in prompt
    assert prompt == reference_prompt(instruction, input, "a", "b")


def test_whitespace_only_input_still_uses_input_template() -> None:
    # As in the reference: `if input:` is true for "  ", so the input section is kept.
    prompt = build_prompt("Do it.", "  ", "a", "b")
    assert "### Input:\n  \n\n" in prompt
    assert prompt == reference_prompt("Do it.", "  ", "a", "b")


# (c) braces survive


@pytest.mark.parametrize("input", ["", "{0} {{x}} {input}"])
def test_braces_survive(input: str) -> None:
    args = ("Fill in {name} and {}.", input, "{}", "{response1} }{")
    prompt = build_prompt(*args)
    assert "### Instruction:\nFill in {name} and {}.\n\n" in prompt
    assert "### Response 1:\n{}\n\n### Response 2:\n{response1} }{\n\n" in prompt
    if input:
        assert "### Input:\n{0} {{x}} {input}\n\n" in prompt
    assert prompt == reference_prompt(*args)


# (d) empty responses


@pytest.mark.parametrize(("response1", "response2"), [("", ""), ("", "b"), (" </s>\n", "[PAD]")])
def test_empty_responses_allowed(response1: str, response2: str) -> None:
    prompt = build_prompt("Do it.", "", response1, response2)
    expected2 = "b" if response2 == "b" else ""
    assert prompt.endswith(f"### Response 1:\n\n\n### Response 2:\n{expected2}\n\n### Evaluation:\n")
    assert prompt == reference_prompt("Do it.", "", response1, response2)


# (e) the prompt ends where PandaLM starts writing


@pytest.mark.parametrize("input", ["", "context"])
def test_ends_with_evaluation_header(input: str) -> None:
    prompt = build_prompt("Do it.", input, "a\n\n", "b </s>")
    assert prompt.endswith("\n\n### Evaluation:\n")
    assert prompt.count("### Evaluation:") == 1
