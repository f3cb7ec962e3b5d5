"""JudgeLM (baaivision/JudgeLM): two scores from 1 to 10 on the first line, then the explanation.

The prompt is what JudgeLM's `judgelm/llm_judge/gen_model_judgement.py` feeds its model: the system line, the
pair template (with a `[Reference Answer]` section when there is a reference) and `### Response:`, as text
the tokenizer encodes with its BOS (the script then sets the first id to 1, LLaMA's BOS, which the LLaMA
tokenizer of JudgeLM's models has put there already). Its web demo builds the same text.

JudgeLM's question has no separate input field (its own data glues the context onto the question): a
non-empty `input` follows the instruction after a blank line; an empty one leaves JudgeLM's prompt unchanged.
JudgeLM has no rubric; a rubric given to this family is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pandalm_client.models import Verdict

from .base import (
    BosRule,
    DemoFormat,
    FamilyDefaults,
    FamilyPrompt,
    GradeInput,
    JudgeMode,
    PairInput,
    ParsedGrade,
    ParsedVerdict,
)

# Copied verbatim from `conv_judge_pair` and `conv_judge_pair_w_reference` in judgelm/llm_judge/common.py,
# baaivision/JudgeLM commit 35f6f17 (unchanged at 00c4516), Apache-2.0.
SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
INSTRUCTIONS = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above.\nPlease rate the helpfulness, relevance, accuracy, level of details of their "
    "responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates "
    "better overall performance.\nPlease first output a single line containing only two values indicating the "
    "scores for Assistant 1 and 2, respectively. The two scores are separated by a space. In the subsequent "
    "line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias and "
    "ensuring that the order in which the responses were presented does not affect your judgment."
)
_ANSWERS = (
    "[The Start of Assistant 1's Answer]\n{answer_1}\n\n[The End of Assistant 1's Answer]\n\n"
    "[The Start of Assistant 2's Answer]\n{answer_2}\n\n[The End of Assistant 2's Answer]\n\n"
    "[System]\n{prompt}\n\n"
)
TEMPLATE = "[Question]\n{question}\n\n" + _ANSWERS
TEMPLATE_WITH_REFERENCE = "[Question]\n{question}\n\n[Reference Answer]\n{reference}\n\n" + _ANSWERS
APPENDIX = "### Response:"
# The conversation's `sep`: the script cuts the output at it.
STOP = "</s>"
# What `parse_score` returns for an output it cannot read.
_ERROR_SCORES = (-1.0, -1.0)

# gen_model_judgement.py: `--max-new-token` 2048 and no repetition penalty (its web demo: 2048 and 1.0).
DEFAULTS = FamilyDefaults(repetition_penalty=1.0, max_new_tokens=2048)

# Short demo outputs: each score an integer on the scale the prompt asks for, 1 to 10.
_SCORE_REGEX = "(10|[1-9])"
DEMO_OUTPUT_REGEX = f"{_SCORE_REGEX} {_SCORE_REGEX}\\n[A-Za-z][A-Za-z ,.]{{7,47}}"


def question_text(instruction: str, context: str) -> str:
    """JudgeLM's question: the instruction, then a non-empty input (`context`) after a blank line."""
    return f"{instruction}\n\n{context}" if context else instruction


def read_scores(first_line: str) -> tuple[float, float] | None:
    """JudgeLM's `parse_score` on the output's first line; None where it returns its error pair `-1 -1`
    (an output reading `-1 -1` is that pair too). JudgeLM's metrics would count the error pair as a tie:
    here it is unparsed, never a guessed tie.

    Like the reference: commas count as spaces, and exactly two space-separated numbers are wanted
    (`8, 7` is three fields, so it is not read). Unlike it, non-finite scores (`nan`, `inf`) are not read:
    JudgeLM would call a `nan` pair a tie.
    """
    fields = first_line.replace(",", " ").split(" ")
    if len(fields) != 2:
        return None
    try:
        scores = (float(fields[0]), float(fields[1]))
    except ValueError:
        return None
    if scores == _ERROR_SCORES or not all(math.isfinite(score) for score in scores):
        return None
    return scores


def verdict_of(scores: tuple[float, float]) -> Verdict:
    """JudgeLM's `translate_score_to_win_list` with its threshold 0: the higher score wins, equal is a tie."""
    if scores[0] > scores[1]:
        return "response1"
    if scores[1] > scores[0]:
        return "response2"
    return "tie"


@dataclass(frozen=True, slots=True)
class JudgeLMFamily:
    name: str = "judgelm"
    template_version: str = "judgelm-v1"
    modes: frozenset[JudgeMode] = frozenset({"pairwise"})
    bos: BosRule = "tokenizer"
    # The output starts with response1's score, not with a verdict label.
    label_first: bool = False
    defaults: FamilyDefaults = DEFAULTS
    score_range: tuple[int, int] | None = None

    def pairwise_prompt(self, pair: PairInput) -> str:
        question = question_text(pair.instruction, pair.input)
        answers = {"answer_1": pair.response1, "answer_2": pair.response2, "prompt": INSTRUCTIONS}
        if pair.reference is None:
            body = TEMPLATE.format(question=question, **answers)
        else:
            body = TEMPLATE_WITH_REFERENCE.format(question=question, reference=pair.reference, **answers)
        return f"{SYSTEM}\n{body}{APPENDIX}"

    def parse_pairwise(self, text: str) -> ParsedVerdict:
        # As gen_model_judgement.py does before parse_score: cut at the stop string, strip. Only where the
        # string is there: without it the script's `find` gives -1 and drops the last character, a slip.
        if STOP in text:
            text = text[: text.find(STOP)]
        first_line, _, explanation = text.strip().partition("\n")
        scores = read_scores(first_line)
        if scores is None:
            return ParsedVerdict(None)
        return ParsedVerdict(verdict_of(scores), explanation.strip() or None, scores=scores)

    def grade_prompt(self, item: GradeInput) -> FamilyPrompt:
        raise NotImplementedError("JudgeLM judges pairs only")

    def parse_grade(self, text: str) -> ParsedGrade:
        raise NotImplementedError("JudgeLM judges pairs only")

    def demo(self) -> DemoFormat:
        with_input = PairInput("Instruction", "Input", "Response one", "Response two")
        with_reference = PairInput("Instruction", "", "Response one", "Response two", reference="Reference.")
        corpus = (
            self.pairwise_prompt(with_input),
            self.pairwise_prompt(with_reference),
            "9 6\nAssistant 1 answers the question, Assistant 2 does not.",
            "3 8\nAssistant 2 is accurate and detailed.",
            "7 7\nBoth answers are equally helpful.",
        )
        return DemoFormat(corpus=corpus, output_regex={"pairwise": DEMO_OUTPUT_REGEX})


JUDGELM = JudgeLMFamily()
