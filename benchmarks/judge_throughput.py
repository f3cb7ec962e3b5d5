"""Pairs judged per second by the real service: one /batch, concurrent /compare calls, and one at a time.

    .venv/bin/python benchmarks/judge_throughput.py --testset data/pandalm/testset-v1.json

Starts `pandalm-serve` (by default vLLM with the demo judge on the CPU; pass `-- --model DIR` for a
real one), judges the same pairs in each way, alternating over several rounds so machine noise hits
all of them, and prints medians. Without --testset the pairs are synthetic.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
from _service import benchmark_parser, client_session, load_pairs, service


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


async def measure(url: str, pairs: list[dict[str, str]], rounds: int, sequential: int) -> None:
    ways = {
        "one /batch": (run_batch, pairs),
        "concurrent /compare": (run_concurrent, pairs),
        "sequential /compare": (run_sequential, pairs[:sequential]),
    }
    rates: dict[str, list[float]] = {name: [] for name in ways}
    tokens: dict[str, list[int]] = {name: [] for name in ways}
    async with client_session() as session:
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
    parser = benchmark_parser(__doc__)
    parser.add_argument("--sequential", type=int, default=20, help="pairs judged one at a time per round")
    parser.add_argument("serve_args", nargs="*", help="extra pandalm-serve flags, after --")
    args = parser.parse_args()

    with service(args.serve_args) as (url, _):
        pairs = load_pairs(args.testset, args.pairs)
        asyncio.run(measure(url, pairs, args.rounds, args.sequential))


if __name__ == "__main__":
    main()
