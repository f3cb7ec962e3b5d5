"""Prometheus 2 (prometheus-eval): relative grading (A or B) and absolute grading (a 1-5 score with feedback).

Faithful to prometheus-eval 0.1.20 (github.com/prometheus-eval/prometheus-eval, libs/prometheus-eval, Apache-2.0)
run with a vLLM model: `PrometheusEval` fills its template, renders [system, user] through fastchat 0.2.36's
`mistral` conversation template into text, and `VLLM.completions` hands that text (stripped, which changes nothing
here) to `LLM.generate`, whose tokenizer adds the BOS. So prompts are text with the `tokenizer` BOS rule.

Where the reference is silent or our API has more:
- `input` (PandaLM's optional context): the templates say "An instruction (might include an Input inside it)",
  so a non-empty input is appended to the instruction after a blank line; an empty input leaves the instruction,
  and so the reference's prompt, unchanged.
- The reference answer: `None` selects the template without one (`*_WO_REF`); any string, even empty, the
  template with one. (PrometheusEval picks the template per judge, not per item; this is the per-item choice
  its `get_prompt_template(..., include_reference)` makes.)
- The rubric: absolute grading always has one, used as given. A pair without one is judged on helpfulness,
  the first of the package's built-in rubrics, in the form it gives relative grading:
  `load_rubric("helpfulness", "relative")`, the rubric's first line (its criterion, without the score lines).
- Feedback (`reason`): the output before the result marker, stripped, as the reference's parser computes it
  (its `feedback`; it then returns the whole output instead); None when that is empty or nothing parses.
- No tie: Prometheus chooses A or B, so a verdict is `response1` (A, shown first), `response2` or None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pandalm_client.models import Verdict

from .base import (
    BosRule,
    DemoFormat,
    FamilyDefaults,
    GradeInput,
    JudgeMode,
    PairInput,
    ParsedGrade,
    ParsedVerdict,
)

# Bumped whenever a prompt below can change.
TEMPLATE_VERSION = "prometheus2-v1"

# --- Copied verbatim from prometheus_eval/prompts.py, prometheus-eval 0.1.20 (Apache-2.0). ---
ABS_SYSTEM_PROMPT = "You are a fair judge assistant tasked with providing clear, objective feedback based on specific criteria, ensuring each assessment reflects the absolute standards set for performance."  # noqa: E501
REL_SYSTEM_PROMPT = "You are a fair judge assistant assigned to deliver insightful feedback that compares individual performances, highlighting how each stands relative to others within the same cohort."  # noqa: E501


ABSOLUTE_PROMPT = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, a reference answer that gets a score of 5, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of the response strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, write a score that is an integer between 1 and 5. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (an integer number between 1 and 5)"
4. Please do not generate any other opening, closing, and explanations.

###The instruction to evaluate:
{instruction}

###Response to evaluate:
{response}

###Reference Answer (Score 5):
{reference_answer}

###Score Rubrics:
{rubric}

###Feedback: """  # noqa: E501


ABSOLUTE_PROMPT_WO_REF = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of the response strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, write a score that is an integer between 1 and 5. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (an integer number between 1 and 5)"
4. Please do not generate any other opening, closing, and explanations.

###The instruction to evaluate:
{instruction}

###Response to evaluate:
{response}

###Score Rubrics:
{rubric}

###Feedback: """  # noqa: E501


RELATIVE_PROMPT = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, a reference answer, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of two responses strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, choose a better response between Response A and Response B. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (A or B)"
4. Please do not generate any other opening, closing, and explanations.

###Instruction:
{instruction}

###Response A:
{response_A}

###Response B:
{response_B}

###Reference Answer:
{reference_answer}

###Score Rubric:
{rubric}

###Feedback: """  # noqa: E501


RELATIVE_PROMPT_WO_REF = """###Task Description:
An instruction (might include an Input inside it), a response to evaluate, and a score rubric representing a evaluation criteria are given.
1. Write a detailed feedback that assess the quality of two responses strictly based on the given score rubric, not evaluating in general.
2. After writing a feedback, choose a better response between Response A and Response B. You should refer to the score rubric.
3. The output format should look as follows: "(write a feedback for criteria) [RESULT] (A or B)"
4. Please do not generate any other opening, closing, and explanations.

###Instruction:
{instruction}

###Response A:
{response_A}

###Response B:
{response_B}

###Score Rubric:
{rubric}

###Feedback: """  # noqa: E501


# --- End of the copy. ---

# `load_rubric("helpfulness", "relative")` in prometheus_eval/prompts.py 0.1.20: the first line of its
# HELPFULNESS_RUBRIC. The rubric a pair without one is judged on.
DEFAULT_PAIRWISE_RUBRIC = "[Does the model provide relevant and useful responses to the user's needs or questions?]"

# The patterns of `_parse_output_absolute` and `_parse_output_relative` in prometheus_eval/parser.py,
# prometheus-eval 0.1.20 (Apache-2.0): the same alternatives in the same order, written compactly (its verbose
# form's comments and spaces removed), with one change. Where the reference lets two quantifiers share a
# whitespace run before the captured number or letter (`\s*(?:\(|\[|\s)*`, `\[RESULT:\s*` then `\s*`), ours
# takes the run atomically, `(?>...)`: what follows cannot be whitespace, so a match takes the whole run anyway
# and the matches are the reference's (tests/families/test_prometheus2.py compares them), but a marker followed
# by a long whitespace run costs linear time, not quadratic (the reference: 11 s on 20,000 spaces).
ABSOLUTE_RESULT = re.compile(
    r"(?:\[RESULT\]|\[SCORE\]|Score:?|score:?|Result:?|\[Result\]:?|score\s+of)"
    r"(?>\s*(?:\(|\[|\s)*)(\d+)(?:(?:\)|\]|\s|$)|(?:/\s*5|\s*out\s*of\s*5))?(?:\s*$)",
    re.IGNORECASE,
)
RELATIVE_RESULT = re.compile(
    r"(?:\[RESULT\]|\[RESULT:(?>\s*)|\[Response(?>\s+)|\[Result\](?:\s+Response)?|\[Result:(?>\s*)"
    r"|(?:^|\n)Result:?(?>\s*))(?>\s*)(A|B)(?:\])?(?:\s*$)",
    re.IGNORECASE | re.MULTILINE,
)

# fastchat 0.2.36's `mistral` conversation (fastchat/conversation.py, Apache-2.0) with a system message and one
# user message, rendered by its LLAMA2 separator style with an empty assistant turn: the system template
# `[INST] {system_message}\n`, the user's message and a space, then the assistant's role tag.
MISTRAL_PROMPT = "[INST] {system}\n{user} [/INST]"

# The parameters `batch_completions_with_retries` (prometheus_eval/utils.py 0.1.20) uses when given none; its
# sampling (temperature 1.0, top_p 0.9) is left out: we decode greedily.
DEFAULTS = FamilyDefaults(repetition_penalty=1.03, max_new_tokens=1024)

VERDICT_OF_LETTER: dict[str, Verdict] = {"A": "response1", "B": "response2"}
SCORE_RANGE = (1, 5)

# Demo outputs: a short feedback from a small alphabet, then the marker, as the prompt's stated format has it.
# The feedback holds no digit, bracket or newline, so the parsers' only match is the final marker.
DEMO_FEEDBACK = "[A-Za-z][A-Za-z ,.]{7,47}"
DEMO_OUTPUT_REGEX: dict[JudgeMode, str] = {
    "pairwise": DEMO_FEEDBACK + r" \[RESULT\] (A|B)",
    "absolute": DEMO_FEEDBACK + rf" \[RESULT\] [{SCORE_RANGE[0]}-{SCORE_RANGE[1]}]",
}


def mistral_prompt(system: str, user: str) -> str:
    """The text `PrometheusEval._get_conversation_prompt` makes of [system, user] for a vLLM model."""
    # Neither end can be whitespace, so the `.strip()` in VLLM.completions leaves this text as it is.
    return MISTRAL_PROMPT.format(system=system, user=user)


def with_input(instruction: str, context: str) -> str:
    """The instruction as the templates show it: a non-empty input follows it after a blank line."""
    return f"{instruction}\n\n{context}" if context else instruction


def feedback_before(text: str, match: re.Match[str]) -> str | None:
    """The text before the result marker, stripped (the reference parser's `feedback`); None when empty."""
    return text[: match.start()].strip() or None


@dataclass(frozen=True, slots=True)
class Prometheus2Family:
    """Prometheus 2 as prometheus-eval 0.1.20 prompts and reads it (the module's docstring has the choices)."""

    name: str = "prometheus2"
    template_version: str = TEMPLATE_VERSION
    modes: frozenset[JudgeMode] = frozenset({"pairwise", "absolute"})
    bos: BosRule = "tokenizer"
    # The verdict comes after the feedback, at the end of the output.
    label_first: bool = False
    defaults: FamilyDefaults = DEFAULTS
    score_range: tuple[int, int] | None = SCORE_RANGE

    def pairwise_prompt(self, pair: PairInput) -> str:
        template = RELATIVE_PROMPT_WO_REF if pair.reference is None else RELATIVE_PROMPT
        # `.format` substitutes each value once and never reads braces inside it, as the reference does.
        content = template.format(
            instruction=with_input(pair.instruction, pair.input),
            response_A=pair.response1,
            response_B=pair.response2,
            rubric=DEFAULT_PAIRWISE_RUBRIC if pair.rubric is None else pair.rubric,
            reference_answer=pair.reference,
        )
        return mistral_prompt(REL_SYSTEM_PROMPT, content)

    def parse_pairwise(self, text: str) -> ParsedVerdict:
        match = RELATIVE_RESULT.search(text)
        if match is None:
            return ParsedVerdict(None)
        return ParsedVerdict(VERDICT_OF_LETTER[match.group(1).upper()], feedback_before(text, match))

    def grade_prompt(self, item: GradeInput) -> str:
        template = ABSOLUTE_PROMPT_WO_REF if item.reference is None else ABSOLUTE_PROMPT
        content = template.format(
            instruction=with_input(item.instruction, item.input),
            response=item.response,
            rubric=item.rubric,
            reference_answer=item.reference,
        )
        return mistral_prompt(ABS_SYSTEM_PROMPT, content)

    def parse_grade(self, text: str) -> ParsedGrade:
        match = ABSOLUTE_RESULT.search(text)
        if match is None:
            return ParsedGrade(None)
        # As the reference: the first match decides, and a number off the scale is no score.
        try:
            score = int(match.group(1))
        except ValueError:  # more digits than `int` reads (sys.get_int_max_str_digits): the reference raises
            return ParsedGrade(None)
        if not SCORE_RANGE[0] <= score <= SCORE_RANGE[1]:
            return ParsedGrade(None)
        return ParsedGrade(score, feedback_before(text, match))

    def demo(self) -> DemoFormat:
        low, high = SCORE_RANGE
        pair = PairInput("Instruction", "", "Response one", "Response two")
        item = GradeInput("Instruction", "", "Response", "[Criterion]\nScore 1: Bad.\nScore 5: Good.")
        corpus = (
            self.pairwise_prompt(pair),
            self.pairwise_prompt(PairInput("Instruction", "Input", "One", "Two", "Reference", "Rubric")),
            self.grade_prompt(item),
            self.grade_prompt(GradeInput("Instruction", "Input", "Response", "Rubric", "Reference")),
            "Response A follows the rubric better. [RESULT] A",
            "Response B is clearer and more helpful. [RESULT] B",
            *(f"The response meets the rubric partly. [RESULT] {score}" for score in range(low, high + 1)),
        )
        return DemoFormat(corpus=corpus, output_regex=dict(DEMO_OUTPUT_REGEX))


PROMETHEUS2 = Prometheus2Family()
