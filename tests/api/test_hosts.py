"""The `Host` check against DNS rebinding: by default, a loopback service without keys answers to loopback
names only."""

from __future__ import annotations

from pathlib import Path

import pytest

from pandalm_serve.hosts import allowed_hosts, host_name
from pandalm_serve.settings import Settings
from tests.api.conftest import MakeClient, wait_ready
from tests.support import PAIR, assert_error


def test_a_rebound_name_is_refused_and_loopback_names_answered(make_client: MakeClient) -> None:
    client = make_client(ready=False, allowed_hosts="auto")  # the default: on 127.0.0.1, without keys
    client.headers["host"] = "localhost"
    wait_ready(client)
    rebound = client.post("/compare", json=PAIR, headers={"host": "attacker.example:8000"})
    assert_error(rebound, 403, "forbidden")
    for name in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
        assert client.post("/compare", json=PAIR, headers={"host": name}).status_code == 200, name


def test_the_names_can_be_given(make_client: MakeClient) -> None:
    client = make_client(ready=False, allowed_hosts="judge.internal, localhost")
    client.headers["host"] = "localhost"
    wait_ready(client)
    assert client.get("/info", headers={"host": "judge.internal:8000"}).status_code == 200
    assert_error(client.get("/info", headers={"host": "127.0.0.1"}), 403, "forbidden")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, {"localhost", "127.0.0.1", "[::1]"}),
        ({"host": "0.0.0.0"}, None),  # reached by any name a network gives it: API keys protect it
        ({"api_keys_file": "KEYS"}, None),  # a rebound page has no key
        ({"allowed_hosts": "*"}, None),
    ],
)
def test_auto_guards_an_open_loopback_service_only(
    settings: dict[str, object], expected: set[str] | None, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    keys.write_text("a b\n")
    values = {k: keys if v == "KEYS" else v for k, v in settings.items()}
    assert allowed_hosts(Settings(**{"allowed_hosts": "auto", **values})) == expected  # type: ignore[arg-type]


def test_host_name_drops_the_port() -> None:
    assert [host_name(h) for h in ("a.b:80", "[::1]:8000", "[::1]", "Local.Host")] == [
        "a.b",
        "[::1]",
        "[::1]",
        "local.host",
    ]
