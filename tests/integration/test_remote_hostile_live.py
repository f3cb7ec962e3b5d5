"""The real service process in front of a hostile remote server: 300 MB answers are cut at once, and the
process's memory stays where it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from pandalm_serve.tools.processes import ServerProcess, free_port, service_command
from tests.fakes import FakeOpenAIServer, ThreadedOpenAIServer
from tests.support import PAIR, PeakMemory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hostile() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer()
    server.huge_answer = (200, 300 * 2**20)
    with ThreadedOpenAIServer(server) as running:
        yield running


def test_four_300_mb_answers_are_cut_and_memory_holds(hostile: FakeOpenAIServer, server_logs: Path) -> None:
    port = free_port()
    args = ["--engine", "remote", "--remote-url", hostile.url, "--remote-prompt-format", "text"]
    process = ServerProcess(service_command(port, *args, "--cache-backend", "off"), server_logs / "hostile.log")
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_until_ok(f"{url}/readyz", timeout_s=60)
        with PeakMemory(psutil.Process(process.proc.pid)) as memory:
            items = [{**PAIR, "id": str(i), "instruction": f"question {i}"} for i in range(4)]
            response = httpx.post(f"{url}/batch", json={"items": items}, timeout=120)
        assert response.status_code == 200
        assert [r["error"]["code"] for r in response.json()["results"]] == ["remote_bad_response"] * 4
        assert len(response.content) < 10_000
        assert memory.growth < 200 * 2**20, f"the service grew by {memory.growth / 2**20:.0f} MB"
        print(f"RSS baseline {memory.baseline / 2**20:.0f} MB, peak growth {memory.growth / 2**20:.1f} MB")
    finally:
        process.stop()
