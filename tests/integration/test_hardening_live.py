"""The real service process under a hostile but fair caller: the battery, load past its bounds, SIGTERM mid-batch.

The engine is the remote one, in front of a scripted OpenAI-compatible server whose speed the test sets:
these are the service's behaviours, not vLLM's (tests/integration/test_engine_death.py kills vLLM's).
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from pandalm_serve.tools.processes import ServerProcess, free_port, service_command
from tests.fakes import FakeOpenAIServer, ThreadedOpenAIServer
from tests.support import PAIR

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def judge_server() -> Iterator[FakeOpenAIServer]:
    """A remote judge answering in 0.2 s, or in 30 s for prompts that say "slow"."""
    server = FakeOpenAIServer()
    server.delay = lambda prompt: 30.0 if "slow" in prompt else 0.2
    with ThreadedOpenAIServer(server) as running:
        yield running


def start(log: Path, remote: str, *flags: str) -> tuple[str, ServerProcess]:
    port = free_port()
    args = ["--engine", "remote", "--remote-url", remote, "--remote-prompt-format", "text", *flags]
    process = ServerProcess(service_command(port, *args), log)
    url = f"http://127.0.0.1:{port}"
    process.wait_until_ok(f"{url}/readyz", timeout_s=60)
    return url, process


@pytest.fixture(scope="module")
def service(judge_server: FakeOpenAIServer, server_logs: Path) -> Iterator[str]:
    url, process = start(
        server_logs / "hardened.log",
        judge_server.url,
        "--max-items-in-flight", "8", "--max-items-waiting", "32", "--max-body-bytes", "1000000",
    )  # fmt: skip
    yield url
    process.stop()


def test_the_battery_gives_no_5xx_and_the_service_keeps_serving(service: str) -> None:
    json_headers = {"content-type": "application/json"}
    bodies: list[tuple[str, bytes, dict[str, str]]] = [
        ("/compare", b"x" * 5_000_000, json_headers),  # over the body limit
        ("/compare", b"[" * 10_000 + b"]" * 10_000, json_headers),
        ("/batch", b'{"items": [' + b"9" * 5000 + b"]}", json_headers),
        ("/compare", json.dumps({**PAIR, "id": "\ud800"}).encode("utf-8", "surrogatepass"), json_headers),
        ("/compare", b'{"instruction": "\\ud800", "response1": "a", "response2": "b"}', json_headers),
        ("/batch", json.dumps({"items": [PAIR]}).encode(), {"content-type": "text/plain"}),
        ("/compare", json.dumps({**PAIR, "options": {"swap": "1"}}).encode(), json_headers),
        ("/compare", json.dumps({**PAIR, "response1": "z" * 200_000}).encode(), json_headers),
    ]
    with httpx.Client(base_url=service, timeout=60) as client:
        for path, body, headers in bodies:
            response = client.post(path, content=body, headers=headers)
            assert 400 <= response.status_code < 500, (path, body[:60], response.status_code, response.text[:200])
            assert set(response.json()) == {"error"}
        assert client.get("/healthz").status_code == 200
        assert client.post("/compare", json=PAIR).status_code == 200


def test_load_past_the_bounds_is_answered_429_and_everything_else_is_judged(service: str) -> None:
    process = psutil.Process(_pid_of(service))

    def one(i: int) -> list[int]:
        with httpx.Client(base_url=service, timeout=120) as client:
            if i % 4 == 0:
                response = client.post("/batch", json={"items": [PAIR] * 10})
                if response.status_code == 200:
                    assert [r["status"] for r in response.json()["results"]] == ["ok"] * 10
                return [response.status_code]
            return [client.post("/compare", json=PAIR).status_code for _ in range(3)]

    def burst(clients: int) -> list[int]:
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            return [code for codes in pool.map(one, range(clients)) for code in codes]

    # At most 2 batches of 10 and 4 pairs at once: within 8 in flight and 32 waiting (a batch's items not yet
    # in the queue count as waiting).
    within = burst(6)
    assert set(within) == {200}
    rss_before = process.memory_info().rss
    past = burst(64)
    assert set(past) <= {200, 429} and 429 in past and 200 in past
    for _ in range(3):
        burst(64)
    growth = process.memory_info().rss - rss_before
    assert growth < 100 * 2**20, f"the service grew by {growth / 2**20:.0f} MB under repeated load"


def test_sigterm_lets_pairs_in_flight_finish_and_cuts_the_rest_cleanly(
    judge_server: FakeOpenAIServer, server_logs: Path
) -> None:
    url, process = start(server_logs / "sigterm.log", judge_server.url, "--shutdown-grace-s", "3")
    slow = {**PAIR, "instruction": "A slow one."}
    lines: list[dict[str, Any]] = []
    started = time.monotonic()
    with (
        httpx.Client(base_url=url, timeout=60) as client,
        client.stream(
            "POST", "/batch", json={"items": [PAIR] * 5 + [slow] * 5}, headers={"accept": "application/x-ndjson"}
        ) as response,
    ):
        assert response.status_code == 200
        process.proc.send_signal(signal.SIGTERM)
        for line in response.iter_lines():
            if line:
                lines.append(json.loads(line))
    elapsed = time.monotonic() - started
    results, summary = lines[:-1], lines[-1]["summary"]
    by_instruction = {r["index"]: r for r in results}
    assert [by_instruction[i]["status"] for i in range(5)] == ["ok"] * 5  # finished within the grace period
    assert [by_instruction[i]["error"]["code"] for i in range(5, 10)] == ["shutting_down"] * 5
    assert summary["interrupted"] == 5 and summary["error"] == 5
    assert elapsed < 15, elapsed  # the grace period, not the 30 s the slow pairs would take
    # Exited by itself after the drain: uvicorn ends by re-raising the SIGTERM it caught, as a process should.
    assert process.proc.wait(timeout=30) in (0, -signal.SIGTERM)
    process.stop()


def _pid_of(url: str) -> int:
    port = int(url.rsplit(":", 1)[1])
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            return int(connection.pid)
    raise AssertionError(f"no process listens on {url}")
