"""Prompts as the engine gets them: a family's exact token ids fitted into the context, or plain text.

How a family's prompt becomes token ids follows its BOS rule (families/base.py): PandaLM's `--bos-token` id
before the text's tokens; the tokenizer's own special tokens (as vLLM's `generate(text)` adds them); or the
model's chat template over the family's messages (as vLLM's chat endpoint renders them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pandalm_client.models import ResultWarning

from ..engines.base import EnginePrompt
from ..errors import ConfigurationError, PromptTooLongError
from ..families.base import BosRule, ChatPrompt, Family, FamilyPrompt, GradeInput, PairInput
from ..families.pandalm import PANDALM
from .prompt import affinity_key, clean_response

# Re-tokenizing truncated text can shift a token or two at the cut: allow a few more attempts.
_FIT_ATTEMPTS = 6


class PromptEncoder:
    """Tokenizes prompts with a fixed beginning-of-sequence token.

    PandaLM's training code replaced LLaMA's `<s>` (id 1) with `</s>` (id 2), so the model learned
    prompts that start with id 2, whatever the downloaded tokenizer's config says.
    """

    def __init__(self, tokenizer: Any, bos_token: str | None, rule: BosRule = "pandalm") -> None:
        self.tokenizer = tokenizer
        self.rule = rule
        self.bos_token = bos_token if rule == "pandalm" else None
        self.bos_id: int | None = None
        if rule == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ConfigurationError(
                "this judge family writes chat messages, and the model's tokenizer has no chat template: "
                "serve an instruct model that has one"
            )
        if self.bos_token is not None:
            bos_id = tokenizer.convert_tokens_to_ids(bos_token)
            if bos_id is None or (bos_id == tokenizer.unk_token_id and bos_token != tokenizer.unk_token):
                raise ConfigurationError(
                    f"bos_token {bos_token!r} is not in the model's vocabulary; set --bos-token to one of its "
                    "tokens, or to an empty string to use the tokenizer's own"
                )
            self.bos_id = bos_id

    def encode(self, text: str) -> list[int]:
        if self.bos_id is None:
            return list(self.tokenizer.encode(text))
        return [self.bos_id, *self.tokenizer.encode(text, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=False))

    def render(self, prompt: FamilyPrompt) -> tuple[str, list[int]]:
        """A family's prompt as the model's input text and its token ids, by the encoder's BOS rule."""
        if isinstance(prompt, ChatPrompt):
            messages = [{"role": role, "content": content} for role, content in prompt.messages]
            text = str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            # The template writes the special tokens itself, as vLLM's chat endpoint relies on.
            return text, list(self.tokenizer.encode(text, add_special_tokens=False))
        return prompt, self.encode(prompt)


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    text: str
    token_ids: list[int]
    warnings: list[ResultWarning]


def fit_prompt(
    encoder: PromptEncoder,
    instruction: str,
    input: str,
    response1: str,
    response2: str,
    *,
    context_length: int,
    max_new_tokens: int,
    truncate: bool,
    names: tuple[str, str] = ("response1", "response2"),
) -> FittedPrompt:
    """PandaLM's prompt for a pair, tokenized and fitted (`fit_family_prompt` with the PandaLM family)."""
    return fit_family_prompt(
        encoder,
        PANDALM,
        PairInput(instruction, input, response1, response2),
        context_length=context_length,
        max_new_tokens=max_new_tokens,
        truncate=truncate,
        names=names,
    )


def fit_family_prompt(
    encoder: PromptEncoder,
    family: Family,
    pair: PairInput,
    *,
    context_length: int,
    max_new_tokens: int,
    truncate: bool,
    names: tuple[str, str] = ("response1", "response2"),
) -> FittedPrompt:
    """Build and tokenize the family's prompt, leaving `max_new_tokens` of room for the answer.

    When it does not fit: with `truncate`, cut the ends of the responses (the longer one first)
    and say so in the warnings; otherwise raise `PromptTooLongError` with the counts. `names` are
    what the warnings call the two responses (the request's names, whichever order they are in).
    """

    def render(response1: str, response2: str) -> tuple[str, list[int]]:
        cut = PairInput(pair.instruction, pair.input, response1, response2, pair.reference, pair.rubric)
        return encoder.render(family.pairwise_prompt(cut))

    return _fit(encoder, render, pair.response1, pair.response2, _cleaner(family), context_length=context_length,
                max_new_tokens=max_new_tokens, truncate=truncate, names=names)  # fmt: skip


def _cleaner(family: Family) -> Callable[[str], str]:
    """What a family's prompt shows of a response: PandaLM strips it and removes special tokens."""
    return clean_response if family.bos == "pandalm" else _unchanged


def _unchanged(text: str) -> str:
    return text


def _fit(
    encoder: PromptEncoder,
    render: Callable[[str, str], tuple[str, list[int]]],
    response1: str,
    response2: str,
    clean: Callable[[str], str],
    *,
    context_length: int,
    max_new_tokens: int,
    truncate: bool,
    names: tuple[str, str],
) -> FittedPrompt:
    text, ids = render(response1, response2)
    budget = context_length - max_new_tokens
    if len(ids) <= budget:
        return FittedPrompt(text, ids, [])
    details = {"prompt_tokens": len(ids), "max_new_tokens": max_new_tokens, "context_length": context_length}
    if not truncate:
        advice = (
            "Shorten the responses, lower options.max_new_tokens, or set options.truncate to shorten the responses "
        )
        raise too_long(len(ids), context_length, max_new_tokens, advice + "automatically.")

    r1 = encoder.tokenizer.encode(clean(response1), add_special_tokens=False)
    r2 = encoder.tokenizer.encode(clean(response2), add_special_tokens=False)
    room = budget - (len(ids) - len(r1) - len(r2))
    for _ in range(_FIT_ATTEMPTS):
        if room < 0:
            break
        keep1, keep2 = _share(room, len(r1), len(r2))
        cut1 = encoder.decode(r1[:keep1]) if keep1 < len(r1) else response1
        cut2 = encoder.decode(r2[:keep2]) if keep2 < len(r2) else response2
        text, ids = render(cut1, cut2)
        if len(ids) <= budget:
            warnings = [
                ResultWarning(
                    code="input_truncated",
                    message=f"{name} was truncated from {len(full)} to {keep} tokens to fit the model's context",
                )
                for name, full, keep in ((names[0], r1, keep1), (names[1], r2, keep2))
                if keep < len(full)
            ]
            return FittedPrompt(text, ids, warnings)
        room -= len(ids) - budget
    raise PromptTooLongError(
        f"the prompt does not fit the model's context of {context_length} tokens even with both responses "
        "truncated: the instruction and input are too long. Shorten them or lower options.max_new_tokens.",
        details=details,
    )


def too_long(prompt_tokens: int, context_length: int, max_new_tokens: int, advice: str) -> PromptTooLongError:
    """The error of a prompt that does not fit the context, with its counts and what to do."""
    return PromptTooLongError(
        f"the prompt has {prompt_tokens} tokens, but the model's context of {context_length} tokens, less "
        f"{max_new_tokens} for the answer, leaves {context_length - max_new_tokens}. {advice}",
        details={"prompt_tokens": prompt_tokens, "max_new_tokens": max_new_tokens, "context_length": context_length},
    )


def _share(room: int, len1: int, len2: int) -> tuple[int, int]:
    """Split `room` tokens between two responses: the shorter keeps all it can, the longer the rest."""
    half = room // 2
    if len1 <= half:
        return len1, min(len2, room - len1)
    if len2 <= room - half:
        return min(len1, room - len2), len2
    return half, room - half


@dataclass(frozen=True, slots=True)
class OrderedPair:
    """One order of a pair, as the prompt shows it; `names` are the request's names of its two responses."""

    instruction: str
    input: str
    response1: str
    response2: str
    names: tuple[str, str] = ("response1", "response2")
    reference: str | None = None
    rubric: str | None = None

    def family_input(self) -> PairInput:
        return PairInput(self.instruction, self.input, self.response1, self.response2, self.reference, self.rubric)


class PromptBuilder(Protocol):
    """Builds the engine's prompt for one order of a pair, or for one graded response."""

    def build(
        self, pair: OrderedPair, *, max_new_tokens: int, truncate: bool
    ) -> tuple[EnginePrompt, list[ResultWarning]]: ...

    def build_grade(self, item: GradeInput, *, max_new_tokens: int) -> EnginePrompt:
        """The family's grading prompt for one response; raises `PromptTooLongError` when it does not fit."""
        ...


@dataclass(frozen=True, slots=True)
class TokenPrompts:
    """The family's exact token ids, checked against the context (and truncated on request) before the engine."""

    encoder: PromptEncoder
    context_length: int
    family: Family = PANDALM

    def build(
        self, pair: OrderedPair, *, max_new_tokens: int, truncate: bool
    ) -> tuple[EnginePrompt, list[ResultWarning]]:
        fitted = fit_family_prompt(
            self.encoder,
            self.family,
            pair.family_input(),
            context_length=self.context_length,
            max_new_tokens=max_new_tokens,
            truncate=truncate,
            names=pair.names,
        )
        return EnginePrompt(fitted.text, fitted.token_ids, affinity_key(pair.instruction, pair.input)), fitted.warnings

    def build_grade(self, item: GradeInput, *, max_new_tokens: int) -> EnginePrompt:
        text, ids = self.encoder.render(self.family.grade_prompt(item))
        if len(ids) > self.context_length - max_new_tokens:
            advice = "Shorten the response or the rubric, or lower options.max_new_tokens."
            raise too_long(len(ids), self.context_length, max_new_tokens, advice)
        return EnginePrompt(text, ids, affinity_key(item.instruction, item.input))


@dataclass(frozen=True, slots=True)
class TextPrompts:
    """The prompt's text, for a server that tokenizes it, adds its own BOS token and checks its context.

    Only for families that write text: a chat family needs the model's chat template, so its judge refuses
    to start in this format (judge.py)."""

    family: Family = PANDALM

    def build(
        self, pair: OrderedPair, *, max_new_tokens: int, truncate: bool
    ) -> tuple[EnginePrompt, list[ResultWarning]]:
        prompt = _text(self.family, self.family.pairwise_prompt(pair.family_input()))
        return EnginePrompt(prompt, affinity_key=affinity_key(pair.instruction, pair.input)), []

    def build_grade(self, item: GradeInput, *, max_new_tokens: int) -> EnginePrompt:
        prompt = _text(self.family, self.family.grade_prompt(item))
        return EnginePrompt(prompt, affinity_key=affinity_key(item.instruction, item.input))


def _text(family: Family, prompt: FamilyPrompt) -> str:
    if isinstance(prompt, ChatPrompt):
        raise ConfigurationError(f"the {family.name} family needs the model's chat template")
    return prompt
