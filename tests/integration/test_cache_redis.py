"""The verdict cache on a real Redis server (Debian's redis-server, on loopback): replicas share what they
know, and Redis going away mid-run does not stop judging."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from pandalm_serve.tools.processes import ServerProcess, free_port
from tests.api.conftest import wait_ready
from tests.fakes import CharTokenizer, FakeEngine
from tests.support import PAIR
from tests.system_tools import installed_binary

pytestmark = pytest.mark.integration

ITEMS = [{**PAIR, "id": f"q{i}", "response1": f"answer {i}"} for i in range(10)]


class RedisServer:
    def __init__(self, log_dir: Path) -> None:
        self.binary = installed_binary("redis-server", "redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_dir = log_dir
        self.process: ServerProcess | None = None

    def start(self) -> None:
        args = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = ServerProcess(args, self.log_dir / f"redis-{self.port}-{time.monotonic_ns()}.log")
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


@pytest.fixture
def redis_server(server_logs: Path) -> Iterator[RedisServer]:
    server = RedisServer(server_logs)
    server.start()
    yield server
    server.stop()


def replica(url: str, engine: FakeEngine) -> TestClient:
    client = TestClient(create_app(Settings(cache_backend="redis", redis_url=url), engine=engine))
    client.__enter__()
    wait_ready(client)
    return client


def test_replicas_share_their_verdicts_through_redis(redis_server: RedisServer) -> None:
    first_engine, second_engine = (FakeEngine(tokenizer=CharTokenizer(), context_length=4096) for _ in range(2))
    first, second = replica(redis_server.url, first_engine), replica(redis_server.url, second_engine)
    try:
        judged = first.post("/batch", json={"items": ITEMS}).json()
        again = second.post("/batch", json={"items": ITEMS}).json()
        assert len(first_engine.prompts) == 10 and second_engine.prompts == []
        assert [r["cached"] for r in again["results"]] == [True] * 10
        assert [(r["verdict"], r["raw"], r["probabilities"]) for r in again["results"]] == [
            (r["verdict"], r["raw"], r["probabilities"]) for r in judged["results"]
        ]
        assert second.delete("/cache").json() == {"cleared": 10}
    finally:
        first.__exit__(None, None, None)
        second.__exit__(None, None, None)


def test_redis_going_away_mid_run_does_not_stop_judging(redis_server: RedisServer) -> None:
    engine = FakeEngine()
    client = replica(redis_server.url, engine)
    try:
        assert client.post("/compare", json=PAIR).json()["cached"] is False
        assert client.post("/compare", json=PAIR).json()["cached"] is True
        redis_server.stop()
        started = time.perf_counter()
        results = [client.post("/compare", json=PAIR) for _ in range(3)]
        assert [r.status_code for r in results] == [200] * 3
        assert all(r.json()["cached"] is False for r in results)
        assert time.perf_counter() - started < 10  # a dead cache costs a short timeout, not the request
        assert "pandalm_cache_errors_total" in client.get("/metrics").text
        redis_server.start()  # back, on the same port: the cache works again
        client.post("/compare", json=PAIR)
        assert client.post("/compare", json=PAIR).json()["cached"] is True
    finally:
        client.__exit__(None, None, None)
