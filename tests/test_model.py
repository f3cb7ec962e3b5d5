"""Choosing the model and the platform, and starting the engine, never initialise CUDA in the server process.

vLLM forks its engine process on GPUs unless told otherwise, and a fork cannot use CUDA once the parent
has touched it. There is no GPU here: torch's CUDA entry points are replaced by recorders, and torch is
told it is a CUDA build, so any call that would initialise CUDA on a GPU host is seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import vllm.platforms

# Imported before the recorders go in: on import, vLLM's Triton probe asks torch for the device count,
# through NVML on a GPU host (vLLM sets PYTORCH_NVML_BASED_CUDA_CHECK first), which leaves CUDA alone.
# Here, without NVML, torch would fall back to the CUDA runtime and the recorders would see it.
from vllm.v1.engine.async_llm import AsyncLLM

from pandalm_serve.app import build_engine
from pandalm_serve.model import resolve_model
from pandalm_serve.settings import PANDALM_7B, Settings


class EngineStarted(Exception):
    """Raised in place of building vLLM's engine: the test has seen what it needs."""


@pytest.fixture
def cuda_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    calls: list[str] = []

    def recorder(name: str) -> Callable[..., int]:
        def record(*args: Any, **kwargs: Any) -> int:
            calls.append(name)
            return 1

        return record

    monkeypatch.setattr(torch.cuda, "_is_compiled", lambda: True)
    monkeypatch.setattr(torch._C, "_cuda_getDeviceCount", recorder("cudaGetDeviceCount"), raising=False)
    monkeypatch.setattr(torch._C, "_cuda_init", recorder("cuda_init"), raising=False)
    monkeypatch.setattr(torch.cuda, "_lazy_init", recorder("lazy_init"))
    monkeypatch.setattr("pandalm_serve.model.ensure_demo_model", lambda cache_dir: tmp_path)
    return calls


def test_the_recorders_see_a_call_that_initialises_cuda(cuda_calls: list[str]) -> None:
    torch.cuda.is_available()  # what the service did before: it would poison the engine's fork
    assert cuda_calls


def test_without_a_gpu_the_demo_judge_is_chosen_without_touching_cuda(cuda_calls: list[str], tmp_path: Path) -> None:
    assert resolve_model(Settings(cache_dir=tmp_path)) == str(tmp_path)
    assert cuda_calls == []


def test_on_a_gpu_pandalm_7b_is_chosen_without_touching_cuda(
    cuda_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class NvidiaHost:
        def is_cuda(self) -> bool:
            return True

    monkeypatch.setattr(vllm.platforms, "_current_platform", NvidiaHost())
    assert resolve_model(Settings()) == PANDALM_7B
    assert cuda_calls == []


async def test_the_engine_starts_with_spawn_and_cuda_untouched(
    cuda_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def from_engine_args(args: Any) -> None:
        seen["method"] = os.environ.get("VLLM_WORKER_MULTIPROC_METHOD")
        seen["usage_stats"] = os.environ.get("VLLM_NO_USAGE_STATS")
        seen["cuda_calls"] = list(cuda_calls)
        raise EngineStarted

    monkeypatch.delenv("VLLM_WORKER_MULTIPROC_METHOD", raising=False)
    monkeypatch.delenv("VLLM_NO_USAGE_STATS", raising=False)
    monkeypatch.setattr(AsyncLLM, "from_engine_args", staticmethod(from_engine_args))
    with pytest.raises(EngineStarted):
        await build_engine(Settings()).start()  # as the app builds it: the model resolved above the engine
    assert seen == {"method": "spawn", "usage_stats": "1", "cuda_calls": []}
