"""Prompts as the engine gets them: PandaLM's token ids fitted into the context, or plain text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pandalm_client.models import ResultWarning

from ..engines.base import EnginePrompt
from ..errors import ConfigurationError, PromptTooLongError
from .prompt import affinity_key, build_prompt, clean_response

# Re-tokenizing truncated text can shift a token or two at the cut: allow a few more attempts.
_FIT_ATTEMPTS = 6


class PromptEncoder:
    """Tokenizes prompts with a fixed beginning-of-sequence token.

    PandaLM's training code replaced LLaMA's `<s>` (id 1) with `</s>` (id 2), so the model learned
    prompts that start with id 2, whatever the downloaded tokenizer's config says.
    """

    def __init__(self, tokenizer: Any, bos_token: str | None) -> None:
        self.tokenizer = tokenizer
        self.bos_token = bos_token
        self.bos_id: int | None = None
        if bos_token is not None:
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
    """Build and tokenize the prompt, leaving `max_new_tokens` of room for the answer.

    When it does not fit: with `truncate`, cut the ends of the responses (the longer one first)
    and say so in the warnings; otherwise raise `PromptTooLongError` with the counts. `names` are
    what the warnings call the two responses (the request's names, whichever order they are in).
    """
    text = build_prompt(instruction, input, response1, response2)
    ids = encoder.encode(text)
    budget = context_length - max_new_tokens
    if len(ids) <= budget:
        return FittedPrompt(text, ids, [])
    details = {"prompt_tokens": len(ids), "max_new_tokens": max_new_tokens, "context_length": context_length}
    if not truncate:
        raise PromptTooLongError(
            f"the prompt has {len(ids)} tokens, but the model's context of {context_length} tokens, less "
            f"{max_new_tokens} for the answer, leaves {budget}. Shorten the responses, lower "
            "options.max_new_tokens, or set options.truncate to shorten the responses automatically.",
            details=details,
        )

    r1 = encoder.tokenizer.encode(clean_response(response1), add_special_tokens=False)
    r2 = encoder.tokenizer.encode(clean_response(response2), add_special_tokens=False)
    room = budget - (len(ids) - len(r1) - len(r2))
    for _ in range(_FIT_ATTEMPTS):
        if room < 0:
            break
        keep1, keep2 = _share(room, len(r1), len(r2))
        cut1 = encoder.decode(r1[:keep1]) if keep1 < len(r1) else response1
        cut2 = encoder.decode(r2[:keep2]) if keep2 < len(r2) else response2
        text = build_prompt(instruction, input, cut1, cut2)
        ids = encoder.encode(text)
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


class PromptBuilder(Protocol):
    """Builds the engine's prompt for one order of a pair."""

    def build(
        self, pair: OrderedPair, *, max_new_tokens: int, truncate: bool
    ) -> tuple[EnginePrompt, list[ResultWarning]]: ...


@dataclass(frozen=True, slots=True)
class TokenPrompts:
    """PandaLM's exact token ids, checked against the context (and truncated on request) before the engine."""

    encoder: PromptEncoder
    context_length: int

    def build(
        self, pair: OrderedPair, *, max_new_tokens: int, truncate: bool
    ) -> tuple[EnginePrompt, list[ResultWarning]]:
        fitted = fit_prompt(
            self.encoder,
            pair.instruction,
            pair.input,
            pair.response1,
            pair.response2,
            context_length=self.context_length,
            max_new_tokens=max_new_tokens,
            truncate=truncate,
            names=pair.names,
        )
        return EnginePrompt(fitted.text, fitted.token_ids, affinity_key(pair.instruction, pair.input)), fitted.warnings


class TextPrompts:
    """The prompt's text, for a server that tokenizes it, adds its own BOS token and checks its context."""

    def build(
        self, pair: OrderedPair, *, max_new_tokens: int, truncate: bool
    ) -> tuple[EnginePrompt, list[ResultWarning]]:
        text = build_prompt(pair.instruction, pair.input, pair.response1, pair.response2)
        return EnginePrompt(text, affinity_key=affinity_key(pair.instruction, pair.input)), []
