"""Real servers for integration tests: the service itself (vLLM on the demo judge, or remote), and the replay server.

Each runs as its own process on loopback, started once per session and stopped at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A server process whose output goes to a log file, shown when it fails to start."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def wait_until(self, url: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        tail = self.log.read_text(errors="replace")[-6000:]
        pytest.fail(f"{url} did not answer 200 within {timeout_s}s (exit code {self.proc.poll()}):\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


def start_service(log_dir: Path, name: str, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        [sys.executable, "-m", "pandalm_serve.cli", "--host", "127.0.0.1", "--port", str(port), *args],
        log_dir / f"{name}.log",
        env,
    )
    process.wait_until(f"{url}/readyz")
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def demo_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the services of this session build the demo judge (fresh, as on a new machine)."""
    return tmp_path_factory.mktemp("pandalm-cache")


@pytest.fixture(scope="session")
def vllm_service(server_logs: Path, demo_cache_dir: Path) -> Iterator[str]:
    """The real service on vLLM's CPU build with the demo judge: one engine for the whole session."""
    yield from start_service(
        server_logs, "vllm-service", "--engine", "vllm", "--cache-dir", str(demo_cache_dir), "--max-batch-items", "64"
    )


@pytest.fixture(scope="session")
def replay_server(server_logs: Path, pandalm_data_dir: Path) -> Iterator[str]:
    """An OpenAI-compatible server answering with PandaLM-7B's recorded outputs."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = Process(
        [
            sys.executable,
            "-m",
            "pandalm_serve.tools.replay",
            "--testset",
            str(pandalm_data_dir / "testset-v1.json"),
            "--outputs",
            str(pandalm_data_dir / "pandalm-7b-outputs-sample.json"),
            "--port",
            str(port),
        ],
        server_logs / "replay.log",
    )
    process.wait_until(f"{url}/v1/models", timeout_s=60)
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def remote_service(server_logs: Path, replay_server: str) -> Iterator[str]:
    """The real service with the remote engine, pointed at the replay server."""
    yield from start_service(server_logs, "remote-service", "--engine", "remote", "--remote-url", replay_server)
