"""Which model to serve, what the judge must know about it, and loading its tokenizer.

Engines get a model name or folder from here; they know nothing of the demo judge.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .demo import MARKER_FILE, ensure_demo_model
from .dependencies import REMOTE_EXTRA_HINT
from .errors import ConfigurationError
from .settings import PANDALM_7B, Settings

logger = logging.getLogger(__name__)

# Files up to this size (configs, tokenizers) go into a local model's fingerprint whole.
_SMALL_FILE_BYTES = 2**20


def on_cuda() -> bool:
    """Whether vLLM will run on NVIDIA GPUs, asked without initialising CUDA in this process.

    vLLM's platform detection only asks NVML (and says no for vLLM's CPU build). `torch.cuda.is_available()`
    would initialise the CUDA driver here, and the engine process vLLM then forks could not use it
    ("Cannot re-initialize CUDA in forked subprocess").
    """
    from vllm.platforms import current_platform

    return bool(current_platform.is_cuda())


def resolve_model(settings: Settings) -> str:
    """The model to load: the configured one, else PandaLM-7B on a CUDA machine, else the demo judge."""
    if settings.model:
        return settings.model
    if on_cuda():
        return PANDALM_7B
    demo = ensure_demo_model(settings.cache_dir)
    logger.warning(
        "\n%s\nNO GPU AND NO --model: serving the tiny DEMO judge from %s.\n"
        "Its weights are random: its verdicts MEAN NOTHING. Pass --model to serve PandaLM.\n%s",
        "!" * 78,
        demo,
        "!" * 78,
    )
    return str(demo)


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """What the judge must know about the model beyond its weights."""

    demo: bool = False
    # The model's output must be constrained to this expression (the demo judge: PandaLM's format).
    output_regex: str | None = None


def profile_of(*sources: str | None) -> ModelProfile:
    """The profile of the first local folder among `sources` that carries one; the default otherwise."""
    for source in sources:
        if source and (Path(source) / MARKER_FILE).is_file():
            marker = json.loads((Path(source) / MARKER_FILE).read_text())
            return ModelProfile(demo=True, output_regex=marker["output_regex"])
    return ModelProfile()


def load_tokenizer(source: str, revision: str | None = None) -> Any:
    """The Hugging Face tokenizer of a model folder or hub name, as vLLM loads it (AutoTokenizer).

    A hub name is looked up in the local cache first, then downloaded.
    """
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # a thin front-end installed without the `remote` extra
        raise ConfigurationError(f"transformers is not installed: {REMOTE_EXTRA_HINT}") from exc

    try:
        return AutoTokenizer.from_pretrained(source, revision=revision, local_files_only=True)
    except Exception:  # not a folder, not cached: the hub below says what is wrong
        logger.info("tokenizer %r is not on this machine; fetching it from the hub", source)
    try:
        return AutoTokenizer.from_pretrained(source, revision=revision)
    except Exception as exc:  # transformers raises OSError, ValueError, the hub's own errors...
        raise ConfigurationError(f"cannot load a tokenizer from {source!r}: {type(exc).__name__}: {exc}") from exc


def model_identity(engine: str, model: str, revision: str | None, served: str = "", namespace: str = "") -> str:
    """What makes one model's verdicts comparable: its engine, name and revision, and for a local folder a
    fingerprint of its files (names and sizes, and the small files' contents), so new weights under the
    same path do not reuse old verdicts. `served` is what a remote server says of the model behind the name
    (its weights' path, its context), `namespace` the operator's own name for the cache's share; each is
    part of the identity only when given, so that existing caches keep their keys."""
    identity = f"{engine}|{model}|{revision or ''}"
    identity += "".join(f"|{name}={value}" for name, value in (("served", served), ("ns", namespace)) if value)
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
