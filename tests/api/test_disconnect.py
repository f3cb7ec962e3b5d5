"""A client that goes away stops its judging: the engine's generations are cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from pandalm_serve.tools.processes import free_port, wait_until_ok
from tests.fakes import FakeEngine
from tests.support import PAIR


@pytest.fixture
def served() -> Iterator[tuple[str, FakeEngine]]:
    """The app under a real uvicorn server on loopback, with an engine that takes 30 s per pair."""
    engine = FakeEngine(delay_s=30)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(), engine=engine), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    assert wait_until_ok(f"{url}/readyz", timeout_s=10)
    yield url, engine
    server.should_exit = True
    thread.join(timeout=10)


def wait_for(condition: object, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    ("path", "body", "headers", "pairs"),
    [
        ("/compare", PAIR, {}, 1),
        ("/batch", {"items": [PAIR] * 5}, {}, 5),
        ("/batch", {"items": [PAIR] * 5}, {"Accept": "application/x-ndjson"}, 5),
    ],
)
def test_disconnect_cancels_generation(
    served: tuple[str, FakeEngine], path: str, body: object, headers: dict[str, str], pairs: int
) -> None:
    url, engine = served
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}{path}", json=body, headers=headers, timeout=httpx.Timeout(10, read=0.5))
    assert wait_for(lambda: engine.cancelled == pairs), f"{engine.cancelled} of {pairs} generations cancelled"
