"""A client that goes away stops its judging: the engine's generations are cancelled."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine
from tests.support import PAIR, serving

NDJSON = "application/x-ndjson"


@pytest.fixture
def served() -> Iterator[tuple[str, FakeEngine]]:
    """The app under a real uvicorn server on loopback, with an engine that takes 30 s per pair."""
    engine = FakeEngine(delay_s=30)
    with serving(create_app(Settings(), engine=engine)) as url:
        yield url, engine


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
        ("/batch", {"items": [{**PAIR, "instruction": f"Task {i}."} for i in range(5)]}, {}, 5),
        ("/batch", {"items": [{**PAIR, "instruction": f"Task {i}."} for i in range(5)]}, {"Accept": NDJSON}, 5),
        # Identical pairs are judged once: one generation, cancelled once.
        ("/batch", {"items": [PAIR] * 5}, {}, 1),
    ],
)
def test_disconnect_cancels_generation(
    served: tuple[str, FakeEngine], path: str, body: object, headers: dict[str, str], pairs: int
) -> None:
    url, engine = served
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}{path}", json=body, headers=headers, timeout=httpx.Timeout(10, read=0.5))
    assert wait_for(lambda: engine.cancelled == pairs), f"{engine.cancelled} of {pairs} generations cancelled"
