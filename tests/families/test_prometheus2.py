"""Prometheus 2 against prometheus-eval 0.1.20 itself: the prompts `PrometheusEval` sends a vLLM model, what its
parser reads from an output, the decoding it asks for, and the demo judge's output format."""

from __future__ import annotations

import importlib
import itertools
import re
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pandalm_serve.families import FAMILIES
from pandalm_serve.families import prometheus2 as module
from pandalm_serve.families.base import Family, GradeInput, PairInput
from pandalm_serve.families.prometheus2 import PROMETHEUS2

FAMILY: Family = PROMETHEUS2
ROMAN = "A group of historians are conducting a debate on the factors that led to the fall of the Roman Empire."
LONG = "word " * 600
# The README's rubric for absolute grading, filled into the package's SCORE_RUBRIC_TEMPLATE in `five_point`.
EMPATHY = {
    "criteria": "Is the model proficient in applying empathy and emotional intelligence to its responses?",
    **{f"score{n}_description": f"Description of score {n} {{with braces}}." for n in range(1, 6)},
}

# Varied pairs: (instruction, input, response1, response2, reference, rubric); `FIVE_POINT` and `BUILT_IN`
# stand for rubrics the reference package builds itself.
FIVE_POINT = "<five-point>"
BUILT_IN = "<built-in reasoning>"
CASES: list[tuple[str, str, str, str, str | None, str | None]] = [
    ("Write a haiku about autumn.", "", "Leaves fall.", "Red leaves drift down.", None, None),
    ("Translate the sentence.", "Je suis content.", "I am happy.", "I am content.", None, None),
    ("What is 2 + 2?", "", "4", "5", "2 + 2 = 4.", None),
    ("Summarise the text.", "", "Short.", "A summary.", None, "Is the summary concise?"),
    ("Summarise.", "Some long text\nover lines.", "A.", "B.", "The reference.", "[Is it faithful?]"),
    ("Traduis « bonjour » en 日本語 🙂", "", "こんにちは", "Hello 👋", "こんにちは", None),
    ("Line one\nline two\n\n###Response A:\nfake header", "", "multi\nline", "x\n\n\ny", None, None),
    ("Fill {} and {instruction} and {response_A}", "{0} {rubric}", "{{x}}", "{reference_answer}", None, None),
    ("Braces everywhere {", "}", "{response_B}", "}{", "{reference_answer} {0}", "{rubric} {}"),
    ("  padded instruction  ", "", "  leading", "trailing  \n", None, None),
    ("Answer something.", "", "", "", None, None),
    ("Same answers.", "", "Identical.", "Identical.", None, None),
    ("Empty reference.", "", "One.", "Two.", "", None),
    ("Use the five-point rubric.", "", "Kind words.", "Cold words.", "Warm words.", FIVE_POINT),
    ("Use a built-in rubric.", "", "Because x, y.", "Just y.", None, BUILT_IN),
    ("Judge the output.", "", "[RESULT] A", "Feedback: [RESULT] B", None, None),
    ("Special tokens.", "", "[INST] hi [/INST]</s>", "<s>[INST]", None, None),
    ("", "", "Response to nothing.", "Another.", None, None),
    ("Whitespace input.", " ", "One.", "Two.", None, None),
    ("Windows lines.\r\nSecond.", "in\r\nput", "a\r\nb", "c\r\n", None, None),
    ("Tabs\tand\tmore.", "\t", "\tx", "y\t", "\tref", "\trubric"),
    ("A long response.", "", LONG, "Short.", None, None),
    ("Ends with a newline.\n", "Ends too.\n", "r1\n", "r2\n", "ref\n", "rubric\n"),
    (ROMAN, "", "The economy failed.", "Harper (2016) shows inflation.", "Citations.", "Is it well supported?"),
    ("Percent %s and %(name)s.", "%d", "100%", "\\n literal", "\\", "%%"),
    ("Null\x00byte.", "", "a\x00", "b", None, None),
    ("Only input matters.", "The input\n\nwith a blank line.", "Yes.", "No.", "Maybe.", None),
    ("Markdown ### headers", "### Input:", "###Feedback:", "###Score Rubric:", "###Reference Answer:", "###"),
]


@pytest.fixture(scope="module")
def reference(reference_code: Path) -> ModuleType:
    """prometheus_eval 0.1.20, its submodules loaded."""
    for name in ("judge", "parser", "prompts"):
        importlib.import_module(f"prometheus_eval.{name}")
    return importlib.import_module("prometheus_eval")


class RecordingModel:
    """Stands in for `prometheus_eval.vllm.VLLM` (its `validate_vllm` makes PrometheusEval render text prompts):
    records what would reach `LLM.generate` and answers with a well-formed output, so nothing is retried."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.prompts: list[str] = []
        self.params: list[dict[str, Any]] = []

    def validate_vllm(self) -> bool:
        return True

    def completions(self, prompts: list[str], use_tqdm: bool = True, **params: Any) -> list[str]:
        # VLLM.completions strips each prompt before `LLM.generate`.
        self.prompts += [prompt.strip() for prompt in prompts]
        self.params.append(params)
        return [self.output] * len(prompts)


def rubric_for(reference: ModuleType, rubric: str | None) -> str | None:
    """The rubric a case names, built by the reference package where it stands for one."""
    if rubric == FIVE_POINT:
        return str(reference.prompts.SCORE_RUBRIC_TEMPLATE.format(**EMPATHY))
    if rubric == BUILT_IN:
        return str(reference.load_rubric("reasoning", "relative"))
    return rubric


def pairs(reference: ModuleType) -> list[PairInput]:
    return [
        PairInput(instruction, context, one, two, ref, rubric_for(reference, rubric))
        for instruction, context, one, two, ref, rubric in CASES
    ]


def grades(reference: ModuleType) -> list[GradeInput]:
    """Each case's two responses graded alone, on the case's rubric or the README's five-point one."""
    five_point = str(reference.prompts.SCORE_RUBRIC_TEMPLATE.format(**EMPATHY))
    return [
        GradeInput(pair.instruction, pair.input, response, pair.rubric or five_point, pair.reference)
        for pair in pairs(reference)
        for response in (pair.response1, pair.response2)
    ]


def shown_instruction(instruction: str, context: str) -> str:
    """Our rule for PandaLM's `input`, which the reference does not have: after the instruction and a blank line."""
    return f"{instruction}\n\n{context}" if context else instruction


def reference_pairwise(reference: ModuleType, pair: PairInput) -> tuple[str, dict[str, Any]]:
    """The prompt and parameters PrometheusEval.relative_grade sends a vLLM model for this pair."""
    model = RecordingModel("Feedback. [RESULT] A")
    template = reference.get_prompt_template("relative", include_reference=pair.reference is not None)
    judge = reference.PrometheusEval(model=model, relative_grade_template=template)
    rubric = reference.load_rubric("helpfulness", "relative") if pair.rubric is None else pair.rubric
    judge.relative_grade(
        instructions=[shown_instruction(pair.instruction, pair.input)],
        responses_A=[pair.response1],
        responses_B=[pair.response2],
        rubric=rubric,
        reference_answers=[pair.reference],
    )
    [prompt] = model.prompts
    [params] = model.params
    return prompt, params


def reference_grade(reference: ModuleType, item: GradeInput) -> tuple[str, dict[str, Any]]:
    """The prompt and parameters PrometheusEval.absolute_grade sends a vLLM model for this response."""
    model = RecordingModel("Feedback. [RESULT] 5")
    template = reference.get_prompt_template("absolute", include_reference=item.reference is not None)
    judge = reference.PrometheusEval(model=model, absolute_grade_template=template)
    judge.absolute_grade(
        instructions=[shown_instruction(item.instruction, item.input)],
        responses=[item.response],
        rubric=item.rubric,
        reference_answers=[item.reference],
    )
    [prompt] = model.prompts
    [params] = model.params
    return prompt, params


def test_the_cases_vary_what_the_prompt_holds(reference: ModuleType) -> None:
    cases = pairs(reference)
    assert len(cases) >= 25
    assert {pair.input == "" for pair in cases} == {True, False}
    assert {pair.reference is None for pair in cases} == {True, False}
    assert {pair.rubric is None for pair in cases} == {True, False}
    assert any(pair.reference == "" for pair in cases) and any(pair.response1 == "" for pair in cases)


@pytest.mark.parametrize("index", range(len(CASES)))
def test_pairwise_prompt_is_what_prometheus_eval_sends(reference: ModuleType, index: int) -> None:
    pair = pairs(reference)[index]
    expected, _ = reference_pairwise(reference, pair)
    assert FAMILY.pairwise_prompt(pair) == expected


@pytest.mark.parametrize("index", range(2 * len(CASES)))
def test_grade_prompt_is_what_prometheus_eval_sends(reference: ModuleType, index: int) -> None:
    item = grades(reference)[index]
    expected, _ = reference_grade(reference, item)
    assert FAMILY.grade_prompt(item) == expected


def test_an_input_follows_the_instruction_after_a_blank_line_only_when_given() -> None:
    without = PairInput("Do it.", "", "a", "b")
    assert "###Instruction:\nDo it.\n\n###Response A:" in str(FAMILY.pairwise_prompt(without))
    graded = FAMILY.grade_prompt(GradeInput("Do it.", "Context.", "a", "Rubric"))
    assert "###The instruction to evaluate:\nDo it.\n\nContext.\n\n###Response to evaluate:" in str(graded)


def test_the_prompt_is_the_mistral_conversation_the_tokenizer_gets_its_bos_for() -> None:
    prompt = str(FAMILY.pairwise_prompt(PairInput("Do it.", "", "a", "b")))
    assert prompt.startswith("[INST] You are a fair judge assistant") and prompt.endswith("###Feedback:  [/INST]")
    assert FAMILY.bos == "tokenizer"


def test_a_pair_without_rubric_is_judged_on_the_built_in_helpfulness_criterion(reference: ModuleType) -> None:
    assert reference.load_rubric("helpfulness", "relative") == module.DEFAULT_PAIRWISE_RUBRIC
    assert module.DEFAULT_PAIRWISE_RUBRIC in str(FAMILY.pairwise_prompt(PairInput("Do it.", "", "a", "b")))


@pytest.mark.parametrize(
    "name",
    ["ABS_SYSTEM_PROMPT", "REL_SYSTEM_PROMPT", "ABSOLUTE_PROMPT", "ABSOLUTE_PROMPT_WO_REF", "RELATIVE_PROMPT",
     "RELATIVE_PROMPT_WO_REF"],
)  # fmt: skip
def test_templates_are_the_packages_own(reference: ModuleType, name: str) -> None:
    assert getattr(module, name) == getattr(reference.prompts, name)


def test_defaults_are_the_decoding_prometheus_eval_asks_for(reference: ModuleType) -> None:
    _, pairwise = reference_pairwise(reference, PairInput("Do it.", "", "a", "b"))
    _, absolute = reference_grade(reference, GradeInput("Do it.", "", "a", "Rubric"))
    for params in (pairwise, absolute):
        assert params["repetition_penalty"] == FAMILY.defaults.repetition_penalty
        assert params["max_tokens"] == FAMILY.defaults.max_new_tokens
    assert FAMILY.label_first is False and FAMILY.modes == {"pairwise", "absolute"}
    assert FAMILY.score_range == (1, 5) and FAMILIES["prometheus2"] is PROMETHEUS2


# The reference's own example outputs: prometheus-eval, libs/prometheus-eval/tests/test_parser.py at the commit
# that released 0.1.20 (1a88c06f30c755962269d5e756b8f485ae06aecd), quoted with the value that file expects.
REFERENCE_ABSOLUTE_EXAMPLES: list[tuple[str, int | None]] = [
    ("Reference (Score 5) two results [RESULT] 3", 3),
    ("Reference (Score 5) not results", None),
    ("Excellent. [RESULT] 5 out of 5", 5),
    ("Poor performance. [RESULT] score of 1", 1),
    ("Good job. [Result] 3", 3),
    ("Needs improvement. [Result] Score: 2", 2),
    ("Well done. [Result] Result: 4", 4),
    ("Average. [Result] 4/5", 4),
    ("Excellent. [Result] 5 out of 5", 5),
    ("Poor performance. [Result] score of 1", 1),
    ("Good job. (Score 5)", 5),
    ("Good job. [Score 4]", 4),
    ("Good job. score: 3", 3),
    ("Good job. Score: 3", 3),
    ("Good job. score of 1", 1),
    ("Good job. [RESULT] (5)", 5),
    ("The score is definitely not 3.", None),
    ("I rate this a perfect 10!", None),
    ("Score: 2.5", None),
    ("Result: A", None),
    ("", None),
]
REFERENCE_RELATIVE_EXAMPLES: list[tuple[str, str | None]] = [
    ("[Response B is not better. [RESULT] A", "A"),
    ("Result A or B, not results", None),
    ("Response A is better. [RESULT] A", "A"),
    ("Prefer Response B. [RESULT] B", "B"),
    ("Feedback: Both responses are similar... [Response B]", "B"),
    ("Feedback: Both responses are clear... [Result] Response B", "B"),
    ("Feedback: Both responses are clear... Response B Response A", None),
    ("Feedback: Both responses are clear... [RESULT: B]", "B"),
    ("Feedback: Both responses are clear... [Result: B]", "B"),
    ("Feedback: Both responses are clear...Response A. [RESULT] B", "B"),
    ("After careful consideration, I select Response B.", None),
    ("Both responses have their merits.", None),
    ("Response C is clearly superior.", None),
    ("The better response is obviously B... or is it A? It's hard to decide.", None),
    ("", None),
]
# Ours: a missing marker, two markers, lowercase, trailing text, off the scale, newlines, an end-of-sequence mark.
EDGE_OUTPUTS = [
    "No marker at all.",
    "   ",
    "[RESULT] A",
    "Feedback first. [RESULT] A [RESULT] B",
    "Feedback first. [RESULT] A\n[RESULT] B",
    "Feedback. [RESULT] B\nTrailing line.",
    "Feedback. [RESULT] B and trailing text",
    "feedback. [result] a",
    "Feedback. [RESULT] b ",
    "Feedback. [RESULT] C",
    "Feedback. [RESULT] AB",
    "Result: B",
    "Feedback.\nResult: A",
    "Feedback. [RESULT] A</s>",
    "Feedback. [RESULT] 0",
    "Feedback. [RESULT] 6",
    "Feedback. [RESULT] 10",
    "Feedback. [RESULT] 3.",
    "Feedback. [RESULT] 3\n",
    "Feedback. [RESULT] 3 trailing",
    "Score: 3/5",
    "Feedback. [RESULT] 2 [RESULT] 4",
    "Feedback. [RESULT] 4\n[RESULT] 6",
    "Feedback. [RESULT] ٣",
    "  Padded feedback.  [RESULT] 5  ",
]
LETTERS = {"A": "response1", "B": "response2", None: None}


def reference_pattern(function: Any) -> str:
    """The pattern a reference parser function searches with (its one string constant)."""
    [pattern] = [constant for constant in function.__code__.co_consts if isinstance(constant, str)]
    return pattern


def where(match: re.Match[str] | None) -> tuple[int, int, str] | None:
    return None if match is None else (match.start(), match.end(), match.group(1))


def assert_matches_alike(reference: ModuleType, texts: Iterable[str]) -> None:
    """Our patterns find what the reference's find, in the same place, and the two parsers agree."""
    absolute = re.compile(reference_pattern(reference.parser._parse_output_absolute), re.I | re.X)
    relative = re.compile(reference_pattern(reference.parser._parse_output_relative), re.I | re.X | re.M)
    for text in texts:
        assert where(module.ABSOLUTE_RESULT.search(text)) == where(absolute.search(text)), text
        assert where(module.RELATIVE_RESULT.search(text)) == where(relative.search(text)), text
        assert FAMILY.parse_grade(text).score == reference.parser.parse_output(text, "absolute")[1]
        assert FAMILY.parse_pairwise(text).verdict == LETTERS[reference.parser.parse_output(text, "relative")[1]]


# Outputs built around every marker the patterns know: what comes before, the marker, the gap, the label, after.
BEFORE = ["", "Feedback.", "x\n", "[RESULT] A\n"]
MARKERS = ["[RESULT]", "[RESULT:", "[Response", "[Result]", "[Result] Response", "[Result:", "Result", "Result:",
           "\nResult:", "Score", "score:", "score of", "[SCORE]", "[Result]:", "Response"]  # fmt: skip
GAPS = ["", " ", "  \n ", "\t(", " ( ["]
LABELS = ["A", "b", "C", "3", "05", "6", "\u0663"]
AFTER = ["", "]", ")", " ", "\n", "\nmore", " x", "/5 out of 5"]


def test_the_parsers_match_where_the_references_patterns_do(reference: ModuleType) -> None:
    texts = ["".join(parts) for parts in itertools.product(BEFORE, MARKERS, GAPS, LABELS, AFTER)]
    assert_matches_alike(reference, texts)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*MARKERS, *GAPS, *LABELS, *AFTER, "B", "1", "5", "10"]), max_size=12).map("".join))
def test_the_parsers_match_where_the_references_patterns_do_on_any_mix(reference: ModuleType, text: str) -> None:
    assert_matches_alike(reference, [text])


@pytest.mark.parametrize("marker", ["Score:", "[RESULT:", "[Response", "\nResult", "[Result]"])
def test_a_long_whitespace_run_after_a_marker_parses_quickly(marker: str) -> None:
    # The reference's patterns take about 11 s on 20,000 spaces, growing with the square; ours, milliseconds.
    text = marker + " " * 100_000 + "x"
    started = time.perf_counter()
    assert FAMILY.parse_grade(text).score is None and FAMILY.parse_pairwise(text).verdict is None
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("text", [text for text, _ in REFERENCE_RELATIVE_EXAMPLES] + EDGE_OUTPUTS)
def test_pairwise_reading_is_the_references(reference: ModuleType, text: str) -> None:
    _, letter = reference.parser.parse_output(text, "relative")
    parsed = FAMILY.parse_pairwise(text)
    assert parsed.verdict == LETTERS[letter]
    # The feedback is the text before the marker, stripped (the parser's `feedback`, which it does not return).
    match = re.search(reference_pattern(reference.parser._parse_output_relative), text, re.I | re.X | re.M)
    before = text[: match.start()].strip() if match else ""
    assert parsed.reason == (before or None)


@pytest.mark.parametrize("text", [text for text, _ in REFERENCE_ABSOLUTE_EXAMPLES] + EDGE_OUTPUTS)
def test_grade_reading_is_the_references(reference: ModuleType, text: str) -> None:
    _, score = reference.parser.parse_output(text, "absolute")
    parsed = FAMILY.parse_grade(text)
    assert parsed.score == score
    match = re.search(reference_pattern(reference.parser._parse_output_absolute), text, re.I | re.X)
    before = text[: match.start()].strip() if match and score else ""
    assert parsed.feedback == (before or None)


def test_the_reference_examples_read_as_their_file_expects() -> None:
    assert [FAMILY.parse_grade(text).score for text, _ in REFERENCE_ABSOLUTE_EXAMPLES] == [
        score for _, score in REFERENCE_ABSOLUTE_EXAMPLES
    ]
    assert [FAMILY.parse_pairwise(text).verdict for text, _ in REFERENCE_RELATIVE_EXAMPLES] == [
        LETTERS[letter] for _, letter in REFERENCE_RELATIVE_EXAMPLES
    ]


def test_the_feedback_is_the_text_before_the_marker() -> None:
    assert FAMILY.parse_pairwise(" Response B cites sources.\n [RESULT] B").reason == "Response B cites sources."
    assert FAMILY.parse_pairwise("[RESULT] A") == FAMILY.parse_pairwise("[RESULT] A  ")
    assert FAMILY.parse_pairwise("[RESULT] A").reason is None
    assert FAMILY.parse_grade("Kind and warm. [RESULT] 5").feedback == "Kind and warm."
    assert FAMILY.parse_pairwise("Unsure. [RESULT] C").reason is None


def test_a_number_too_long_to_read_is_no_score_where_the_reference_raises(reference: ModuleType) -> None:
    text = "Feedback. [RESULT] " + "0" * 5000 + "3"
    with pytest.raises(ValueError):
        reference.parser.parse_output(text, "absolute")
    assert FAMILY.parse_grade(text).score is None


# The demo judge's output format.
DEMO = FAMILY.demo()
FEEDBACKS = ["Response A is better", "Result A Result B", "score of the answer", "Score, result, response."]


def test_the_demo_regexes_suit_structured_output() -> None:
    import xgrammar  # vLLM's structured-output backend; imported here, where it is needed, as it loads torch

    assert set(DEMO.output_regex) == FAMILY.modes and DEMO.chat_template is None
    for regex in DEMO.output_regex.values():
        re.compile(regex)
        assert not any(token in regex for token in ("(?=", "(?!", "(?<", "\\s", "\\d", "\\1"))
        xgrammar.Grammar.from_regex(regex)  # raises on what the backend cannot take


def test_every_verdict_and_score_is_reachable_and_reads_back() -> None:
    pairwise, absolute = (re.compile(DEMO.output_regex[mode]) for mode in ("pairwise", "absolute"))
    verdicts = {}
    for feedback in FEEDBACKS:
        for letter in "AB":
            text = f"{feedback} [RESULT] {letter}"
            assert pairwise.fullmatch(text)
            verdicts[letter] = FAMILY.parse_pairwise(text).verdict
        for score in range(1, 6):
            text = f"{feedback} [RESULT] {score}"
            assert absolute.fullmatch(text) and FAMILY.parse_grade(text).score == score
    assert verdicts == {"A": "response1", "B": "response2"}
    assert not pairwise.fullmatch("Feedback here [RESULT] C") and not absolute.fullmatch("Feedback here [RESULT] 6")


@settings(max_examples=300, deadline=None)
@given(st.from_regex(DEMO.output_regex["pairwise"], fullmatch=True))
def test_every_demo_pairwise_output_parses(text: str) -> None:
    assert FAMILY.parse_pairwise(text).verdict == LETTERS[text[-1]]


@settings(max_examples=300, deadline=None)
@given(st.from_regex(DEMO.output_regex["absolute"], fullmatch=True))
def test_every_demo_grade_parses(text: str) -> None:
    assert FAMILY.parse_grade(text).score == int(text[-1])


def test_the_demo_corpus_shows_both_prompts_and_outputs_in_the_format() -> None:
    outputs = [text for text in DEMO.corpus if "[RESULT]" in text and not text.startswith("[INST]")]
    prompts = [text for text in DEMO.corpus if text.startswith("[INST]")]
    assert len(prompts) >= 4 and any("###Reference Answer" in text for text in prompts)
    assert any(re.fullmatch(DEMO.output_regex["pairwise"], text) for text in outputs)
    assert all(re.fullmatch(DEMO.output_regex["pairwise"], t) or re.fullmatch(DEMO.output_regex["absolute"], t)
               for t in outputs)  # fmt: skip
