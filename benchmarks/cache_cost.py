"""What the verdict cache costs and saves: the test set's /batch cached against uncached, and one SQLite lookup.

    .venv/bin/python benchmarks/cache_cost.py --testset data/pandalm/testset-v1.json \\
        --outputs pandalm-7b-testset-v1.json

Starts the replay server (PandaLM-7B's recorded outputs; the full file from PandaLM's repository covers all
999 items, the shared 59-item sample only those) and the service's remote engine in front of it, with a
SQLite cache in a temporary folder. Each round clears the cache, sends the whole test set as one /batch
(uncached), then sends it again (every item from the cache), and prints the medians. Then it times
SQLite lookups of present keys directly.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _service import benchmark_parser, load_pairs, replay_server

from pandalm_serve.cache.sqlite import SQLiteCache
from pandalm_serve.tools.processes import ServerProcess, free_port, service_command


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--outputs", type=Path, required=True, help="PandaLM-7B's recorded outputs (JSON)")
    parser.set_defaults(pairs=999, rounds=5)
    args = parser.parse_args()
    pairs = load_pairs(args.testset, args.pairs)
    folder = Path(tempfile.mkdtemp(prefix="pandalm-cache-bench-"))
    service_port = free_port()
    replay_url, replay = replay_server(args.testset, args.outputs, folder / "replay.log")
    service = ServerProcess(
        service_command(service_port, "--engine", "remote", "--remote-url", replay_url,
                        "--remote-prompt-format", "text", "--cache-backend", "sqlite",
                        "--cache-path", str(folder / "verdicts.sqlite"), "--log-level", "warning",
                        "--max-items-in-flight", "1000"),
        folder / "service.log",
        env={"PANDALM_CACHE_BACKEND": "sqlite"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{service_port}"
    try:
        replay.wait_until_ok(f"{replay_url}/v1/models", 60)
        service.wait_until_ok(f"{url}/readyz", 120)
        measure(url, pairs, args.rounds)
    finally:
        service.stop()
        replay.stop()
    asyncio.run(lookups(folder / "lookups.sqlite"))


def measure(url: str, pairs: list[dict[str, str]], rounds: int) -> None:
    times: dict[str, list[float]] = {"uncached": [], "cached": []}
    with httpx.Client(base_url=url, timeout=600) as client:
        for r in range(rounds):
            client.delete("/cache")
            for name in ("uncached", "cached"):
                started = time.perf_counter()
                results = client.post("/batch", json={"items": pairs}).json()["results"]
                times[name].append(time.perf_counter() - started)
                hits = sum(result["cached"] for result in results)
                ok = sum(result["status"] == "ok" for result in results)
                print(f"  round {r + 1}: {name:<8} {times[name][-1]:6.3f} s  ({ok} judged, {hits} from the cache)")
    uncached, cached = statistics.median(times["uncached"]), statistics.median(times["cached"])
    print(f"medians of {rounds} rounds, {len(pairs)} items in one /batch:")
    print(f"  uncached {uncached:.3f} s ({len(pairs) / uncached:.0f} items/s)")
    print(f"  cached   {cached:.3f} s ({len(pairs) / cached:.0f} items/s), {uncached / cached:.2f}x faster")


async def lookups(path: Path, count: int = 20_000) -> None:
    cache = SQLiteCache(path, 1_000_000)
    value = b'{"text": "' + b"x" * 300 + b'"}'
    for i in range(count):
        await cache.put(f"{i:064x}", value)
    started = time.perf_counter()
    for i in range(count):
        assert await cache.get(f"{i:064x}") is not None
    per_lookup = (time.perf_counter() - started) / count
    print(f"SQLite: {per_lookup * 1e6:.0f} microseconds per lookup of a present key ({count} keys)")
    await cache.close()


if __name__ == "__main__":
    main()
