"""The real vLLM engine: the service connects to nothing outside loopback, and when its engine process is
killed, liveness fails, nothing hangs, the log stays small, and the process exits for its supervisor."""

from __future__ import annotations

import ipaddress
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from pandalm_serve.tools.processes import ServerProcess, free_port, service_command
from tests.support import CAPITAL_PAIR

pytestmark = pytest.mark.integration


def remote_addresses(root: psutil.Process) -> set[str]:
    """The addresses the process and its children are connected to (or connecting to), loopback excluded."""
    found: set[str] = set()
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return found
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        for connection in connections:
            if connection.raddr and not ipaddress.ip_address(connection.raddr.ip).is_loopback:
                found.add(f"{connection.raddr.ip}:{connection.raddr.port}")
    return found


def test_no_traffic_out_and_a_killed_engine_fails_liveness(
    vllm_service: str, demo_cache_dir: Path, server_logs: Path
) -> None:
    # After the session's vLLM service: the demo judge is built, and vLLM's compile cache warm.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = server_logs / "engine-death.log"
    process = ServerProcess(service_command(port, "--cache-dir", str(demo_cache_dir)), log)
    outside: set[str] = set()
    watching = threading.Event()

    def watch() -> None:
        root = psutil.Process(process.proc.pid)
        while not watching.is_set():
            outside.update(remote_addresses(root))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        process.wait_until_ok(f"{url}/readyz")
        with httpx.Client(base_url=url, timeout=120) as client:
            assert client.post("/compare", json=CAPITAL_PAIR).status_code == 200
            assert client.post("/batch", json={"items": [CAPITAL_PAIR] * 4}).status_code == 200
        watching.set()
        watcher.join()
        assert outside == set(), f"connections outside loopback: {outside}"

        children = psutil.Process(process.proc.pid).children(recursive=True)
        engines = [p for p in children if "EngineCore" in " ".join(p.cmdline())]  # vLLM names its process so
        assert engines, f"no engine process among {[p.cmdline() for p in children]}"
        log_before = log.stat().st_size
        with httpx.Client(base_url=url, timeout=30) as client:
            batch = threading.Thread(
                target=lambda: client.post("/batch", json={"items": [CAPITAL_PAIR] * 50}), daemon=True
            )
            batch.start()
            time.sleep(0.5)
            for engine in engines:
                engine.kill()
            codes = []
            deadline = time.monotonic() + 30
            while process.proc.poll() is None and time.monotonic() < deadline:
                try:
                    codes.append(client.get("/healthz", timeout=5).status_code)
                except httpx.HTTPError:
                    codes.append(0)  # the process stopped listening: it is exiting
                time.sleep(0.2)
        assert 503 in codes or 0 in codes, codes
        assert process.proc.wait(timeout=60) is not None  # it exited for its supervisor to restart it
        assert log.stat().st_size - log_before < 200_000, "the engine's death filled the log"
        assert "engine died" in log.read_text(errors="replace")
    finally:
        watching.set()
        process.stop()
