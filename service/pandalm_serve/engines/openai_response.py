"""What an OpenAI-compatible server may answer, validated as it is read: bounded in size, then typed.

A remote server is not trusted to be well-formed. Every field the engine uses is checked here (the text a
string, token counts non-negative integers, log-probabilities numbers, `token_id:N` keys with an integer
N), and a body is read only up to a limit derived from the tokens asked for: anything else is the item's
`remote_bad_response`, never a 500 and never a process holding a 300 MB answer.
"""

from __future__ import annotations

import math
from typing import Annotated

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError, field_validator

from ..errors import EngineError

# How vLLM names a token with `return_tokens_as_token_ids`.
TOKEN_ID_PREFIX = "token_id:"
# A completion's JSON per generated token: its text (escaped, up to a few dozen bytes) and, with
# log-probabilities, the token, its log-probability, its offset and a few alternatives: a few hundred
# bytes. 1 KiB a token, plus room for the envelope, is above any honest answer.
_BYTES_PER_TOKEN = 1024
_ENVELOPE_BYTES = 64 * 1024
# An error body is read only for its status's hints and its error type.
ERROR_BODY_BYTES = 8 * 1024
# The model list: a few models with their metadata.
MODELS_BYTES = 1024 * 1024
_READ_CHUNK = 64 * 1024

# Token counts: no context holds two billion tokens.
_Count = Annotated[StrictInt, Field(ge=0, lt=2**31)]


class _Lenient(BaseModel):
    # Servers add fields of their own (vLLM's `prompt_logprobs`, `stop_reason`): ignored, not refused.
    model_config = ConfigDict(extra="ignore")


class CompletionLogprobs(_Lenient):
    top_logprobs: list[dict[StrictStr, StrictFloat] | None] | None = None

    @field_validator("top_logprobs")
    @classmethod
    def _parseable(cls, positions: list[dict[str, float] | None] | None) -> list[dict[str, float] | None] | None:
        for top in positions or []:
            for token, logprob in (top or {}).items():
                if token.startswith(TOKEN_ID_PREFIX) and not token.removeprefix(TOKEN_ID_PREFIX).isdigit():
                    raise ValueError("a token_id key without an integer id")
                if math.isnan(logprob) or logprob == math.inf:  # -inf is one: a token the output cannot take
                    raise ValueError("a log-probability that is not a number")
        return positions


class CompletionChoice(_Lenient):
    text: StrictStr
    finish_reason: StrictStr | None = None
    logprobs: CompletionLogprobs | None = None


class CompletionUsage(_Lenient):
    prompt_tokens: _Count | None = None
    completion_tokens: _Count | None = None


class Completion(_Lenient):
    """The part of an OpenAI `/v1/completions` answer the engine reads."""

    choices: list[CompletionChoice] = Field(min_length=1)
    usage: CompletionUsage | None = None


class ServedModel(_Lenient):
    id: StrictStr
    # What vLLM reports of the model behind the name: its weights' path or hub name, and its context.
    root: StrictStr | None = None
    max_model_len: _Count | None = None


class ModelList(_Lenient):
    data: list[ServedModel] = []


def completion_limit(max_tokens: int) -> int:
    """The most bytes an honest completion of `max_tokens` tokens takes."""
    return _ENVELOPE_BYTES + _BYTES_PER_TOKEN * max_tokens


def parse_completion(raw: bytes) -> Completion:
    """The completion in `raw`, or `remote_bad_response` naming what was wrong (never the values)."""
    try:
        return Completion.model_validate_json(raw)
    except ValidationError as exc:
        where = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors()[:3])
        raise EngineError(
            f"the remote server's answer is not an OpenAI completion (at {where})", code="remote_bad_response"
        ) from exc


async def read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or `remote_bad_response` as soon as it passes `limit` bytes (the rest is never read)."""
    declared = response.content_length
    body = b"" if declared is not None and declared > limit else await read_prefix(response, limit + 1)
    if len(body) > limit or (declared is not None and declared > limit):
        response.close()
        raise EngineError(
            f"the remote server's answer is larger than {limit} bytes, the most its tokens can take",
            code="remote_bad_response",
        )
    return body


async def read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most the first `limit` bytes of the body; the rest is left unread (the connection is dropped)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            response.close()
            break
    return b"".join(chunks)[:limit]
