"""A judge family: how one kind of judge model is prompted and how its output is read.

A family is one module (families/<name>.py) that knows its reference implementation's templates, its output
format and its defaults; it never sees an engine. The judging core (judge/pipeline.py) turns its prompts into
the engine's input (token ids or text), calls the engine and hands the output back to the family to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pandalm_client.models import Verdict

JudgeMode = Literal["pairwise", "absolute"]
# How the prompt's text becomes the model's input:
#   `pandalm`: the server's --bos-token id, then the text's tokens (PandaLM trained with `</s>` as BOS);
#   `tokenizer`: the tokenizer's own encoding with its special tokens, as vLLM's `generate(text)` does;
#   `chat`: the model's own chat template over `ChatPrompt.messages`, as vLLM's chat endpoint does.
BosRule = Literal["pandalm", "tokenizer", "chat"]


@dataclass(frozen=True, slots=True)
class PairInput:
    """One order of a pair, as the family's prompt shows it (response1 first)."""

    instruction: str
    input: str
    response1: str
    response2: str
    # A reference answer and a rubric, for the families whose templates take them.
    reference: str | None = None
    rubric: str | None = None


@dataclass(frozen=True, slots=True)
class GradeInput:
    """One response to grade on an absolute scale."""

    instruction: str
    input: str
    response: str
    rubric: str
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    """Messages for the judge model's own chat template: (role, content) pairs, `system` and `user`."""

    messages: tuple[tuple[str, str], ...]


# A family's prompt: the model's input text exactly (`pandalm` and `tokenizer` rules), or chat messages.
FamilyPrompt = str | ChatPrompt


@dataclass(frozen=True, slots=True)
class ParsedVerdict:
    """A pairwise output, read. `verdict` None: the output does not say, never a guessed tie."""

    verdict: Verdict | None
    reason: str | None = None
    reference: str | None = None
    # The two scores a scoring family (JudgeLM) gives, response1's first.
    scores: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class ParsedGrade:
    """An absolute grade, read. `score` None: the output gives no score on the family's scale."""

    score: int | None
    feedback: str | None = None


@dataclass(frozen=True, slots=True)
class FamilyDefaults:
    """Decoding the reference uses, where it differs from the server's settings (None: the server's)."""

    repetition_penalty: float | None = None
    max_new_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class DemoFormat:
    """What a family's demo judge is built from: text its tokenizer learns, and its constrained output."""

    corpus: tuple[str, ...]
    # Regular expressions the demo's output is constrained to, by mode.
    output_regex: dict[JudgeMode, str]
    # A Jinja chat template, for `chat` families (the demo's tokenizer carries it).
    chat_template: str | None = None


class Family(Protocol):
    """One judge family; families/<name>.py each define one instance, named in families/__init__.py."""

    @property
    def name(self) -> str:
        """`pandalm`, `prometheus2`, `judgelm`, `mtbench`."""
        ...

    @property
    def template_version(self) -> str:
        """Bumped whenever a prompt can change: verdicts are comparable only on one version (the cache keys it)."""
        ...

    @property
    def modes(self) -> frozenset[JudgeMode]: ...

    @property
    def bos(self) -> BosRule: ...

    @property
    def label_first(self) -> bool:
        """Whether the output starts with the verdict's label (PandaLM): then verdict mode and label
        probabilities are available; otherwise the result says they are not."""
        ...

    @property
    def defaults(self) -> FamilyDefaults: ...

    def pairwise_prompt(self, pair: PairInput) -> FamilyPrompt:
        """The reference's prompt for one order of a pair, byte for byte."""
        ...

    def parse_pairwise(self, text: str) -> ParsedVerdict:
        """Read a pairwise output as the reference's parser does; malformed: `verdict=None`."""
        ...

    def grade_prompt(self, item: GradeInput) -> FamilyPrompt:
        """The reference's absolute-grading prompt (families with `absolute` in `modes`)."""
        ...

    def parse_grade(self, text: str) -> ParsedGrade:
        """Read an absolute-grading output; malformed: `score=None`."""
        ...

    @property
    def score_range(self) -> tuple[int, int] | None:
        """The absolute scale, inclusive (Prometheus: 1-5); None without `absolute`."""
        ...

    def demo(self) -> DemoFormat:
        """What this family's demo judge is built from."""
        ...
