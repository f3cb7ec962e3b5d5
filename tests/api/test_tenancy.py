"""Several keys on one service: the cache's scope, the admin key that may clear it, and how /metrics names keys."""

from __future__ import annotations

import concurrent.futures
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from pandalm_serve.auth import ApiKeys
from pandalm_serve.errors import ConfigurationError
from pandalm_serve.settings import Settings
from tests.api.conftest import MakeClient
from tests.fakes import FakeEngine
from tests.support import PAIR, assert_error

A, B, ADMIN = "key-of-team-a-1111", "key-of-team-b-2222", "key-of-ops-3333"


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    path.write_text(f"team-a {A}\nteam-b {B}\nops {ADMIN} admin\n")
    return path


def as_key(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def cached(client: object, key: str) -> bool:
    response = client.post("/compare", json=PAIR, headers=as_key(key))  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    return bool(response.json()["cached"])


def test_per_key_scope_gives_a_key_only_its_own_generations(make_client: MakeClient, keys_file: Path) -> None:
    engine = FakeEngine()
    client = make_client(engine, api_keys_file=keys_file, cache_backend="memory", cache_scope="per-key")
    assert [cached(client, A), cached(client, B), cached(client, A), cached(client, B)] == [False, False, True, True]
    assert len(engine.prompts) == 2  # B's first pair was judged, not answered from A's


def test_shared_scope_gives_every_key_the_same_generations(make_client: MakeClient, keys_file: Path) -> None:
    engine = FakeEngine()
    client = make_client(engine, api_keys_file=keys_file, cache_backend="memory")
    assert [cached(client, A), cached(client, B)] == [False, True]
    assert len(engine.prompts) == 1


def test_per_key_scope_does_not_share_a_generation_in_flight(make_client: MakeClient, keys_file: Path) -> None:
    engine = FakeEngine(delay_s=0.3)
    client = make_client(engine, api_keys_file=keys_file, cache_backend="memory", cache_scope="per-key")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda key: client.post("/compare", json=PAIR, headers=as_key(key)), [A, B]))
    assert [a.status_code for a in answers] == [200, 200]
    assert len(engine.prompts) == 2  # B did not ride on A's call, which would have answered it sooner


def test_per_key_scope_needs_keys() -> None:
    with pytest.raises(ValidationError, match="needs API keys"):
        Settings(cache_scope="per-key")


def test_only_an_admin_key_clears_the_cache(make_client: MakeClient, keys_file: Path) -> None:
    client = make_client(api_keys_file=keys_file, cache_backend="memory")
    cached(client, A)
    assert_error(client.delete("/cache", headers=as_key(A)), 403, "forbidden")
    assert_error(client.delete("/cache"), 401, "unauthorized")
    assert cached(client, B)  # nothing was cleared
    assert client.delete("/cache", headers=as_key(ADMIN)).json() == {"cleared": 1}
    assert not cached(client, B)


def test_without_keys_anyone_may_clear_the_cache(make_client: MakeClient) -> None:
    client = make_client(cache_backend="memory")
    assert client.delete("/cache").status_code == 200


@pytest.mark.parametrize("label", ["name", "hashed", "dropped"])
def test_metrics_label_keys_as_configured(make_client: MakeClient, keys_file: Path, label: str) -> None:
    client = make_client(api_keys_file=keys_file, metrics_key_label=label)
    cached(client, A)
    cached(client, B)
    clients = set(re.findall(r'pandalm_http_requests_total\{[^}]*client="([^"]*)"', client.get("/metrics").text))
    if label == "name":
        assert clients == {"team-a", "team-b"}
    elif label == "hashed":
        assert len(clients) == 2 and all(re.fullmatch(r"[0-9a-f]{12}", c) for c in clients)
    else:
        assert clients == {"-"}


def test_the_keys_file_marks_admins_and_refuses_other_third_fields(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"team-a {A}\nops {ADMIN} admin\n")
    keys = ApiKeys(path)
    assert [keys.caller(k).admin for k in (A, ADMIN)] == [False, True]  # type: ignore[union-attr]
    path.write_text(f"ops {ADMIN} root\n")
    with pytest.raises(ConfigurationError, match="'admin' or nothing"):
        ApiKeys(path)
