"""Which model to serve: the configured one, PandaLM-7B on a CUDA machine, else the demo judge.

The app resolves it and hands it to the engine, which knows nothing of the demo judge.
"""

from __future__ import annotations

import logging

from .demo import ensure_demo_model
from .settings import PANDALM_7B, Settings

logger = logging.getLogger(__name__)


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
