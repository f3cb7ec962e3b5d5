"""Benchmark httpx.AsyncClient vs aiohttp.ClientSession for the remote engine.

What it measures
----------------
The remote judge engine POSTs PandaLM-style prompts to an OpenAI-compatible
``/v1/completions`` endpoint. encode/httpx issue 3215 reports that
``httpx.AsyncClient`` is much slower than ``aiohttp`` under many concurrent
requests. This script measures both clients side by side in one run:

* a minimal fake OpenAI-compatible server (aiohttp.web) is started in a
  separate process on 127.0.0.1 (free port chosen by the OS); it reads the JSON
  body of ``POST /v1/completions`` and answers a fixed small completion JSON;
* for each client (httpx with ``Limits(max_connections=64)``, aiohttp with
  ``TCPConnector(limit=64)``) it sends ``--requests`` POSTs of a ~2 KB JSON
  prompt with ``--concurrency`` requests in flight (fixed pool of worker
  tasks), parsing every JSON answer;
* clients alternate over ``--rounds`` rounds (httpx, aiohttp, httpx, ...) so
  machine noise hits both; per client it prints the median requests/second and
  the median p50/p99 latency across rounds, and the ratio aiohttp/httpx of the
  median throughput.

How to run
----------
    .venv/bin/python benchmarks/remote_http_client.py
    .venv/bin/python benchmarks/remote_http_client.py --requests 2000 --concurrency 16 --rounds 5

The server process is terminated at the end, also on error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

HOST = "127.0.0.1"
PATH = "/v1/completions"
REQUEST_TIMEOUT_S = 30.0
ROUND_TIMEOUT_S = 120.0
SERVER_START_TIMEOUT_S = 15.0

COMPLETION_RESPONSE: dict = {
    "id": "x",
    "object": "text_completion",
    "model": "m",
    "choices": [
        {
            "index": 0,
            "text": "1\n\n### Reason: r\n\n### Reference: x\n",
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 300, "completion_tokens": 20, "total_tokens": 320},
}


# --------------------------------------------------------------------------
# Fake server (runs in a child process: `python this_file.py --serve`)
# --------------------------------------------------------------------------
def run_server() -> None:
    """Serve the fake endpoint on a free 127.0.0.1 port; print the port."""
    from aiohttp import web

    body = json.dumps(COMPLETION_RESPONSE).encode()

    async def completions(request: web.Request) -> web.Response:
        await request.json()
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post(PATH, completions)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        sock.listen(1024)
        site = web.SockSite(runner, sock, backlog=1024)
        await site.start()
        print(sock.getsockname()[1], flush=True)
        await asyncio.Event().wait()  # run until terminated by the parent

    asyncio.run(main())


def start_server() -> tuple[subprocess.Popen[str], str]:
    """Start the server process, wait until it answers, return (proc, url)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the port is printed (or EOF)
        if not line.strip().isdigit():
            raise RuntimeError(f"server did not report a port (got {line!r})")
        url = f"http://{HOST}:{int(line)}{PATH}"
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                req = urllib.request.Request(
                    url,
                    data=b'{"prompt": "ping"}',
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(req, timeout=2) as resp:
                    json.loads(resp.read())
                break
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("fake server did not become ready") from exc
                time.sleep(0.05)
        return proc, url
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --------------------------------------------------------------------------
# Load generation
# --------------------------------------------------------------------------
def make_payload() -> dict:
    """A ~2 KB PandaLM-style completion request."""
    instruction = "Summarize the following text about renewable energy sources. " * 8
    resp1 = "Renewable energy comes from sources that are naturally replenished. " * 8
    resp2 = "Solar and wind power are the most common renewable energy sources. " * 8
    prompt = (
        "Below are two responses for a given task. The task is defined by the "
        "Instruction. Evaluate the responses and generate a reference answer "
        "for the task.\n\n"
        f"### Instruction:\n{instruction}\n\n"
        f"### Response 1:\n{resp1}\n\n"
        f"### Response 2:\n{resp2}\n\n"
        "### Evaluation:\n"
    )
    return {
        "model": "WeOpenML/PandaLM-7B-v1",
        "prompt": prompt,
        "max_tokens": 512,
        "temperature": 0.0,
        "stop": ["</s>"],
    }


@dataclass
class RoundResult:
    rps: float
    p50_ms: float
    p99_ms: float


SendFn = Callable[[], Awaitable[None]]


async def drive(send: SendFn, n_requests: int, concurrency: int) -> RoundResult:
    """Run n_requests calls of `send` with `concurrency` worker tasks."""
    latencies: list[float] = []
    counter = iter(range(n_requests))  # shared, bounded work queue

    async def worker() -> None:
        for _ in counter:
            t0 = time.perf_counter()
            await send()
            latencies.append(time.perf_counter() - t0)

    t_start = time.perf_counter()
    await asyncio.wait_for(
        asyncio.gather(*(worker() for _ in range(min(concurrency, n_requests)))),
        timeout=ROUND_TIMEOUT_S,
    )
    elapsed = time.perf_counter() - t_start
    if len(latencies) != n_requests:
        raise RuntimeError(f"expected {n_requests} results, got {len(latencies)}")
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return RoundResult(rps=n_requests / elapsed, p50_ms=q[49] * 1e3, p99_ms=q[98] * 1e3)


def check(data: dict) -> None:
    if not data["choices"][0]["text"]:
        raise RuntimeError("unexpected completion body")


async def round_httpx(url: str, payload: dict, n: int, c: int) -> RoundResult:
    import httpx

    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=64),
        timeout=httpx.Timeout(REQUEST_TIMEOUT_S, pool=None),
    ) as client:

        async def send() -> None:
            r = await client.post(url, json=payload)
            r.raise_for_status()
            check(r.json())

        return await drive(send, n, c)


async def round_aiohttp(url: str, payload: dict, n: int, c: int) -> RoundResult:
    import aiohttp

    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64),
        timeout=aiohttp.ClientTimeout(sock_connect=REQUEST_TIMEOUT_S, sock_read=REQUEST_TIMEOUT_S),
    ) as session:

        async def send() -> None:
            async with session.post(url, json=payload) as r:
                r.raise_for_status()
                check(await r.json())

        return await drive(send, n, c)


CLIENTS: dict[str, Callable[[str, dict, int, int], Awaitable[RoundResult]]] = {
    "httpx": round_httpx,
    "aiohttp": round_aiohttp,
}


async def benchmark(url: str, n: int, c: int, rounds: int) -> dict[str, list[RoundResult]]:
    payload = make_payload()
    results: dict[str, list[RoundResult]] = {name: [] for name in CLIENTS}
    # Warm-up (imports, first connections), not recorded.
    for fn in CLIENTS.values():
        await fn(url, payload, min(200, n), min(c, 32))
    for r in range(rounds):
        for name, fn in CLIENTS.items():
            res = await fn(url, payload, n, c)
            results[name].append(res)
            print(
                f"  round {r + 1}/{rounds} {name:8s} {res.rps:9.1f} req/s  "
                f"p50 {res.p50_ms:8.2f} ms  p99 {res.p99_ms:8.2f} ms",
                flush=True,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per client per round")
    parser.add_argument("--concurrency", type=int, default=256, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per client")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        run_server()
        return
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--requests, --concurrency and --rounds must be >= 1")

    proc, url = start_server()
    try:
        size = len(json.dumps(make_payload()))
        print(
            f"server {url} | requests={args.requests} concurrency={args.concurrency} "
            f"rounds={args.rounds} body={size} B | pool limit 64 | python {sys.version.split()[0]}"
        )
        results = asyncio.run(benchmark(url, args.requests, args.concurrency, args.rounds))
    finally:
        stop_server(proc)

    print("\nmedian over rounds:")
    medians: dict[str, float] = {}
    for name, rs in results.items():
        medians[name] = statistics.median(r.rps for r in rs)
        print(
            f"  {name:8s} {medians[name]:9.1f} req/s  "
            f"p50 {statistics.median(r.p50_ms for r in rs):8.2f} ms  "
            f"p99 {statistics.median(r.p99_ms for r in rs):8.2f} ms"
        )
    print(f"\nratio aiohttp/httpx (median req/s): {medians['aiohttp'] / medians['httpx']:.2f}x")


if __name__ == "__main__":
    main()
