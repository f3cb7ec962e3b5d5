"""Pairs judged per second by the real service: one /batch, concurrent /compare calls, and one at a time.

    .venv/bin/python benchmarks/judge_throughput.py --testset ../shared/data/pandalm/testset-v1.json

Starts `pandalm-serve` (by default vLLM with the demo judge on the CPU; pass `-- --model DIR` for a
real one), judges the same pairs in each way, alternating over several rounds so machine noise hits
all of them, and prints medians. Without --testset the pairs are synthetic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

STARTUP_TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_pairs(testset: Path | None, count: int) -> list[dict[str, str]]:
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
    text = lambda v: v if isinstance(v, str) else str(v)  # noqa: E731 - a few responses are JSON booleans
    return [{k: text(item[k]) for k in ("instruction", "input", "response1", "response2")} for item in raw]


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            async with session.get(f"{url}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError("the service did not become ready; see its log")


async def run_batch(session: aiohttp.ClientSession, url: str, pairs: list[dict[str, str]]) -> list[dict[str, Any]]:
    async with session.post(f"{url}/batch", json={"items": pairs}) as response:
        response.raise_for_status()
        return list((await response.json())["results"])


async def run_concurrent(session: aiohttp.ClientSession, url: str, pairs: list[dict[str, str]]) -> list[dict[str, Any]]:
    async def one(pair: dict[str, str]) -> dict[str, Any]:
        async with session.post(f"{url}/compare", json=pair) as response:
            response.raise_for_status()
            return dict(await response.json())

    return list(await asyncio.gather(*(one(p) for p in pairs)))


async def run_sequential(session: aiohttp.ClientSession, url: str, pairs: list[dict[str, str]]) -> list[dict[str, Any]]:
    results = []
    for pair in pairs:
        async with session.post(f"{url}/compare", json=pair) as response:
            response.raise_for_status()
            results.append(dict(await response.json()))
    return results


async def measure(
    url: str, proc: subprocess.Popen[bytes], pairs: list[dict[str, str]], rounds: int, sequential: int
) -> None:
    ways = {
        "one /batch": (run_batch, pairs),
        "concurrent /compare": (run_concurrent, pairs),
        "sequential /compare": (run_sequential, pairs[:sequential]),
    }
    rates: dict[str, list[float]] = {name: [] for name in ways}
    tokens: dict[str, list[int]] = {name: [] for name in ways}
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=256)) as session:
        await wait_ready(session, url, proc)
        async with session.get(f"{url}/info") as response:
            info = await response.json()
        print(f"model {info['model']} (demo: {info['demo']}), engine {info['engine']}")
        print(f"{len(pairs)} pairs, {rounds} rounds")
        await run_batch(session, url, pairs[:8])  # warm-up
        for r in range(rounds):
            for name, (way, subset) in ways.items():
                started = time.perf_counter()
                results = await way(session, url, subset)
                elapsed = time.perf_counter() - started
                assert all(res["status"] != "error" for res in results), results
                rates[name].append(len(subset) / elapsed)
                tokens[name] += [res["usage"]["completion_tokens"] or 0 for res in results]
                print(f"  round {r + 1}: {name:<20} {len(subset) / elapsed:8.1f} pairs/s")
    print("median over rounds:")
    base = statistics.median(rates["sequential /compare"])
    for name in ways:
        rate = statistics.median(rates[name])
        print(
            f"  {name:<20} {rate:8.1f} pairs/s  ({rate / base:5.1f}x sequential)  "
            f"{statistics.mean(tokens[name]):6.1f} generated tokens/pair"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--testset", type=Path, help="PandaLM's testset-v1.json (default: synthetic pairs)")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=20, help="pairs judged one at a time per round")
    parser.add_argument("serve_args", nargs="*", help="extra pandalm-serve flags, after --")
    args = parser.parse_args()

    port = free_port()
    log_fd, log_name = tempfile.mkstemp(prefix="pandalm-bench-", suffix=".log")
    command = [
        sys.executable,
        "-m",
        "pandalm_serve.cli",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *args.serve_args,
    ]
    with os.fdopen(log_fd, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            pairs = load_pairs(args.testset, args.pairs)
            asyncio.run(measure(f"http://127.0.0.1:{port}", proc, pairs, args.rounds, args.sequential))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            print(f"service log: {log_name}")


if __name__ == "__main__":
    main()
