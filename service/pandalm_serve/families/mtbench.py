"""MT-bench (FastChat's LLM-as-a-judge): any instruct model judges a pair with FastChat's pairwise prompts.

The judge receives a system and a user message, as FastChat's `run_judge_pair` sends them to an OpenAI judge
(fschat 0.2.36, `fastchat/llm_judge/common.py`), through the served model's own chat template. Without a
reference answer the prompt is `pair-v2`; with one, `pair-math-v1`, the reference-guided prompt FastChat uses
for its math, reasoning and coding questions. An empty reference counts as none.

FastChat's question has no separate input: a non-empty `input` is appended to the instruction after a blank
line (`instruction + "\\n\\n" + input`); an empty input leaves the question, hence the prompt, FastChat's.

The verdict is read with FastChat's rule: `[[A]]` anywhere wins, else `[[B]]`, else `[[C]]` (a tie); without
any, FastChat's "error", here `verdict=None`. The verdict ends the judgment, so `label_first` is False.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pandalm_client.models import Verdict

from .base import (
    BosRule,
    ChatPrompt,
    DemoFormat,
    FamilyDefaults,
    FamilyPrompt,
    GradeInput,
    JudgeMode,
    PairInput,
    ParsedGrade,
    ParsedVerdict,
)

# FastChat's `pair-v2` and `pair-math-v1` (system prompt and prompt template), verbatim from
# fastchat/llm_judge/data/judge_prompts.jsonl at lm-sys/FastChat v0.2.36 (commit b21d0f78), Apache-2.0;
# vendored with its licence in tests/families/reference/mtbench/.
PAIR_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. You should choose the assistant that follows the user's instructions "
    "and answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by "
    "comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the "
    "order in which the responses were presented does not influence your decision. Do not allow the length of the "
    "responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as "
    "possible. After providing your explanation, output your final verdict by strictly following this format: "
    '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
PAIR_TEMPLATE = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)
PAIR_MATH_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. Your evaluation should consider correctness and helpfulness. You will "
    "be given a reference answer, assistant A's answer, and assistant B's answer. Your job is to evaluate which "
    "assistant's answer is better. Begin your evaluation by comparing both assistants' answers with the reference "
    "answer. Identify and correct any mistakes. Avoid any position biases and ensure that the order in which the "
    "responses were presented does not influence your decision. Do not allow the length of the responses to "
    "influence your evaluation. Do not favor certain names of the assistants. Be as objective as possible. After "
    "providing your explanation, output your final verdict by strictly following this format: "
    '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
PAIR_MATH_TEMPLATE = (
    "[User Question]\n{question}\n\n"
    "[The Start of Reference Answer]\n{ref_answer_1}\n[The End of Reference Answer]\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

# In the order FastChat tests them: an output holding several markers gets the first of this list found.
MARKERS: tuple[tuple[str, Verdict], ...] = (("[[A]]", "response1"), ("[[B]]", "response2"), ("[[C]]", "tie"))

# A short explanation, then the verdict: the explanation's characters cannot form a marker, so the final
# marker is the only one and every match parses. Lengths bounded so a demo verdict takes about a second.
DEMO_OUTPUT_REGEX = r"[A-Za-z][A-Za-z ,.]{7,47} \[\[(A|B|C)\]\]"

# The demo judge's chat template (system and user messages, then the assistant's turn). HF renders chat
# templates with trim_blocks, so the newlines are Jinja string escapes, not template text.
DEMO_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def question_of(pair: PairInput) -> str:
    """FastChat's single question: the instruction, and a non-empty input after a blank line."""
    return f"{pair.instruction}\n\n{pair.input}" if pair.input else pair.instruction


@dataclass(frozen=True, slots=True)
class MTBenchFamily:
    name: str = "mtbench"
    template_version: str = "mtbench-v1"
    modes: frozenset[JudgeMode] = frozenset({"pairwise"})
    bos: BosRule = "chat"
    label_first: bool = False
    # FastChat's judge call: temperature 0 (greedy), max_tokens 2048, no repetition penalty.
    defaults: FamilyDefaults = field(
        default_factory=lambda: FamilyDefaults(repetition_penalty=1.0, max_new_tokens=2048)
    )
    score_range: tuple[int, int] | None = None

    def pairwise_prompt(self, pair: PairInput) -> ChatPrompt:
        # str.format as FastChat does: braces inside the values are not read as fields.
        if pair.reference:
            system = PAIR_MATH_SYSTEM
            user = PAIR_MATH_TEMPLATE.format(
                question=question_of(pair),
                answer_a=pair.response1,
                answer_b=pair.response2,
                ref_answer_1=pair.reference,
            )
        else:
            system = PAIR_SYSTEM
            user = PAIR_TEMPLATE.format(question=question_of(pair), answer_a=pair.response1, answer_b=pair.response2)
        return ChatPrompt((("system", system), ("user", user)))

    def parse_pairwise(self, text: str) -> ParsedVerdict:
        """FastChat's verdict; the reason is the judgment before the (last) marker that decided it."""
        for marker, verdict in MARKERS:
            at = text.rfind(marker)
            if at >= 0:
                return ParsedVerdict(verdict, text[:at].strip() or None)
        return ParsedVerdict(None)

    def grade_prompt(self, item: GradeInput) -> FamilyPrompt:
        raise NotImplementedError("MT-bench judging here is pairwise only")

    def parse_grade(self, text: str) -> ParsedGrade:
        raise NotImplementedError("MT-bench judging here is pairwise only")

    def demo(self) -> DemoFormat:
        with_reference = PairInput("Question", "", "Answer one", "Answer two", reference="Reference answer")
        without_reference = PairInput("Question", "Input", "Answer one", "Answer two")
        corpus = (
            *(
                content
                for pair in (without_reference, with_reference)
                for _, content in self.pairwise_prompt(pair).messages
            ),
            "Assistant A answers the question better. [[A]]",
            "Assistant B is more accurate and helpful. [[B]]",
            "Both answers are equally good. [[C]]",
        )
        return DemoFormat(corpus=corpus, output_regex={"pairwise": DEMO_OUTPUT_REGEX}, chat_template=DEMO_CHAT_TEMPLATE)


MTBENCH = MTBenchFamily()
