"""What the service benchmarks share: start `pandalm-serve` on loopback, wait for it, and load pairs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

STARTUP_TIMEOUT_S = 600


def benchmark_parser(doc: str | None) -> argparse.ArgumentParser:
    """The flags every benchmark takes: which pairs, how many, how many rounds."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--testset", type=Path, help="PandaLM's testset-v1.json (default: synthetic pairs)")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    return parser


def client_session() -> aiohttp.ClientSession:
    """A client session that drops idle connections before uvicorn does (after 5 s), so that a
    connection is never reused just as the server closes it."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=3600),
        connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=3),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_pairs(testset: Path | None, count: int) -> list[dict[str, str]]:
    """The first `count` pairs of PandaLM's test set, or synthetic pairs without one."""
    if testset is None:
        return [
            {
                "instruction": f"Summarise point {i}.",
                "input": "",
                "response1": f"Point {i} is short.",
                "response2": "No.",
            }
            for i in range(count)
        ]
    raw = json.loads(testset.read_text())[:count]
    # A few published responses are JSON booleans: judge them as text, as the evaluation tool does.
    return [{k: str(item[k]) for k in ("instruction", "input", "response1", "response2")} for item in raw]


@contextlib.contextmanager
def service(serve_args: list[str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`pandalm-serve` on a free loopback port; its log goes to a temporary file, named at the end."""
    port = free_port()
    log_fd, log_name = tempfile.mkstemp(prefix="pandalm-bench-", suffix=".log")
    command = [sys.executable, "-m", "pandalm_serve.cli", "--port", str(port), "--log-level", "warning", *serve_args]
    with os.fdopen(log_fd, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}", proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            print(f"service log: {log_name}")


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    """Wait for /readyz, then return /info."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            async with session.get(f"{url}/readyz") as response:
                if response.status == 200:
                    async with session.get(f"{url}/info") as info:
                        return dict(await info.json())
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError("the service did not become ready; see its log")
