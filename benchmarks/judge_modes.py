"""What verdict-only mode and swap cost: the same batch judged in `full` and `verdict` mode, with and without swap.

    .venv/bin/python benchmarks/judge_modes.py --testset data/pandalm/testset-v1.json

Starts `pandalm-serve` (by default vLLM with the demo judge on the CPU; pass `-- --model DIR` for a
real one), sends the same pairs as one /batch in each of the four configurations, alternating over
several rounds so machine noise hits all of them, and prints the medians of pairs per second and the
mean generated tokens per pair (both orders counted with swap).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from _service import benchmark_parser, client_session, load_pairs, service

CONFIGURATIONS = {
    "full": {"mode": "full", "swap": False},
    "verdict": {"mode": "verdict", "swap": False},
    "full + swap": {"mode": "full", "swap": True},
    "verdict + swap": {"mode": "verdict", "swap": True},
}


async def measure(url: str, pairs: list[dict[str, str]], rounds: int) -> None:
    rates: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    tokens: dict[str, list[int]] = {name: [] for name in CONFIGURATIONS}
    async with client_session() as session:
        print(f"{len(pairs)} pairs")
        for r in range(rounds):
            for name, options in CONFIGURATIONS.items():
                started = time.perf_counter()
                async with session.post(f"{url}/batch", json={"items": pairs, "options": options}) as response:
                    response.raise_for_status()
                    results = (await response.json())["results"]
                elapsed = time.perf_counter() - started
                assert all(res["status"] == "ok" for res in results), [r for r in results if r["status"] != "ok"][:1]
                rates[name].append(len(pairs) / elapsed)
                tokens[name] += [res["usage"]["completion_tokens"] for res in results]
                print(f"  round {r + 1}: {name:<15} {len(pairs) / elapsed:8.1f} pairs/s")
    print("medians over rounds:")
    print(f"  {'configuration':<15} {'pairs/s':>8} {'vs full':>8} {'tokens/pair':>12}")
    base = statistics.median(rates["full"])
    for name in CONFIGURATIONS:
        rate = statistics.median(rates[name])
        print(f"  {name:<15} {rate:8.1f} {rate / base:7.2f}x {statistics.mean(tokens[name]):12.1f}")


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("serve_args", nargs="*", help="extra pandalm-serve flags, after --")
    args = parser.parse_args()
    with service(args.serve_args) as (url, _):
        asyncio.run(measure(url, load_pairs(args.testset, args.pairs), args.rounds))


if __name__ == "__main__":
    main()
