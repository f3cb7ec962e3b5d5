"""PandaLM's three labels as the engine sees them: which tokens to ask log-probabilities for, and reading them.

In the `token_ids` prompt format the labels are exact token ids (`TokenLabels`); in `text`, where the
server tokenizes, they are matched by text among the server's top tokens (`TextLabels`). The judge picks
one of the two by the format the engine declares, once it has started.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pandalm_client.models import LabelProbabilities, Verdict

from ..engines.base import FirstLogprobs, Sampling, token_key
from ..errors import ConfigurationError
from .format import LABEL_TEXTS, VERDICTS
from .prompt import build_prompt
from .tokens import PromptEncoder

# Top log-probabilities asked for with text prompts: the most OpenAI's completions API allows.
TOP_LOGPROBS = 5
# Tokens to generate for a label alone with text prompts, where they cannot be counted: enough for `Tie`.
_TEXT_LABEL_TOKENS = 3


@dataclass(frozen=True, slots=True)
class LabelRead:
    probabilities: LabelProbabilities | None
    note: str | None  # why the probabilities are missing or partial


class LabelSet(Protocol):
    """How the judge asks the engine for the labels' log-probabilities, and reads them."""

    @property
    def max_length(self) -> int:
        """Tokens of the longest label."""
        ...

    def ask(self, sampling: Sampling) -> Sampling:
        """`sampling`, asking for what `read` needs at the first generated position."""
        ...

    def read(self, first: FirstLogprobs | None) -> LabelRead: ...


@dataclass(frozen=True, slots=True)
class TokenLabels:
    """Each label's token ids after a prompt, for engines that take PandaLM's token ids."""

    first_ids: tuple[int, int, int]  # the token that starts each label, in the order of VERDICTS
    # Per label, its first token and every other token that starts spelling it (`T`, `Ti` for
    # `Tie`): the model may start a label with any of them.
    starts: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    max_length: int

    @property
    def all_ids(self) -> tuple[int, ...]:
        return tuple(i for group in self.starts for i in group)

    def ask(self, sampling: Sampling) -> Sampling:
        return dataclasses.replace(sampling, logprob_token_ids=self.all_ids, top_logprobs=None)

    def read(self, first: FirstLogprobs | None) -> LabelRead:
        if first is None:
            return LabelRead(None, "the engine returned no log-probabilities")
        values = [_most_likely([first.get(token_key(token_id)) for token_id in group]) for group in self.starts]
        return LabelRead(probabilities(values), None)


@dataclass(frozen=True, slots=True)
class TextLabels:
    """Labels matched by text among the top tokens, for servers that tokenize the prompt themselves.

    A token counts for a label when its text (less leading spaces) starts the label (`T` or `Tie` for
    `Tie`); a label outside the top tokens gets no probability mass.
    """

    max_length: int = _TEXT_LABEL_TOKENS

    def ask(self, sampling: Sampling) -> Sampling:
        return dataclasses.replace(sampling, logprob_token_ids=None, top_logprobs=TOP_LOGPROBS)

    def read(self, first: FirstLogprobs | None) -> LabelRead:
        if first is None:
            return LabelRead(None, "the remote server returned no log-probabilities, so there are no probabilities")
        tokens = [(str(token).lstrip(), logprob) for token, logprob in first.items()]
        values = [_most_likely([lp for text, lp in tokens if text and label.startswith(text)]) for label in LABEL_TEXTS]
        missing = [label for label, value in zip(LABEL_TEXTS, values, strict=True) if value is None]
        note = (
            f"label(s) {', '.join(missing)} not among the remote server's top {TOP_LOGPROBS} tokens: taken as 0"
            if missing
            else None
        )
        return LabelRead(probabilities(values), note)


@dataclass(frozen=True, slots=True)
class NoLabels:
    """For a family whose verdict is not the first token it writes: no label probabilities to ask for."""

    max_length: int = 0

    def ask(self, sampling: Sampling) -> Sampling:
        return sampling

    def read(self, first: FirstLogprobs | None) -> LabelRead:
        return LabelRead(None, None)


def token_labels(encoder: PromptEncoder) -> TokenLabels:
    """Each label's first token as the tokenizer gives it right after a prompt, not on its own.

    A tokenizer can tokenize `Tie` differently at the start of a text and after `\\n`; what the
    judge generates is the latter. `Tie` may be several tokens, of which the first decides.
    """
    prompt = build_prompt("Instruction.", "", "Response one.", "Response two.")
    prompt_ids = encoder.encode(prompt)
    firsts: list[int] = []
    lengths: list[int] = []
    for text in LABEL_TEXTS:
        ids = encoder.encode(prompt + text)
        common = next((i for i, (a, b) in enumerate(zip(prompt_ids, ids, strict=False)) if a != b), len(prompt_ids))
        if common != len(prompt_ids) or common >= len(ids):
            raise ConfigurationError(f"cannot find the token of label {text!r} after the prompt with this tokenizer")
        firsts.append(ids[common])
        lengths.append(len(ids) - common)
    if len(set(firsts)) != 3:
        raise ConfigurationError("the three labels do not start with distinct tokens with this tokenizer")
    starts = _label_starts(encoder.tokenizer, firsts)
    return TokenLabels(
        first_ids=(firsts[0], firsts[1], firsts[2]), starts=(starts[0], starts[1], starts[2]), max_length=max(lengths)
    )


def _label_starts(tokenizer: Any, firsts: list[int]) -> list[tuple[int, ...]]:
    """For each label, its first token and the other tokens whose text is a non-empty prefix of it."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    groups: list[list[int]] = [[first] for first in firsts]
    for token_id in sorted(set(tokenizer.get_vocab().values()) - special - set(firsts)):
        text = tokenizer.decode([token_id])
        for group, label in zip(groups, LABEL_TEXTS, strict=True):
            if text and label.startswith(text):
                group.append(token_id)
    return [tuple(group) for group in groups]


def _most_likely(logprobs: Sequence[float | None]) -> float | None:
    """A label's log-probability: that of the most likely token that starts it.

    The most likely rather than the sum, so that the label greedy decoding picks is always the most
    probable one: the probabilities follow the verdict.
    """
    known = [lp for lp in logprobs if lp is not None and not math.isnan(lp) and lp > -math.inf]
    return max(known) if known else None


def probabilities(logprobs: Sequence[float | None]) -> LabelProbabilities | None:
    """Normalise the three labels' log-probabilities (None: not available, taken as zero mass)."""
    masses = [math.exp(lp) if lp is not None else 0.0 for lp in logprobs]
    total = sum(masses)
    if total <= 0 or not math.isfinite(total):
        return None
    return LabelProbabilities(**{v: m / total for v, m in zip(VERDICTS, masses, strict=True)})


def verdict_from_label(text: str) -> Verdict | None:
    """The verdict of a label cut off at the token limit: the first token decides (`T` is `Tie`)."""
    label = text.strip().lower()
    for verdict, full in zip(VERDICTS, LABEL_TEXTS, strict=True):
        if label and full.lower().startswith(label):
            return verdict
    return None
