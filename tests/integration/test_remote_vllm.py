"""The remote engine with PandaLM's tokenizer, in front of vLLM's own OpenAI server, judges exactly as in process.

Between the service and the server sits a recording proxy, which also asks the server to echo the
prompt token ids it received, so the test sees what reached the model.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import ClientSession, web

from pandalm_client.testset import load_testset
from pandalm_serve.tools.processes import free_port
from tests.integration.conftest import serve
from tests.support import CAPITAL_PAIR, assert_probabilities_follow

pytestmark = pytest.mark.integration

TIMEOUT = httpx.Timeout(300.0)


class RecordingProxy:
    """Forwards /v1/* to a server and records each completion request and the prompt ids the server echoed."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.sent: list[Any] = []  # the `prompt` of each completion request, as the service sent it
        self.received: list[list[int]] = []  # the prompt token ids the server says it received
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._session = ClientSession()
        app = web.Application(client_max_size=2**26)
        app.router.add_route("*", "/{path:.*}", self._forward)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        completion = request.path == "/v1/completions" and isinstance(body, dict)
        if completion:
            assert isinstance(body, dict)
            self.sent.append(body["prompt"])
            body = {**body, "return_token_ids": True}
        async with self._session.request(request.method, f"{self.upstream}{request.path}", json=body) as upstream:
            data = await upstream.json()
        if completion and upstream.status == 200:
            self.received.append(data["choices"][0]["prompt_token_ids"])
        return web.json_response(data, status=upstream.status)


@pytest.fixture(scope="session")
def proxy(vllm_openai_server: str) -> Iterator[RecordingProxy]:
    with RecordingProxy(vllm_openai_server) as recording:
        yield recording


@pytest.fixture(scope="session")
def remote_exact_service(server_logs: Path, proxy: RecordingProxy) -> Iterator[str]:
    """The service's remote engine, in its default `auto` format: the served model is a local folder, so the
    service loads its tokenizer and sends token ids."""
    yield from serve(server_logs, "remote-exact-service", "--engine", "remote", "--remote-url", proxy.url)


def judge(url: str, pair: dict[str, Any], **options: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/compare", json={**pair, "options": options}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return dict(response.json())


def pairs(pandalm_data_dir: Path) -> list[dict[str, Any]]:
    chosen = [i for i in load_testset(pandalm_data_dir / "testset-v1.json") if i.idx in {0, 44, 157, 300, 998}]
    return [CAPITAL_PAIR, *(item.request() for item in chosen)]


def test_info_reports_exact_token_ids(remote_exact_service: str, demo_model: Path) -> None:
    info = httpx.get(f"{remote_exact_service}/info").json()
    assert (info["engine"], info["prompt_format"], info["tokenizer"]) == ("remote", "token_ids", str(demo_model))
    assert (info["bos_token"], info["demo"]) == ("</s>", True)
    assert info["limits"]["context_length"] == 2048


@pytest.mark.parametrize(
    "options",
    [{}, {"mode": "verdict"}, {"swap": True}],
    ids=["full", "verdict", "swap"],
)
def test_remote_judges_exactly_as_in_process(
    vllm_service: str, remote_exact_service: str, proxy: RecordingProxy, pandalm_data_dir: Path, options: dict[str, Any]
) -> None:
    for pair in pairs(pandalm_data_dir):
        # One request at a time on each side, so both engines run the same batches.
        local = judge(vllm_service, pair, **options)
        remote = judge(remote_exact_service, pair, **options)
        assert remote["status"] == local["status"] == "ok"
        assert (remote["verdict"], remote["raw"], remote["consistent"]) == (
            local["verdict"],
            local["raw"],
            local["consistent"],
        )
        assert remote["usage"] == local["usage"]
        assert remote["probabilities"] == pytest.approx(local["probabilities"], abs=1e-6)
        assert_probabilities_follow(remote)


def test_prompts_reach_the_server_as_pandalm_token_ids(remote_exact_service: str, proxy: RecordingProxy) -> None:
    judge(remote_exact_service, CAPITAL_PAIR)
    assert proxy.sent and proxy.received
    assert all(isinstance(prompt, list) for prompt in proxy.sent)
    assert all(ids[0] == 2 for ids in proxy.received)  # `</s>`, as PandaLM was trained
    assert proxy.received[-1] == proxy.sent[-1]  # the server added no BOS of its own


def test_too_long_prompt_is_caught_before_the_server(remote_exact_service: str, proxy: RecordingProxy) -> None:
    before = len(proxy.sent)
    response = httpx.post(
        f"{remote_exact_service}/compare", json={**CAPITAL_PAIR, "response1": "word " * 3000}, timeout=TIMEOUT
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["context_length"] == 2048
    assert len(proxy.sent) == before
    truncated = judge(remote_exact_service, {**CAPITAL_PAIR, "response1": "word " * 3000}, truncate=True)
    assert truncated["status"] == "ok"
    assert "input_truncated" in [w["code"] for w in truncated["warnings"]]
