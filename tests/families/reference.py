"""The judge families' reference code, installed for the fidelity tests: prometheus-eval and fschat from PyPI at
the versions our prompts copy, without their dependencies (their prompt, parser and conversation modules need
none), under `.tools/reference/`. Reference files that are not on PyPI (JudgeLM's code, FastChat's judge
prompts) are vendored beside this module, under `reference/`, with their licences.

A reference that cannot be had fails the test that needs it, saying how to install it: it never skips.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.system_tools import TOOLS

# The versions the families' prompts are byte-identical to.
PACKAGES = ("prometheus-eval==0.1.20", "fschat==0.2.36")
VENDORED = Path(__file__).parent / "reference"


def reference_path() -> Path:
    """A folder to put on `sys.path` that holds `prometheus_eval` and `fastchat` at the pinned versions."""
    folder = TOOLS / "reference"
    marker = folder / ".installed"
    wanted = "\n".join(PACKAGES)
    if marker.is_file() and marker.read_text() == wanted:
        return folder
    how = f"{sys.executable} -m pip install --no-deps --target {folder} {' '.join(PACKAGES)}"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target", str(folder),
         *PACKAGES],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"installing the reference code failed ({result.stderr.strip()[-500:]}); try: {how}")
    marker.write_text(wanted)
    return folder


@pytest.fixture(scope="session")
def reference_code() -> Path:
    """Put the reference packages on `sys.path` for this session (they import nothing heavy)."""
    folder = reference_path()
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    return folder
