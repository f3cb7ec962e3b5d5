from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine

MakeClient = Callable[..., TestClient]


def wait_ready(client: TestClient, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the app did not become ready"
        time.sleep(0.01)


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """Start the real app, through its lifespan, on a fake engine."""
    clients: list[TestClient] = []

    def make(
        engine: FakeEngine | None = None,
        ready: bool = True,
        engines: dict[str, FakeEngine] | None = None,
        **settings: object,
    ) -> TestClient:
        """`engines` gives the judges configured by `judge=[...]` their fake engines, by name."""
        app = create_app(Settings(**settings), engine=engine or FakeEngine(), engines=engines)  # type: ignore[arg-type]
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        if ready:
            wait_ready(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()
