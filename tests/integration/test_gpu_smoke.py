"""`make gpu-smoke` runs here, on the CPU, with its GPU steps skipped and said so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_smoke_test_runs_without_a_gpu(vllm_service: str, demo_cache_dir: Path) -> None:
    # After the session's vLLM service, so that the demo judge and vLLM's compile cache are warm.
    run = subprocess.run(
        [sys.executable, "-m", "pandalm_serve.tools.gpu_smoke", "--cache-dir", str(demo_cache_dir)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    rows = {line[:45].strip(): line[45:].split(maxsplit=1) for line in run.stdout.splitlines()[-8:]}
    assert rows["GPU, CUDA and driver"] == ["SKIP", "no NVIDIA GPU: NVML finds none on this machine"]
    assert rows["service on the CPU (no GPU here), small model"][0] == "PASS"
    assert rows["batch-invariant mode"][0] == "SKIP"
    assert rows["PandaLM-7B: default start, hub offline"] == ["SKIP", "needs a GPU"]
    assert rows["prompt token ids vs PandaLM's tokenizer"][0] == "SKIP"
    assert rows["start-up time and memory"][0] == "PASS"
    assert "peak host memory" in rows["start-up time and memory"][1]
