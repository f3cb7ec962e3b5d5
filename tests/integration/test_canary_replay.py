"""The canary against the replay-backed service: PandaLM-7B's recorded outputs change no canary verdict;
a replay server that answers differently changes exactly the items it answers differently."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pandalm_client.canary import builtin_path
from pandalm_client.testset import pandalm_label
from tests.integration.conftest import run_server, serve

pytestmark = pytest.mark.integration

# The service's own canary: the bundled set, once at start-up (the next run an hour later).
CANARY = ("--canary", "builtin", "--canary-interval-s", "3600")
# Canary items the altered replay answers with another verdict than PandaLM-7B's (by position in the file).
ALTERED = (0, 7, 19)


def eval_canary(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pandalm_client.cli", "--url", url, "eval", "--canary", "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def altered_service(server_logs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[int]]]:
    """The service in front of a replay server whose outputs differ from PandaLM-7B's on ALTERED items."""
    outputs = json.loads(builtin_path().read_text())
    changed = []
    for position in ALTERED:
        output = outputs[position]
        output["pandalm_result"] = {1: 2, 2: 1, 0: 1}[pandalm_label(output["pandalm_result"])]
        changed.append(output["idx"])
    path = tmp_path_factory.mktemp("altered") / "outputs.json"
    path.write_text(json.dumps(outputs))
    replay = [
        sys.executable,
        "-m",
        "pandalm_serve.tools.replay",
        "--testset",
        str(builtin_path()),
        "--outputs",
        str(path),
    ]
    for replay_url in run_server(replay, server_logs / "replay-altered.log", "/v1/models", timeout_s=60):
        engine = ["--engine", "remote", "--remote-url", replay_url, "--remote-prompt-format", "text"]
        for url in serve(server_logs, "remote-service-altered", *engine, *CANARY):
            yield url, sorted(changed)


@pytest.fixture(scope="module")
def canary_service(server_logs: Path, replay_server: str) -> Iterator[str]:
    """The service in front of PandaLM-7B's recorded outputs, running the builtin canary."""
    engine = ["--engine", "remote", "--remote-url", replay_server, "--remote-prompt-format", "text"]
    yield from serve(server_logs, "remote-service-canary", *engine, *CANARY)


def test_pandalm_eval_canary_changes_nothing_on_pandalm_7bs_outputs(remote_service: str) -> None:
    run = eval_canary(remote_service)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert (report["changed"], report["compared"], report["statuses"]) == (0, 30, {"ok": 30})
    assert report["accuracy"] == report["baseline_agreement"]["accuracy"] == 0.7


def test_pandalm_eval_canary_exits_1_when_the_replay_answers_differently(
    altered_service: tuple[str, list[int]],
) -> None:
    url, changed = altered_service
    run = eval_canary(url)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    assert report["changed_ids"] == changed and report["changed_ratio"] == pytest.approx(len(ALTERED) / 30)


def canary_metrics(url: str) -> dict[str, float]:
    """The canary's series on the service's /metrics, once its first run has ended (it runs at start-up)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = {
            f"{sample.name}{sorted(sample.labels.items())}": sample.value
            for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
            for sample in family.samples
            if sample.name.startswith("pandalm_canary_")
        }
        if found.get("pandalm_canary_runs_total[('judge', 'pandalm'), ('outcome', 'complete')]", 0) >= 1:
            return found
        time.sleep(0.5)
    raise AssertionError("the service's canary did not finish a run within 120 s")


def test_the_services_canary_reports_no_change_on_pandalm_7bs_outputs(canary_service: str) -> None:
    found = canary_metrics(canary_service)
    assert found["pandalm_canary_changed_ratio[('judge', 'pandalm')]"] == 0
    assert found["pandalm_canary_agreement[('judge', 'pandalm'), ('metric', 'accuracy')]"] == pytest.approx(0.7)


def test_the_services_canary_reports_the_changed_share_when_the_replay_answers_differently(
    altered_service: tuple[str, list[int]],
) -> None:
    found = canary_metrics(altered_service[0])
    assert found["pandalm_canary_changed_ratio[('judge', 'pandalm')]"] == pytest.approx(len(ALTERED) / 30)
