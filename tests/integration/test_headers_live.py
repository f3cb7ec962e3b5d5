"""The real service process against hostile requests: heads huge, numerous or never finished, and bodies
never finished.

Raw sockets, since an HTTP client would refuse to send such heads; the engine is the remote one in front of
the fake OpenAI server, so that the process is the service's own (uvicorn, h11 and the app).
"""

from __future__ import annotations

import concurrent.futures
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from pandalm_serve.tools.processes import ServerProcess, free_port, service_command
from tests.fakes import FakeOpenAIServer, ThreadedOpenAIServer
from tests.support import PeakMemory

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def service(server_logs: Path) -> Iterator[tuple[str, psutil.Process]]:
    with ThreadedOpenAIServer(FakeOpenAIServer()) as judge:
        port = free_port()
        args = ["--engine", "remote", "--remote-url", judge.url, "--remote-prompt-format", "text"]
        args += ["--header-timeout-s", str(HEADER_TIMEOUT_S), "--body-timeout-s", str(HEADER_TIMEOUT_S)]
        args += ["--api-keys-file", str(_keys(server_logs))]
        process = ServerProcess(service_command(port, *args), server_logs / "headers.log")
        url = f"http://127.0.0.1:{port}"
        process.wait_until_ok(f"{url}/readyz", timeout_s=60)
        yield url, psutil.Process(process.proc.pid)
        process.stop()


def _keys(folder: Path) -> Path:
    path = folder / "header-keys.txt"
    path.write_text("team secret-key\n")
    return path


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _read_answer(sock: socket.socket) -> bytes:
    """One whole HTTP answer: its head, then as many body bytes as its content-length says (the head and
    the body may arrive in separate segments)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _send_huge_header(url: str, total_bytes: int) -> tuple[bytes, float]:
    """Send a head with one header of `total_bytes` bytes; the server's answer and when the sending stopped."""
    chunk = b"a" * 2**20
    started = time.monotonic()
    with socket.create_connection(_address(url), timeout=30) as sock:
        sock.sendall(b"GET /info HTTP/1.1\r\nhost: localhost\r\nx-huge: ")
        sent = 0
        try:
            while sent < total_bytes:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: what is wanted
        stopped = time.monotonic() - started
        try:
            answer = sock.recv(4096)
        except OSError:
            answer = b""  # reset before the 431 could be read
    return answer, stopped


def test_eight_100_mb_headers_are_cut_at_once_and_memory_and_healthz_hold(
    service: tuple[str, psutil.Process],
) -> None:
    url, process = service
    healthz_s: list[float] = []
    with PeakMemory(process) as memory, concurrent.futures.ThreadPoolExecutor(8) as pool:
        senders = [pool.submit(_send_huge_header, url, 100 * 2**20) for _ in range(8)]
        with httpx.Client(base_url=url, timeout=10) as client:
            while not healthz_s or not all(s.done() for s in senders):
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                healthz_s.append(time.monotonic() - started)
        results = [s.result() for s in senders]
    for answer, stopped in results:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:100]
        assert stopped < 5, f"the server read {stopped:.1f} s of a huge header"
    assert max(healthz_s) < 1
    assert memory.growth < 200 * 2**20, f"the service grew by {memory.growth / 2**20:.0f} MB"
    print(f"RSS growth {memory.growth / 2**20:.1f} MB, slowest /healthz {max(healthz_s):.3f} s")


def test_a_head_over_the_limit_is_answered_431_before_authentication(service: tuple[str, psutil.Process]) -> None:
    url, _ = service
    over_bytes = httpx.get(f"{url}/info", headers={"x-big": "a" * 40_000})
    assert over_bytes.status_code == 431
    over_fields = httpx.get(f"{url}/info", headers={f"x-field-{i}": "1" for i in range(150)})
    assert over_fields.status_code == 431  # not 401: no key was sent, and the app never saw the request
    within = httpx.get(f"{url}/info", headers={"x-big": "a" * 8_000, "authorization": "Bearer secret-key"})
    assert within.status_code == 200


def test_a_head_that_never_ends_is_closed_after_the_timeout(service: tuple[str, psutil.Process]) -> None:
    url, _ = service
    with socket.create_connection(_address(url), timeout=HEADER_TIMEOUT_S * 5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n")
        closed_after: float | None = None
        try:
            while time.monotonic() - started < HEADER_TIMEOUT_S * 4:
                sock.sendall(b"x-slow: 1\r\n")  # a byte now and then does not extend the deadline
                time.sleep(0.2)
        except OSError:
            closed_after = time.monotonic() - started
        if closed_after is None:
            assert sock.recv(100) == b""
            closed_after = time.monotonic() - started
    assert HEADER_TIMEOUT_S * 0.9 <= closed_after < HEADER_TIMEOUT_S * 2


def test_an_idle_connection_is_closed_too(service: tuple[str, psutil.Process]) -> None:
    url, _ = service
    with socket.create_connection(_address(url), timeout=HEADER_TIMEOUT_S * 5) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert HEADER_TIMEOUT_S * 0.9 <= time.monotonic() - started < HEADER_TIMEOUT_S * 2


def test_a_body_that_never_ends_is_answered_408_after_the_timeout(service: tuple[str, psutil.Process]) -> None:
    url, _ = service
    head = (
        b"POST /compare HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer secret-key\r\n"
        b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
    )
    with socket.create_connection(_address(url), timeout=HEADER_TIMEOUT_S * 5) as sock:
        started = time.monotonic()
        sock.sendall(head + b'{"instruction": ')
        answer = _read_answer(sock)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"request_timeout" in answer
    assert HEADER_TIMEOUT_S * 0.9 <= waited < HEADER_TIMEOUT_S * 2
