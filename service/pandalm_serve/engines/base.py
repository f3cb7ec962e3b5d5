"""The small interface every engine implements: start, stop, generate text for a prompt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pandalm_client.models import FinishReason, Preset, PromptFormat


@dataclass(frozen=True, slots=True)
class EnginePrompt:
    text: str
    # PandaLM's exact token ids, when the judge has the tokenizer; None: the engine takes the text.
    token_ids: list[int] | None = None
    # The same for every prompt of one instruction and input (both orders of a pair included): a router
    # that sends equal keys to one replica keeps their shared prefix in its cache.
    affinity_key: str = ""


@dataclass(frozen=True, slots=True)
class Sampling:
    preset: Preset
    max_new_tokens: int
    repetition_penalty: float
    beam_width: int
    stop: tuple[str, ...] = ()
    # Constrain the output to this regular expression (the demo judge's format).
    output_regex: str | None = None
    # Generate max_new_tokens tokens whatever the model says (benchmarks: the same work on every side).
    ignore_eos: bool = False
    # Log-probabilities wanted at the first generated position: of exactly these token ids (token-id
    # prompts), or of the `top_logprobs` most likely tokens, by their text (text prompts).
    logprob_token_ids: tuple[int, ...] | None = None
    top_logprobs: int | None = None
    # Whether the generation may be given again from the verdict cache (cache/engine.py): the caller's choice,
    # not a decoding setting, so never part of the cache's key.
    cache: bool = True


# Log-probabilities at the first generated position, by token, named as the engine's `prompt_format` names
# tokens: `token_key(id)` in `token_ids` (for `Sampling.logprob_token_ids`), the token's text in `text` (for
# `Sampling.top_logprobs`). One shape whatever the engine; judge/labels.py turns them into label probabilities.
FirstLogprobs = Mapping[str, float]


def token_key(token_id: int) -> str:
    """A token id as `FirstLogprobs` names it in the `token_ids` prompt format."""
    return str(token_id)


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int | None
    completion_tokens: int | None
    # None when no log-probabilities were asked for, or the engine returned none.
    first_logprobs: FirstLogprobs | None = None
    # Given again from the verdict cache rather than generated (cache/engine.py).
    cached: bool = False


@runtime_checkable
class Engine(Protocol):
    """An engine only generates text; the judge builds prompts and parses outputs.

    Its members are read-only here, so that an engine around an engine (cache/engine.py) can pass them on.
    """

    @property
    def name(self) -> str:
        """`vllm`, `remote`, ..."""
        ...

    @property
    def model_name(self) -> str: ...

    @property
    def context_length(self) -> int | None:
        """Context length in tokens, when the engine knows it."""
        ...

    @property
    def prompt_format(self) -> PromptFormat:
        """How the engine takes prompts and names tokens, settled once it has started: `token_ids` (the judge
        builds PandaLM's token ids with `tokenizer`) or `text` (the engine's server tokenizes)."""
        ...

    @property
    def tokenizer(self) -> Any | None:
        """The Hugging Face tokenizer the judge builds token-id prompts with, in the `token_ids` format."""
        ...

    @property
    def tokenizer_source(self) -> str | None:
        """Where `tokenizer` came from (a folder or hub name), for /info."""
        ...

    @property
    def presets(self) -> frozenset[Preset]: ...

    @property
    def data_parallel_size(self) -> int | None:
        """vLLM engines judging in this process (vLLM's data parallelism); None when the engine is elsewhere."""
        ...

    @property
    def dead(self) -> bool:
        """True once the engine cannot judge again without a restart (vLLM's engine process died)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def check_health(self) -> None:
        """Raise `EngineError` when the engine cannot answer."""

    async def generate(self, prompt: EnginePrompt, sampling: Sampling, request_id: str) -> Generation: ...
