"""API keys: what needs one, constant-time names, reloads without a restart, and no key text anywhere."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import pytest

from tests.api.conftest import MakeClient
from tests.fakes import FakeEngine
from tests.support import PAIR, assert_error, wait_until

KEY = "ci-s3cret-token-4242"
OTHER = "team-a-token-9999"


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys"
    digest = hashlib.sha256(OTHER.encode()).hexdigest()
    path.write_text(f"# name key\nci-bot {KEY}\nteam-a sha256:{digest}\n")
    return path


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_judging_needs_a_valid_key_and_probes_do_not(make_client: MakeClient, keys_file: Path) -> None:
    client = make_client(api_keys_file=keys_file)
    for response in (
        client.post("/compare", json=PAIR),
        client.post("/compare", json=PAIR, headers=bearer("wrong")),
        client.post("/batch", json={"items": [PAIR]}, headers={"authorization": KEY}),  # no scheme
        client.get("/info"),
        client.get("/openapi.json"),
    ):
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.post("/compare", json=PAIR, headers=bearer(KEY)).status_code == 200
    assert client.post("/compare", json=PAIR, headers=bearer(OTHER)).status_code == 200  # stored as a digest
    assert client.get("/info", headers=bearer(KEY)).status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_metrics_can_be_protected_too(make_client: MakeClient, keys_file: Path) -> None:
    client = make_client(api_keys_file=keys_file, protect_metrics=True)
    assert_error(client.get("/metrics"), 401, "unauthorized")
    assert client.get("/metrics", headers=bearer(KEY)).status_code == 200


def test_only_key_names_reach_logs_and_metrics(
    make_client: MakeClient, keys_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(api_keys_file=keys_file)
    client.post("/compare", json=PAIR, headers=bearer(KEY))
    client.post("/compare", json=PAIR, headers=bearer("wrong-guess"))
    metrics = client.get("/metrics").text
    assert 'client="ci-bot"' in metrics
    text = caplog.text + metrics
    assert KEY not in text and OTHER not in text and "wrong-guess" not in text


def test_one_keys_huge_batch_does_not_starve_anothers_compare(make_client: MakeClient, keys_file: Path) -> None:
    engine = FakeEngine(release_at=10**9)  # every generation waits until the test opens the gate
    client = make_client(engine, api_keys_file=keys_file, max_items_in_flight=1)
    services = client.app.state.services  # type: ignore[attr-defined]
    items = [{**PAIR, "instruction": f"Batch pair {i}."} for i in range(60)]
    batch = threading.Thread(target=lambda: client.post("/batch", json={"items": items}, headers=bearer(KEY)))
    batch.start()
    # The batch holds the engine and has its next pairs queued.
    wait_until(lambda: engine.in_progress == 1, "the batch holds the engine")
    compare = threading.Thread(
        target=lambda: client.post("/compare", json={**PAIR, "instruction": "Alone."}, headers=bearer(OTHER))
    )
    compare.start()
    wait_until(lambda: services.judge.admission.waiting > 0, "the compare queues")
    client.portal.call(engine.gate.set)  # type: ignore[union-attr]
    batch.join()
    compare.join()
    # Served at the next free place (second, after the batch's first pair), not after the batch's other 59.
    order = [prompt.text for prompt in engine.prompts]
    assert "Alone." in order[1], [text.split("### Instruction:")[-1][:20] for text in order[:3]]
