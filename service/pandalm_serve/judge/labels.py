"""PandaLM's three labels: their tokens, their probabilities, and reconciling the two orders of a swap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pandalm_client.models import LabelProbabilities, Verdict

from ..errors import ServiceError
from .prompt import build_prompt
from .tokens import PromptEncoder

VERDICTS: tuple[Verdict, Verdict, Verdict] = ("response1", "response2", "tie")
# The text PandaLM writes for each verdict, in the order of VERDICTS.
LABEL_TEXTS = ("1", "2", "Tie")
_SWAPPED: dict[Verdict, Verdict] = {"response1": "response2", "response2": "response1", "tie": "tie"}


@dataclass(frozen=True, slots=True)
class LabelTokens:
    first_ids: tuple[int, int, int]  # the token that starts each label, in the order of VERDICTS
    # Per label, its first token and every other token that starts spelling it (`T`, `Ti` for
    # `Tie`): the model may start a label with any of them.
    starts: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    max_length: int  # tokens of the longest label

    @property
    def all_ids(self) -> tuple[int, ...]:
        return tuple(i for group in self.starts for i in group)


def label_tokens(encoder: PromptEncoder) -> LabelTokens:
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
            raise ServiceError(
                f"cannot find the token of label {text!r} after the prompt with this tokenizer",
                code="bad_configuration",
            )
        firsts.append(ids[common])
        lengths.append(len(ids) - common)
    if len(set(firsts)) != 3:
        raise ServiceError("the three labels do not start with distinct tokens", code="bad_configuration")
    starts = _label_starts(encoder.tokenizer, firsts)
    return LabelTokens(
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


def label_logprobs(logprobs: Sequence[float | None], groups: Sequence[Sequence[int]]) -> list[float | None]:
    """Each label's log-probability: that of the most likely token that starts it.

    The most likely rather than the sum, so that the label greedy decoding picks is always the most
    probable one: the probabilities follow the verdict.
    """
    values: list[float | None] = []
    position = 0
    for group in groups:
        known = [lp for lp in logprobs[position : position + len(group)] if lp is not None and not math.isnan(lp)]
        position += len(group)
        values.append(max(known) if known and max(known) > -math.inf else None)
    return values


def verdict_from_label(text: str) -> Verdict | None:
    """The verdict of a label cut off at the token limit: the first token decides (`T` is `Tie`)."""
    label = text.strip().lower()
    if label in ("1", "2"):
        return "response1" if label == "1" else "response2"
    return "tie" if label and "tie".startswith(label) else None


def probabilities(logprobs: Sequence[float | None]) -> LabelProbabilities | None:
    """Normalise the three labels' log-probabilities (None: not available, taken as zero mass)."""
    masses = [math.exp(lp) if lp is not None else 0.0 for lp in logprobs]
    total = sum(masses)
    if total <= 0 or not math.isfinite(total):
        return None
    return LabelProbabilities(**{v: m / total for v, m in zip(VERDICTS, masses, strict=True)})


def swap_back(verdict: Verdict | None) -> Verdict | None:
    """A verdict given on the swapped order, in the request's positions."""
    return _SWAPPED[verdict] if verdict is not None else None


def swap_probabilities_back(p: LabelProbabilities | None) -> LabelProbabilities | None:
    return LabelProbabilities(response1=p.response2, response2=p.response1, tie=p.tie) if p is not None else None


def average(a: LabelProbabilities | None, b: LabelProbabilities | None) -> LabelProbabilities | None:
    if a is None or b is None:
        return None
    return LabelProbabilities(
        response1=(a.response1 + b.response1) / 2, response2=(a.response2 + b.response2) / 2, tie=(a.tie + b.tie) / 2
    )


@dataclass(frozen=True, slots=True)
class Reconciled:
    verdict: Verdict | None
    consistent: bool | None  # None: at least one order did not parse


def reconcile(original: Verdict | None, swapped_back: Verdict | None) -> Reconciled:
    """Agreeing orders give their verdict; disagreeing ones a tie, marked inconsistent; unparsed stays unparsed."""
    if original is None or swapped_back is None:
        return Reconciled(None, None)
    if original == swapped_back:
        return Reconciled(original, True)
    return Reconciled("tie", False)
