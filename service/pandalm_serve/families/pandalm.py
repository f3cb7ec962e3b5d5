"""PandaLM (WeOpenML/PandaLM): the default family. Its prompt, parser and format are judge/prompt.py,
judge/parse.py and judge/format.py, unchanged; this module presents them as a family."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..judge.format import VERDICTS, output_regex, render_output
from ..judge.parse import parse_output
from ..judge.prompt import TEMPLATE_VERSION, build_prompt
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

# Lengths are bounded so a demo verdict takes about a second on a CPU.
DEMO_OUTPUT_REGEX = output_regex(reason="[A-Za-z][A-Za-z ,.]{7,47}", reference="[A-Za-z][A-Za-z ,.]{7,47}")


@dataclass(frozen=True, slots=True)
class PandaLMFamily:
    name: str = "pandalm"
    template_version: str = TEMPLATE_VERSION
    modes: frozenset[JudgeMode] = frozenset({"pairwise"})
    bos: BosRule = "pandalm"
    label_first: bool = True
    # The server's settings are PandaLM's reference decoding (repetition penalty 1.2, 512 new tokens).
    defaults: FamilyDefaults = field(default_factory=FamilyDefaults)
    score_range: tuple[int, int] | None = None

    def pairwise_prompt(self, pair: PairInput) -> FamilyPrompt:
        return build_prompt(pair.instruction, pair.input, pair.response1, pair.response2)

    def parse_pairwise(self, text: str) -> ParsedVerdict:
        parsed = parse_output(text)
        return ParsedVerdict(parsed.verdict, parsed.reason, parsed.reference)

    def grade_prompt(self, item: GradeInput) -> FamilyPrompt:
        raise NotImplementedError("PandaLM judges pairs only")

    def parse_grade(self, text: str) -> ParsedGrade:
        raise NotImplementedError("PandaLM judges pairs only")

    def demo(self) -> DemoFormat:
        corpus = (
            build_prompt("Instruction", "Input", "Response one", "Response two"),
            build_prompt("Instruction", "", "Response one", "Response two"),
            *(render_output(verdict, "Reason.", "Reference.") for verdict in VERDICTS),
        )
        return DemoFormat(corpus=corpus, output_regex={"pairwise": DEMO_OUTPUT_REGEX})


PANDALM = PandaLMFamily()
