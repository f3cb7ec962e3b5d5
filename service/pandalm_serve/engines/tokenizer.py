"""Loading PandaLM's tokenizer, as vLLM loads it: the engines, the batch job and the smoke test use it."""

from __future__ import annotations

import logging
from typing import Any

from ..dependencies import REMOTE_EXTRA_HINT
from ..errors import ConfigurationError

logger = logging.getLogger(__name__)


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
