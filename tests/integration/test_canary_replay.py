"""The canary against the replay-backed service: PandaLM-7B's recorded outputs change no canary verdict;
a replay server that answers differently changes exactly the items it answers differently."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from pandalm_client import AsyncPandaLMClient
from pandalm_client.canary import builtin_path, load_canary
from pandalm_client.models import CompareRequest, CompareResult
from pandalm_client.testset import pandalm_label
from pandalm_serve.quality.canary import Canary
from pandalm_serve.quality.metrics import QualityMetrics
from tests.integration.conftest import run_server, serve

pytestmark = pytest.mark.integration

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
        for url in serve(server_logs, "remote-service-altered", *engine):
            yield url, sorted(changed)


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


async def test_the_service_canary_runner_over_http(remote_service: str, altered_service: tuple[str, list[int]]) -> None:
    """The background runner, its judge calls made over HTTP (the service makes them in process)."""
    for url, expected in ((remote_service, 0.0), (altered_service[0], len(ALTERED) / 30)):
        async with AsyncPandaLMClient(url) as client:

            async def judge(request: CompareRequest, client: AsyncPandaLMClient = client) -> CompareResult:
                options = request.options.model_dump(exclude_none=True) if request.options else {}
                return await client.compare(
                    request.instruction, request.response1, request.response2, request.input, id=request.id, **options
                )

            registry = CollectorRegistry()
            canary = Canary(
                load_canary("builtin"), judge, lambda: True, QualityMetrics(registry), "pandalm", interval_s=60
            )
            report = await canary.run_once()
        assert report is not None and report.changed_ratio == pytest.approx(expected)
        assert registry.get_sample_value("pandalm_canary_changed_ratio", {"judge": "pandalm"}) == pytest.approx(
            expected
        )
