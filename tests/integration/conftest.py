"""Real servers for integration tests: the service itself (vLLM on the demo judge, or remote), vLLM's own
OpenAI server, and the replay server.

Each runs as its own process on loopback, started once per session and stopped at the end.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pandalm_client.canary import RECORDED_FIELD, builtin_path
from pandalm_serve.demo import ensure_demo_model
from pandalm_serve.tools.processes import ServerFailed, ServerProcess, free_port
from tests.servers import start_service


def serve(log_dir: Path, name: str, *args: str) -> Iterator[str]:
    """`pandalm-serve` with these flags, ready, for the session."""
    try:
        url, process = start_service(log_dir / f"{name}.log", *args)
    except ServerFailed as exc:
        pytest.fail(str(exc))
    try:
        yield url
    finally:
        process.stop()


def run_server(args: list[str], log: Path, ready_path: str, timeout_s: float = 600) -> Iterator[str]:
    """Another server (vLLM's, the replay server) on a free port given as `--port`, ready, for the session."""
    port = free_port()
    process = ServerProcess([*args, "--port", str(port)], log)
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_until_ok(f"{url}{ready_path}", timeout_s)
    except ServerFailed as exc:
        pytest.fail(str(exc))
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def demo_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the services of this session build the demo judge (fresh, as on a new machine)."""
    return tmp_path_factory.mktemp("pandalm-cache")


@pytest.fixture(scope="session")
def vllm_service(server_logs: Path, demo_cache_dir: Path) -> Iterator[str]:
    """The real service on vLLM's CPU build with the demo judge: one engine for the whole session. Its judge
    health is on (a canary at start-up, half the one-order pairs judged again swapped), so every series of the
    dashboard has data. The canary is the builtin one without PandaLM-7B's recorded verdicts, which a random
    demo judge does not reproduce: its baseline is its first run, and its alerts stay quiet."""
    canary = demo_cache_dir / "canary-unrecorded.json"
    items = json.loads(builtin_path().read_text())
    canary.write_text(json.dumps([{k: v for k, v in item.items() if k != RECORDED_FIELD} for item in items]))
    yield from serve(
        server_logs, "vllm-service", "--engine", "vllm", "--cache-dir", str(demo_cache_dir), "--max-batch-items", "64",
        "--canary", str(canary), "--swap-sample-rate", "0.5",
    )  # fmt: skip


@pytest.fixture(scope="session")
def demo_model(vllm_service: str, demo_cache_dir: Path) -> Path:
    """The demo judge the in-process service built (after it, so that it is built once)."""
    return ensure_demo_model(demo_cache_dir)


@pytest.fixture(scope="session")
def vllm_openai_server(server_logs: Path, demo_model: Path) -> Iterator[str]:
    """vLLM's own OpenAI server on the demo judge, configured as the in-process engine is."""
    yield from run_server(
        [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(demo_model),
            "--host",
            "127.0.0.1",
            "--max-model-len",
            "2048",
            "--kv-cache-memory-bytes",
            str(2**30),
            "--logprobs-mode",
            "processed_logprobs",
            "--seed",
            "0",
        ],
        server_logs / "vllm-openai.log",
        "/health",
    )


@pytest.fixture(scope="session")
def replay_server(server_logs: Path, pandalm_data_dir: Path) -> Iterator[str]:
    """An OpenAI-compatible server answering with PandaLM-7B's recorded outputs."""
    yield from run_server(
        [
            sys.executable,
            "-m",
            "pandalm_serve.tools.replay",
            "--testset",
            str(pandalm_data_dir / "testset-v1.json"),
            "--outputs",
            str(pandalm_data_dir / "pandalm-7b-outputs-sample.json"),
        ],
        server_logs / "replay.log",
        "/v1/models",
        timeout_s=60,
    )


@pytest.fixture(scope="session")
def remote_service(server_logs: Path, replay_server: str) -> Iterator[str]:
    """The real service with the remote engine, pointed at the replay server (which keys on prompt text)."""
    yield from serve(
        server_logs,
        "remote-service",
        "--engine",
        "remote",
        "--remote-url",
        replay_server,
        "--remote-prompt-format",
        "text",
    )


# One demo judge per family, named by family, in one service: what the judges' live tests run against.
FAMILY_JUDGES = ("panda=pandalm:demo", "prom=prometheus2:demo", "jlm=judgelm:demo", "mt=mtbench:demo")


@pytest.fixture(scope="session")
def judges_service(server_logs: Path, demo_cache_dir: Path) -> Iterator[str]:
    """The real service on vLLM's CPU build serving every family's demo judge, each on its own engine."""
    judges = [arg for judge in FAMILY_JUDGES for arg in ("--judge", judge)]
    yield from serve(server_logs, "judges-service", *judges, "--cache-dir", str(demo_cache_dir))
