"""Golden tests for `parse_output` on PandaLM's output format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pandalm_client.models import Verdict
from pandalm_serve.judge.parse import ParsedOutput, parse_output

SAMPLE_SIZE = 59
LABELS = {1: "1", 2: "2", 0: "Tie"}  # pandalm_result -> the label PandaLM wrote
VERDICTS: dict[int, Verdict] = {1: "response1", 2: "response2", 0: "tie"}


def render(label: str, reason: str, reference: str) -> str:
    """The text PandaLM writes (its reference `build_pandalm_prompt` output_sequence)."""
    return f"{label}\n\n### Reason: {reason}\n\n### Reference: {reference}\n"


@pytest.fixture(scope="module")
def sample(pandalm_data_dir: Path) -> list[dict[str, Any]]:
    path = pandalm_data_dir / "pandalm-7b-outputs-sample.json"
    items = json.loads(path.read_text(encoding="utf-8"))
    assert len(items) == SAMPLE_SIZE
    assert {item["pandalm_result"] for item in items} == {0, 1, 2}
    return items


@pytest.mark.parametrize("position", range(SAMPLE_SIZE))
def test_golden_pandalm_7b_outputs(sample: list[dict[str, Any]], position: int) -> None:
    item = sample[position]
    result, reason, reference = item["pandalm_result"], item["pandalm_reason"], item["pandalm_reference"]
    parsed = parse_output(render(LABELS[result], reason, reference))
    assert parsed == ParsedOutput(VERDICTS[result], reason, reference.strip())


@pytest.mark.parametrize(
    ("label", "verdict"),
    [("1", "response1"), ("2", "response2"), ("Tie", "tie"), ("tie", "tie"), ("TIE", "tie"), (" 2 ", "response2")],
)
def test_labels(label: str, verdict: Verdict) -> None:
    assert parse_output(render(label, "Because.", "Answer.")) == ParsedOutput(verdict, "Because.", "Answer.")


def test_leading_blank_lines() -> None:
    text = "\n\n  \n" + render("2", "Shorter.", "Answer.")
    assert parse_output(text) == ParsedOutput("response2", "Shorter.", "Answer.")


def test_reference_with_headers_and_blank_lines() -> None:
    reference = "### Summary\n\nPoint one.\n\n\n### Details\n- a\n\n### Reason: not a reason\n### Reference: nested"
    parsed = parse_output(render("1", "Complete.", reference))
    assert parsed == ParsedOutput("response1", "Complete.", reference)


@pytest.mark.parametrize("first_line", ["3", "0", "Response 1", "", "1 is better", "Tie.", "12"])
def test_unknown_label_gives_no_verdict(first_line: str) -> None:
    parsed = parse_output(render(first_line, "Because.", "Answer."))
    assert parsed.verdict is None  # never a guessed tie


@pytest.mark.parametrize("text", ["", "\n\n", "</s>", "Response 1 is better.\n"])
def test_garbage_output_gives_no_verdict(text: str) -> None:
    assert parse_output(text).verdict is None


@pytest.mark.parametrize(("text", "verdict"), [("1", "response1"), ("Tie\n", "tie"), ("\n2\n\n", "response2")])
def test_label_only(text: str, verdict: Verdict) -> None:
    assert parse_output(text) == ParsedOutput(verdict, None, None)


def test_truncated_before_reference() -> None:
    assert parse_output("1\n\n### Reason: Response 1 is") == ParsedOutput("response1", "Response 1 is", None)


@pytest.mark.parametrize("tail", ["</s>", "</s></s>", "<|endoftext|>", "<pad><pad>\n", "[PAD]"])
def test_trailing_special_tokens_removed(tail: str) -> None:
    assert parse_output(render("Tie", "Same.", "Answer.") + tail) == ParsedOutput("tie", "Same.", "Answer.")
    assert parse_output("2" + tail) == ParsedOutput("response2", None, None)
