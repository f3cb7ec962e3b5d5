"""What the service itself costs: the real HTTP stack in front of an engine that answers at once.

    .venv/bin/python benchmarks/service_overhead.py --testset data/pandalm/testset-v1.json

Starts the service (uvicorn, one process, as deployed) with the tests' fake engine (it returns PandaLM's
output with label log-probabilities, at once), then measures, alternating over rounds: items per second through
one /batch of the test set, /compare requests per second from concurrent clients, and the latency of one
/compare alone (what the service adds to each request). Prints medians, and writes them as JSON with
--json.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from _service import benchmark_parser, client_session, load_pairs

from pandalm_serve.tools.processes import ServerProcess, free_port


def serve(port: int) -> None:
    """The service, as deployed, in front of the tests' fake engine answering at once (this process's job
    with `--serve PORT`)."""
    import uvicorn
    from tests.fakes import FakeEngine

    from pandalm_serve.app import create_app
    from pandalm_serve.settings import Settings

    settings = Settings(cache_backend="off", max_batch_items=5000, max_items_in_flight=5000, port=port)
    uvicorn.run(create_app(settings, engine=FakeEngine()), host="127.0.0.1", port=port, log_level="warning")


async def batch_rate(session: aiohttp.ClientSession, url: str, pairs: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    async with session.post(f"{url}/batch", json={"items": pairs}) as response:
        body = await response.json()
    assert all(r["status"] == "ok" for r in body["results"])
    return len(pairs) / (time.perf_counter() - started)


async def compare_rate(session: aiohttp.ClientSession, url: str, pairs: list[dict[str, str]], clients: int) -> float:
    queue = list(pairs)

    async def client() -> None:
        while queue:
            pair = queue.pop()
            async with session.post(f"{url}/compare", json=pair) as response:
                assert response.status == 200, await response.text()
                await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return len(pairs) / (time.perf_counter() - started)


async def single_latency(session: aiohttp.ClientSession, url: str, pair: dict[str, str], count: int = 200) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.post(f"{url}/compare", json=pair) as response:
            await response.read()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def measure(url: str, pairs: list[dict[str, str]], rounds: int, clients: int) -> dict[str, Any]:
    results: dict[str, list[float]] = {"batch_items_per_s": [], "compare_requests_per_s": [], "compare_alone_ms": []}
    async with client_session() as session:
        await batch_rate(session, url, pairs[:50])  # warm-up
        for r in range(rounds):
            results["batch_items_per_s"].append(await batch_rate(session, url, pairs))
            results["compare_requests_per_s"].append(await compare_rate(session, url, pairs, clients))
            results["compare_alone_ms"].append(await single_latency(session, url, pairs[0]))
            print(
                f"  round {r + 1}: /batch {results['batch_items_per_s'][-1]:7.0f} items/s, "
                f"/compare {results['compare_requests_per_s'][-1]:6.0f} req/s ({clients} clients), "
                f"one /compare alone {results['compare_alone_ms'][-1]:.2f} ms"
            )
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
        return
    parser = benchmark_parser(__doc__)
    parser.set_defaults(pairs=999, rounds=5)
    parser.add_argument("--clients", type=int, default=32, help="concurrent /compare clients")
    parser.add_argument("--json", type=Path, help="write the medians here")
    args = parser.parse_args()
    pairs = load_pairs(args.testset, args.pairs)
    port = free_port()
    log = Path("/tmp") / f"pandalm-overhead-{port}.log"
    server = ServerProcess([sys.executable, __file__, "--serve", str(port)], log)
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_until_ok(f"{url}/readyz", 60)
        medians = asyncio.run(measure(url, pairs, args.rounds, args.clients))
    finally:
        server.stop()
    print(f"medians of {args.rounds} rounds, {len(pairs)} pairs:")
    for name, value in medians.items():
        print(f"  {name:<24} {value:10.2f}")
    if args.json:
        args.json.write_text(json.dumps({"pairs": len(pairs), "rounds": args.rounds, **medians}, indent=2) + "\n")


if __name__ == "__main__":
    main()
