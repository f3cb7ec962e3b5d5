"""The small interface every engine implements: start, stop, generate text for a prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pandalm_client.models import FinishReason, Preset

from ..errors import ServiceError


@dataclass(frozen=True, slots=True)
class EnginePrompt:
    text: str
    # The prompt's token ids, when the judge tokenized it (the vLLM engine); None lets the engine
    # tokenize the text itself (the remote engine).
    token_ids: list[int] | None = None


@dataclass(frozen=True, slots=True)
class LabelCandidates:
    """Tokens whose log-probabilities the judge wants at the first generated position."""

    token_ids: tuple[int, ...] | None  # for engines that tokenize like the judge (vLLM)
    texts: tuple[str, ...]  # for engines that only see text (remote): each label's text


@dataclass(frozen=True, slots=True)
class Sampling:
    preset: Preset
    max_new_tokens: int
    repetition_penalty: float
    beam_width: int
    stop: tuple[str, ...] = ()
    labels: LabelCandidates | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int | None
    completion_tokens: int | None
    # Log-probability of each of `Sampling.labels` at the first generated position (None: not among
    # what the engine returned); the whole field is None when the engine could not give them,
    # and `logprobs_note` says why.
    label_logprobs: tuple[float | None, ...] | None = None
    logprobs_note: str | None = None


class EngineError(ServiceError):
    """Generation failed; by default a 502, since the fault is the engine's, not the caller's."""

    status = 502
    code = "engine_error"


class Engine(Protocol):
    """An engine only generates text; the judge builds prompts and parses outputs."""

    name: str  # "vllm", "remote", ...
    model_name: str
    demo: bool
    # Context length in tokens, when the engine knows it.
    context_length: int | None
    # A Hugging Face tokenizer when the engine has one locally; the judge uses it to count and
    # truncate, and passes token ids in `EnginePrompt`.
    tokenizer: Any | None
    presets: frozenset[Preset]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def check_health(self) -> None:
        """Raise `EngineError` when the engine cannot answer."""

    async def generate(self, prompt: EnginePrompt, sampling: Sampling, request_id: str) -> Generation: ...
