"""Servers in child processes on loopback: a free port, start, wait until an address answers, stop.

The GPU smoke test (`tools/gpu_smoke.py`, shipped: it runs on a user's host) starts the service with it;
the tests and benchmarks use it too, for the service, vLLM's OpenAI server and the replay server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

STARTUP_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ok(url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Whether GET `url` answered 200 within `timeout_s`, polling while `alive()` holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


class ServerFailed(RuntimeError):
    """A server exited, or did not answer in time; the message ends with its log's tail."""


class ServerProcess:
    """A server whose output goes to a log file, shown when it fails to start."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def wait_until_ok(self, url: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Wait until GET `url` answers 200; stop the server and raise `ServerFailed` if it does not."""
        if wait_until_ok(url, timeout_s, alive=lambda: self.proc.poll() is None):
            return
        code = self.proc.poll()
        self.stop()
        tail = self.log.read_text(errors="replace")[-6000:]
        raise ServerFailed(f"{url} did not answer 200 within {timeout_s:.0f} s (exit code {code}):\n{tail}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a minute: a graceful stop lets vLLM end its engine processes."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def service_command(port: int, *args: str) -> list[str]:
    """`pandalm-serve` on a loopback port, with more flags."""
    return [sys.executable, "-m", "pandalm_serve.cli", "--host", "127.0.0.1", "--port", str(port), *args]
