"""The guard the tools' tests rely on for "no request leaves the host" does catch one, in Python and in Node."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.integrations.conftest import OFFLINE

# TEST-NET-1 (RFC 5737): never routed, so a guard that failed to stop this could not reach anything either.
ELSEWHERE = "192.0.2.1"


def guarded(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(OFFLINE), "OFFLINE_LOG": str(tmp_path / "offline.log")}


def test_python_lookups_and_connections_beyond_loopback_are_refused_and_recorded(tmp_path: Path) -> None:
    script = f"""
import socket
attempts = [lambda: socket.getaddrinfo("example.com", 443), lambda: socket.socket().connect(("{ELSEWHERE}", 80))]
for attempt in attempts:
    try:
        attempt()
        raise SystemExit("not refused")
    except OSError:
        pass
"""
    run = subprocess.run([sys.executable, "-c", script], env=guarded(tmp_path), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    log = (tmp_path / "offline.log").read_text()
    assert "lookup example.com" in log and f"connect {ELSEWHERE}" in log


def test_node_connections_beyond_loopback_are_refused_and_recorded(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to test the guard promptfoo runs under: sudo apt-get install nodejs")
    script = f"fetch('http://{ELSEWHERE}/').then(() => process.exit(3), (e) => console.log(e.cause.message))"
    env = {**guarded(tmp_path), "NODE_OPTIONS": f"--require {OFFLINE / 'offline.cjs'}"}
    run = subprocess.run([node, "-e", script], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "no connection beyond this host" in run.stdout, run.stdout + run.stderr
    assert f"connect {ELSEWHERE}" in (tmp_path / "offline.log").read_text()
