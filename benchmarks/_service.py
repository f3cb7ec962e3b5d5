"""What the service benchmarks share: start `pandalm-serve` on loopback, wait for it, and load pairs."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from pandalm_serve.tools.processes import ServerProcess, free_port, service_command

# The benchmarks run as scripts (`python benchmarks/x.py`); with the project's root on the path they share
# the tests' helpers (tests/servers.py, tests/fakes.py) instead of keeping copies.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def benchmark_parser(doc: str | None) -> argparse.ArgumentParser:
    """The flags every benchmark takes: which pairs, how many, how many rounds."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--testset", type=Path, help="PandaLM's testset-v1.json (default: synthetic pairs)")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    return parser


def client_session() -> aiohttp.ClientSession:
    """A client session that drops idle connections before uvicorn does (after 5 s), so that a
    connection is never reused just as the server closes it."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=3600),
        connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=3),
    )


def load_pairs(testset: Path | None, count: int) -> list[dict[str, str]]:
    """The first `count` pairs of PandaLM's test set, or synthetic pairs without one."""
    if testset is None:
        return [
            {
                "instruction": f"Summarise point {i}.",
                "input": "",
                "response1": f"Point {i} is short.",
                "response2": "No.",
            }
            for i in range(count)
        ]
    raw = json.loads(testset.read_text())[:count]
    # A few published responses are JSON booleans: judge them as text, as the evaluation tool does.
    return [{k: str(item[k]) for k in ("instruction", "input", "response1", "response2")} for item in raw]


def replay_server(testset: Path, outputs: Path, log: Path) -> tuple[str, ServerProcess]:
    """The replay server (PandaLM-7B's recorded outputs for the test set's prompts, answered at once) on a free
    port, started; its URL, ready once `/v1/models` answers."""
    port = free_port()
    process = ServerProcess(
        [sys.executable, "-m", "pandalm_serve.tools.replay", "--testset", str(testset), "--outputs", str(outputs),
         "--port", str(port)],
        log,
    )  # fmt: skip
    return f"http://127.0.0.1:{port}", process


@contextlib.contextmanager
def service(serve_args: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """`pandalm-serve` on a free loopback port, ready; yields its URL and /info. Its log is named at the end."""
    log = Path(tempfile.mkstemp(prefix="pandalm-bench-", suffix=".log")[1])
    port = free_port()
    process = ServerProcess(service_command(port, "--log-level", "warning", *serve_args), log)
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_until_ok(f"{url}/readyz")
        info = httpx.get(f"{url}/info").json()
        print(f"model {info['model']} (demo: {info['demo']}), engine {info['engine']}")
        yield url, info
    finally:
        process.stop()
        print(f"service log: {log}")
