"""The remote engine behind vLLM's router (`vllm-router`), as deploy/scale-out runs them, on loopback.

Two replay servers behind a real router: every pair of a /batch judged, both replicas working, and a replica
killed in the middle of a batch losing no pair. Then two real vLLM servers on the demo judge behind the router:
PandaLM's token ids reach vLLM intact through the router's re-serialised body, and judge as in process.
The router's policy and retry flags are read from deploy/scale-out/compose.yaml, so the deployed ones run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from pandalm_client.testset import VERDICT_LABELS, load_testset, pandalm_label
from pandalm_serve.engines.remote import AFFINITY_HEADER
from pandalm_serve.engines.tokenizer import load_tokenizer
from pandalm_serve.judge.tokens import OrderedPair, PromptEncoder, TextPrompts, fit_prompt
from pandalm_serve.tools.processes import ServerFailed, ServerProcess, free_port
from tests.servers import Proxy, proxies, start_service
from tests.support import assert_probabilities_follow

pytestmark = pytest.mark.integration

TIMEOUT = httpx.Timeout(300.0)
COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "scale-out" / "compose.yaml"
# How the service fits a prompt with `truncate` in full mode, at the demo judge's context.
FIT: dict[str, Any] = {"context_length": 2048, "max_new_tokens": 512, "truncate": True}


def deployed_router_flags() -> list[str]:
    """The router's policy, retry, circuit-breaker and health flags as the compose file deploys them."""
    command = yaml.safe_load(COMPOSE.read_text())["services"]["router"]["command"]
    wanted = ("--policy", "--disable-retries", "--cb-", "--health-", "--request-timeout")
    return [arg for arg in command if arg.startswith(wanted)]


def start_router(stack: ExitStack, log: Path, workers: list[str]) -> str:
    port = free_port()
    process = ServerProcess(
        [
            sys.executable, "-m", "vllm_router.launch_router", "--host", "127.0.0.1", "--port", str(port),
            "--prometheus-port", str(free_port()), "--worker-urls", *workers,
            "--worker-startup-check-interval", "1", *deployed_router_flags(),
        ],
        log,
    )  # fmt: skip
    stack.callback(process.stop)
    url = f"http://127.0.0.1:{port}"
    process.wait_until_ok(f"{url}/readiness", timeout_s=120)
    return url


def start(stack: ExitStack, log: Path, *args: str) -> str:
    url, process = start_service(log, *args)
    stack.callback(process.stop)
    return url


def test_every_prompt_of_one_instruction_and_input_shares_one_affinity_key() -> None:
    def key(instruction: str, input: str, response1: str, response2: str) -> str:
        prompt, _ = TextPrompts().build(
            OrderedPair(instruction, input, response1, response2), max_new_tokens=512, truncate=False
        )
        return prompt.affinity_key

    same = key("Add.", "2 and 2", "4", "5")
    assert same == key("Add.", "2 and 2", "5", "4") == key("Add.", "2 and 2", "", "### Response 1:\nx")
    assert (
        len({same, key("Add.", "2 and 3", "4", "5"), key("Add!", "2 and 2", "4", "5"), key("Add.", "", "4", "5")}) == 4
    )
    assert AFFINITY_HEADER == "X-Session-ID"  # what the router's session policies read first


# --- two replay servers


@dataclass
class ReplayTopology:
    service: str
    replicas: list[ServerProcess]
    service_log: Path

    def completions(self, replica: int) -> int:
        """Completion requests a replica answered, from its access log."""
        return self.replicas[replica].log.read_text().count('"POST /v1/completions HTTP/1.1" 200')


@contextmanager
def replay_topology(logs: Path, data: Path, name: str, cache: Path) -> Iterator[ReplayTopology]:
    """Two replay servers (50 ms an answer), the router over them, the service in front (text prompts: the
    replay server keys on prompt text). Its own cache folder, so that every pair reaches a replica."""
    with ExitStack() as stack:
        replicas = []
        for i in range(2):
            port = free_port()
            replica = ServerProcess(
                [
                    sys.executable, "-m", "pandalm_serve.tools.replay", "--testset", str(data / "testset-v1.json"),
                    "--outputs", str(data / "pandalm-7b-outputs-sample.json"), "--delay-s", "0.05",
                    "--port", str(port),
                ],
                logs / f"{name}-replica{i}.log",
            )  # fmt: skip
            stack.callback(replica.stop)
            replica.wait_until_ok(f"http://127.0.0.1:{port}/health", timeout_s=60)
            replicas.append(replica)
        workers = [f"http://127.0.0.1:{r.args[r.args.index('--port') + 1]}" for r in replicas]
        router = start_router(stack, logs / f"{name}-router.log", workers)
        service_log = logs / f"{name}-service.log"
        service = start(
            stack, service_log, "--engine", "remote", "--remote-url", router, "--remote-prompt-format", "text",
            "--cache-dir", str(cache), "--max-items-in-flight", "4",
        )  # fmt: skip
        yield ReplayTopology(service, replicas, service_log)


def recorded(data: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The 59 test items PandaLM-7B's sample has outputs for, as requests, and those outputs by id."""
    outputs = {str(o["idx"]): o for o in json.loads((data / "pandalm-7b-outputs-sample.json").read_text())}
    items = [i.request() for i in load_testset(data / "testset-v1.json") if str(i.idx) in outputs]
    assert len(items) == 59
    return items, outputs


def assert_judged_as_recorded(results: list[dict[str, Any]], outputs: dict[str, dict[str, Any]]) -> None:
    assert len(results) == 59
    for result in results:
        assert result["status"] == "ok", result
        assert VERDICT_LABELS[result["verdict"]] == pandalm_label(outputs[result["id"]]["pandalm_result"])


def test_every_pair_is_judged_and_both_replicas_work(server_logs: Path, pandalm_data_dir: Path, tmp_path: Path) -> None:
    items, outputs = recorded(pandalm_data_dir)
    with replay_topology(server_logs, pandalm_data_dir, "router-replay", tmp_path) as topology:
        response = httpx.post(f"{topology.service}/batch", json={"items": items}, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["id"] for r in results] == [item["id"] for item in items]
        assert_judged_as_recorded(results, outputs)
        served = [topology.completions(0), topology.completions(1)]
    assert all(count > 0 for count in served), served
    assert sum(served) == 59  # each pair once: none lost, none judged twice


def test_a_replica_killed_mid_batch_loses_no_pair(server_logs: Path, pandalm_data_dir: Path, tmp_path: Path) -> None:
    items, outputs = recorded(pandalm_data_dir)
    with replay_topology(server_logs, pandalm_data_dir, "router-failover", tmp_path) as topology:
        results = []
        with httpx.stream(
            "POST",
            f"{topology.service}/batch",
            json={"items": items},
            headers={"Accept": "application/x-ndjson"},
            timeout=TIMEOUT,
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                results.append(json.loads(line))
                if len(results) == 8:
                    assert topology.completions(0) > 0  # it was working
                    topology.replicas[0].proc.kill()
                    topology.replicas[0].proc.wait()
                    survivor_at_kill = topology.completions(1)
        *judged, summary = results
        assert_judged_as_recorded(sorted(judged, key=lambda r: r["index"]), outputs)
        assert summary["summary"]["error"] == 0
        # The rest of the batch went to the live replica: each pair answered once in all.
        assert topology.completions(1) > survivor_at_kill
        assert topology.completions(0) + topology.completions(1) == 59
        # Pairs the router still sent to the dead replica failed, and the service retried them through the
        # router, which had meanwhile opened the dead replica's circuit.
        assert "retry" in topology.service_log.read_text()


# --- two vLLM servers on the demo judge


class RecordingProxy(Proxy):
    """In front of one vLLM server: asks it to echo the prompt token ids it received, and records them."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.received: list[list[int]] = []

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        completion = request.path == "/v1/completions" and isinstance(body, dict)
        if completion:
            body = {**body, "return_token_ids": True}  # type: ignore[dict-item]
        async with self._session.request(request.method, f"{self.upstream}{request.path}", json=body) as upstream:
            raw = await upstream.read()
            status = upstream.status
        if completion and status == 200:
            self.received.append(json.loads(raw)["choices"][0]["prompt_token_ids"])
        return web.Response(body=raw, status=status, content_type="application/json")


@pytest.fixture(scope="module")
def second_vllm_server(server_logs: Path, demo_model: Path) -> Iterator[str]:
    """A second vLLM server on the demo judge beside the session's (`vllm_openai_server`), on the other core
    (vLLM's CPU build binds every engine to the first one unless told otherwise)."""
    port = free_port()
    process = ServerProcess(
        [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(demo_model),
            "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "2048",
            "--kv-cache-memory-bytes", str(2**30), "--logprobs-mode", "processed_logprobs", "--seed", "0",
        ],
        server_logs / "vllm-openai-second.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": "1"},
    )  # fmt: skip
    try:
        process.wait_until_ok(f"http://127.0.0.1:{port}/health")
    except ServerFailed as exc:
        pytest.fail(str(exc))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_token_ids_reach_vllm_intact_through_the_router(
    server_logs: Path,
    pandalm_data_dir: Path,
    tmp_path: Path,
    demo_model: Path,
    vllm_service: str,
    vllm_openai_server: str,
    second_vllm_server: str,
) -> None:
    chosen = load_testset(pandalm_data_dir / "testset-v1.json")[:400:25]
    items = [i.request() for i in chosen]
    encoder = PromptEncoder(load_tokenizer(str(demo_model)), "</s>")
    expected = {
        tuple(fit_prompt(encoder, i.instruction, i.input, *responses, **FIT).token_ids)
        for i in chosen
        for responses in ((i.response1, i.response2), (i.response2, i.response1))
    }
    with ExitStack() as stack, proxies(RecordingProxy, [vllm_openai_server, second_vllm_server]) as recording:
        router = start_router(stack, server_logs / "router-vllm.log", [p.url for p in recording])
        service = start(
            stack, server_logs / "router-vllm-service.log", "--engine", "remote", "--remote-url", router,
            "--cache-dir", str(tmp_path),
        )  # fmt: skip
        info = httpx.get(f"{service}/info").json()
        assert (info["prompt_format"], info["tokenizer"]) == ("token_ids", str(demo_model))
        body = {"items": items, "options": {"swap": True, "truncate": True}}
        response = httpx.post(f"{service}/batch", json=body, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        for result in response.json()["results"]:
            assert result["status"] == "ok", result
            assert_probabilities_follow(result)
        # One pair through the router judges exactly as the in-process engine does.
        pair = {"instruction": "Give the capital of France.", "response1": "Paris.", "response2": "Lyon."}
        routed = httpx.post(f"{service}/compare", json=pair, timeout=TIMEOUT).json()
        local = httpx.post(f"{vllm_service}/compare", json=pair, timeout=TIMEOUT).json()
    assert (routed["verdict"], routed["raw"], routed["usage"]) == (local["verdict"], local["raw"], local["usage"])
    assert routed["probabilities"] == pytest.approx(local["probabilities"], abs=1e-6)
    received = [ids for proxy in recording for ids in proxy.received]
    assert all(proxy.received for proxy in recording), "a replica got no work"
    assert expected <= {tuple(ids) for ids in received}  # byte for byte: `</s>` first, nothing added or lost
    assert all(ids[0] == 2 for ids in received)
