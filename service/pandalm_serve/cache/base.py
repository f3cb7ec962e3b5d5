"""The small interface every cache backend implements, and the key of a generation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

from ..engines.base import EnginePrompt, Sampling

# Files up to this size (configs, tokenizers) go into a local model's fingerprint whole.
_SMALL_FILE_BYTES = 2**20


class CacheBackend(Protocol):
    """Bytes by key. A backend that fails raises `CacheUnavailable`; the cache then judges on without it."""

    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def clear(self) -> int:
        """Remove every entry; return how many there were (or -1 when the backend cannot count)."""
        ...

    async def close(self) -> None: ...


class CacheUnavailable(Exception):
    """The cache's store does not answer (Redis down, the file unwritable)."""


class UnusableCache:
    """A configured store that could not be opened: every call fails, so that each lookup is a miss counted
    as a cache error, and `DELETE /cache` answers `cache_unavailable` rather than "nothing to clear"."""

    name = "unusable"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def get(self, key: str) -> bytes | None:
        raise CacheUnavailable(self.reason)

    async def put(self, key: str, value: bytes) -> None:
        raise CacheUnavailable(self.reason)

    async def clear(self) -> int:
        raise CacheUnavailable(self.reason)

    async def close(self) -> None:
        return None


def model_identity(
    engine: str, model: str, revision: str | None, served: str = "", namespace: str = "", judge: str = ""
) -> str:
    """What makes one model's verdicts comparable: its engine, name and revision, and for a local folder a
    fingerprint of its files (names and sizes, and the small files' contents), so new weights under the
    same path do not reuse old verdicts. `served` is what a remote server says of the model behind the name
    (its weights' path, its context), `namespace` the operator's own name for the cache's share, `judge` the
    configured judge's name (a judge's verdicts are its own); each is
    part of the identity only when given, so that existing caches keep their keys."""
    identity = f"{engine}|{model}|{revision or ''}"
    named = (("served", served), ("ns", namespace), ("judge", judge))
    identity += "".join(f"|{name}={value}" for name, value in named if value)
    folder = Path(model)
    if folder.is_dir():
        digest = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            size = path.stat().st_size
            digest.update(f"{path.relative_to(folder)}:{size}\n".encode())
            if size <= _SMALL_FILE_BYTES:
                digest.update(path.read_bytes())
        identity += "|" + digest.hexdigest()
    return identity


def generation_key(
    model_identity: str, template_version: str, prompt: EnginePrompt, sampling: Sampling, *, scope: str = ""
) -> str:
    """Everything that decides one order's generation, hashed: the judge, the template, the exact prompt
    (its token ids, so the BOS token and truncation are in it, or its text where the server tokenizes) and
    every decoding setting. Nothing a client chose (an id) is in it; `scope`, when given (the caller's key
    under the per-key cache scope), keeps the generation to whoever produced it."""
    content: dict[str, object] = {
        "model": model_identity,
        "template": template_version,
        # How a stored generation is written (cache/engine.py): 2 names tokens as FirstLogprobs does, so
        # entries written before are never read as these.
        "codec": 2,
        "prompt": prompt.token_ids if prompt.token_ids is not None else prompt.text,
        "sampling": {
            "preset": sampling.preset,
            "max_new_tokens": sampling.max_new_tokens,
            "repetition_penalty": sampling.repetition_penalty,
            "beam_width": sampling.beam_width if sampling.preset == "beam" else None,
            "stop": list(sampling.stop),
            "output_regex": sampling.output_regex,
            "ignore_eos": sampling.ignore_eos,
            "logprob_token_ids": list(sampling.logprob_token_ids) if sampling.logprob_token_ids else None,
            "top_logprobs": sampling.top_logprobs,
        },
    }
    if scope:  # absent, not empty, in the shared scope: the keys of existing caches stay valid
        content["scope"] = scope
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def loads(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    assert isinstance(value, dict)
    return value
