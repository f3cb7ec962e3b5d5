"""What the canary costs callers: /compare latency on the demo judge (vLLM's CPU build), with the builtin canary
judging continuously in the background and without it, and a burst of concurrent pairs both ways.

    .venv/bin/python benchmarks/canary_yield.py [--pairs 20] [--rounds 3]

One service runs with `--canary builtin --canary-interval-s 0.01` (a canary that never rests), the other
without, one after the other (on 2 cores, a canary in another process would slow the first); each judges the
same pairs, one at a time and in bursts (verdict cache off; the demo judge's answer for a pair is the same on
both), and the medians and their ratios are printed. The canary takes a place only while no pair waits and
at most one at a time, so a caller waits for at most the one canary pair the engine is already generating,
which it batches with the caller's.
"""

from __future__ import annotations

import statistics
import time

import httpx
from _service import benchmark_parser, load_pairs, service


def one_by_one(url: str, pairs: list[dict[str, str]]) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, timeout=600) as client:
        for pair in pairs:
            started = time.perf_counter()
            client.post("/compare", json={**pair, "options": {"cache": False}}).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return latencies


def burst(url: str, pairs: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    items = [{**pair, "options": {"cache": False}} for pair in pairs]
    httpx.post(f"{url}/batch", json={"items": items}, timeout=600).raise_for_status()
    return time.perf_counter() - started


def measure(serve_args: list[str], pairs: list[dict[str, str]], size: int) -> tuple[list[float], list[float]]:
    """Latencies of single pairs, and of bursts of `size`, on a service started alone with `serve_args`."""
    single: list[float] = []
    bursts: list[float] = []
    with service(serve_args) as (url, _):
        time.sleep(5)  # a canary is judging by now
        one_by_one(url, pairs[:size])  # warm-up
        for start in range(0, len(pairs), size):
            single += one_by_one(url, pairs[start : start + size])
            bursts.append(burst(url, pairs[start : start + size]))
        runs = [line for line in httpx.get(f"{url}/metrics").text.splitlines() if line.startswith("pandalm_canary_")]
    print("; ".join(line for line in runs if "items" in line) or "no canary")
    return single, bursts


def main() -> None:
    args = benchmark_parser(__doc__).parse_args()
    pairs = load_pairs(args.testset, args.pairs * args.rounds)
    common = ["--cache-backend", "off", "--max-new-tokens", "64"]
    # One service at a time: a canary that never rests in another process would take the CPU from the first.
    without = measure(common, pairs, args.pairs)
    with_ = measure([*common, "--canary", "builtin", "--canary-interval-s", "0.01"], pairs, args.pairs)
    for name, a, b in (
        ("one /compare at a time", without[0], with_[0]),
        (f"a /batch of {args.pairs}", without[1], with_[1]),
    ):
        a_median, b_median = statistics.median(a), statistics.median(b)
        ratio = b_median / a_median
        print(f"{name}: median {a_median:.3f} s without the canary, {b_median:.3f} s with it: ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
