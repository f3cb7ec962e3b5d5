"""Services sharing one cache file are given each other's generations only for the same model: the same
name served from other weights, or another namespace, is another model."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.api.conftest import wait_ready
from tests.fakes import FakeOpenAIServer, ThreadedOpenAIServer
from tests.support import PAIR


def cached_twice(server: FakeOpenAIServer, cache: Path, namespace: str = "") -> list[bool]:
    """Whether a service in front of `server`, on the shared cache file, judges PAIR from the cache twice."""
    settings = Settings(
        engine="remote",
        remote_url=server.url,
        remote_prompt_format="text",
        cache_backend="sqlite",
        cache_path=cache,
        cache_namespace=namespace,
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        return [client.post("/compare", json=PAIR).json()["cached"] for _ in range(2)]


def test_the_served_weights_and_the_namespace_are_part_of_the_models_identity(tmp_path: Path) -> None:
    cache = tmp_path / "shared.sqlite"
    with ThreadedOpenAIServer(FakeOpenAIServer()) as server:
        assert cached_twice(server, cache) == [False, True]
        assert cached_twice(server, cache) == [True, True]  # another service, the same model: shared
        server.model_root = "/weights/judge-v2"  # restarted with other weights under the same name
        assert cached_twice(server, cache) == [False, True]
        assert cached_twice(server, cache, namespace="team-b") == [False, True]
