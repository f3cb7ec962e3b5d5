"""Test data and assertions shared across the test suite."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import psutil
import pytest
import uvicorn
from fastapi import FastAPI

from pandalm_serve.http_limits import HeadLimits
from pandalm_serve.judge.format import render_output
from pandalm_serve.settings import Settings
from pandalm_serve.tools.processes import free_port, wait_until_ok

# A small pair every API test can judge.
PAIR: dict[str, Any] = {"instruction": "Add 2 and 2.", "response1": "4", "response2": "5"}
# The same shape, with a pair the demo judge's tests read naturally.
CAPITAL_PAIR: dict[str, Any] = {
    "instruction": "Give the capital of France.",
    "input": "",
    "response1": "Paris.",
    "response2": "The capital of France is Lyon.",
}
# What a fake judge writes unless a test scripts otherwise.
PANDALM_OUTPUT = render_output("response1", "Response 1 is better.", "The answer.")


class HTTPResponse(Protocol):
    """What the tests read of a response, from httpx or from Starlette's test client."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


def assert_error(response: HTTPResponse, status: int, code: str) -> dict[str, Any]:
    """The response is the one error shape, with this status and code; returns the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


def assert_probabilities_follow(result: dict[str, Any]) -> None:
    """Probabilities are present, sum to one, and the verdict is the most probable label."""
    probs = result["probabilities"]
    assert probs is not None, result["warnings"]
    assert sum(probs.values()) == pytest.approx(1.0)
    assert all(0 <= p <= 1 for p in probs.values())
    if result["consistent"] is not False:  # an inconsistent swap is a tie whatever the mean says
        assert max(probs, key=probs.get) == result["verdict"]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Wait for `condition` to hold, which the code under test makes true; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app under a real uvicorn server on loopback, in a thread, as `pandalm-serve` runs it; yields its URL
    once it is ready."""
    port = free_port()
    # The HTTP protocol pandalm-serve runs (h11, with its limits on request heads), not uvicorn's default.
    limits = HeadLimits.of(Settings()).uvicorn_options()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **limits)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until_ok(f"{url}/readyz", timeout_s=10), "the app did not become ready"
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def api_operations(app: FastAPI) -> dict[str, set[str]]:
    """Each documented path of the app and its methods, read from its OpenAPI document.

    The document, not `app.routes`: FastAPI 0.165 wraps included routers in objects without a `path`.
    """
    return {path: {method.upper() for method in ops} for path, ops in app.openapi()["paths"].items()}


_HOLD_WRITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def holding_write_lock(path: Path) -> Iterator[None]:
    """Another process holds the SQLite file's write lock (as a second service's long write would) meanwhile."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_WRITE_LOCK, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()


class PeakMemory:
    """How far a process's resident memory rose over a `with` block, sampled every 20 ms."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.baseline = self.peak = 0
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch)

    def __enter__(self) -> PeakMemory:
        self.baseline = self.peak = self.process.memory_info().rss
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._watcher.join()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    def _watch(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)
