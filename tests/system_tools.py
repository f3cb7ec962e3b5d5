"""Real servers and tools the tests need from Debian's packages: found on PATH, else installed, else a clear failure.

Prometheus (with promtool) is a static binary: its package is unpacked under `.tools/` in the
repository (`apt-get download` and `dpkg -x`), without installing anything. Packages with shared
libraries (redis-server, chromium) are installed with apt-get, which needs root. A tool that cannot be
had fails the test that needs it, saying how to install it: a missing tool never skips a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / ".tools"


def _apt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, cwd=cwd, timeout=900)


def _with_package_lists(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run apt-get; if it does not know the package yet, update the lists once and try again."""
    result = _apt(*args, cwd=cwd)
    if result.returncode != 0 and os.geteuid() == 0:
        _apt("update")
        result = _apt(*args, cwd=cwd)
    return result


def unpacked_binary(package: str, binary: str) -> Path:
    """A static binary from a Debian package, unpacked under .tools/ on first use."""
    found = shutil.which(binary)
    if found:
        return Path(found)
    target = TOOLS / package / "usr" / "bin" / binary
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as download:
        result = _with_package_lists("download", package, cwd=Path(download))
        debs = list(Path(download).glob(f"{package}_*.deb"))
        if result.returncode != 0 or not debs:
            pytest.fail(
                f"{binary} is needed and not on PATH, and `apt-get download {package}` failed "
                f"({result.stderr.strip()[-300:]}). Install it: sudo apt-get install {package}"
            )
        (TOOLS / package).mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(debs[0]), str(TOOLS / package)], check=True)
    return target


def installed_binary(package: str, binary: str, *, path: str | None = None) -> Path:
    """A program from a Debian package, installed with apt-get on first use (as root)."""
    found = shutil.which(binary) or (path if path and Path(path).exists() else None)
    if found:
        return Path(found)
    if os.geteuid() != 0:
        pytest.fail(
            f"{binary} is needed and not installed, and only root can install it: sudo apt-get install {package}"
        )
    result = _with_package_lists("install", "-y", "--no-install-recommends", package)
    found = shutil.which(binary) or (path if path and Path(path).exists() else None)
    if result.returncode != 0 or not found:
        pytest.fail(f"`apt-get install {package}` failed: {result.stderr.strip()[-500:]}")
    return Path(found)
