"""What the remote engine adds in front of a server that answers at once: the test set's /batch through the
service, against a plain aiohttp client sending the same prompts straight to that server, 64 at a time.

    .venv/bin/python benchmarks/remote_overhead.py --testset data/pandalm/testset-v1.json \\
        --outputs pandalm-7b-testset-v1.json

The server is the replay server (PandaLM-7B's recorded outputs, keyed by prompt text), so the remote engine
sends text. The two sides alternate over rounds, on the 999 items and on their 900 distinct pairs (the service
judges a repeated pair once; a plain client sends it again); the medians and their ratios are printed.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from _service import benchmark_parser, client_session, load_pairs, replay_server

from pandalm_serve.judge.prompt import build_prompt
from pandalm_serve.tools.processes import ServerProcess, free_port, service_command


async def through_service(url: str, pairs: list[dict[str, str]]) -> float:
    async with client_session() as session:
        started = time.perf_counter()
        async with session.post(f"{url}/batch", json={"items": pairs}) as response:
            results = (await response.json())["results"]
        elapsed = time.perf_counter() - started
    assert all(r["status"] == "ok" for r in results), [r["error"] for r in results if r["error"]][:2]
    return elapsed


async def straight(url: str, prompts: list[str], concurrency: int = 64) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, prompt: str) -> None:
        body = {"model": "pandalm-7b-replay", "prompt": prompt, "max_tokens": 512, "temperature": 0.0,
                "repetition_penalty": 1.2, "logprobs": 5}  # fmt: skip
        async with semaphore, session.post(f"{url}/v1/completions", json=body) as response:
            assert response.status == 200
            await response.json()

    async with client_session() as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, p) for p in prompts))
        return time.perf_counter() - started


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--outputs", type=Path, required=True, help="PandaLM-7B's recorded outputs (JSON)")
    parser.set_defaults(pairs=999, rounds=5)
    args = parser.parse_args()
    pairs = load_pairs(args.testset, args.pairs)
    prompts = [build_prompt(p["instruction"], p["input"], p["response1"], p["response2"]) for p in pairs]
    logs = Path(tempfile.mkdtemp(prefix="pandalm-remote-overhead-"))
    service_port = free_port()
    replay_url, replay = replay_server(args.testset, args.outputs, logs / "replay.log")
    service = ServerProcess(
        service_command(service_port, "--engine", "remote", "--remote-url", replay_url, "--remote-prompt-format",
                        "text", "--cache-backend", "off", "--log-level", "warning", "--max-items-in-flight", "64"),
        logs / "service.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{service_port}"
    # The service judges a repeated pair once, which a plain client does not: also measured on the distinct
    # pairs alone, where both sides send the same requests.
    seen: dict[str, dict[str, str]] = {}
    for pair, prompt in zip(pairs, prompts, strict=True):
        seen.setdefault(prompt, pair)
    sets = {"all": (pairs, prompts), "distinct": (list(seen.values()), list(seen))}
    times: dict[str, list[float]] = {f"{side} {name}": [] for name in sets for side in ("service", "straight")}
    try:
        replay.wait_until_ok(f"{replay_url}/v1/models", 60)
        service.wait_until_ok(f"{url}/readyz", 120)
        asyncio.run(through_service(url, pairs[:64]))
        for r in range(args.rounds):
            for name, (items, texts) in sets.items():
                times[f"service {name}"].append(asyncio.run(through_service(url, items)))
                times[f"straight {name}"].append(asyncio.run(straight(replay_url, texts)))
            print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))
    finally:
        service.stop()
        replay.stop()
    for name, (items, _) in sets.items():
        service_s = statistics.median(times[f"service {name}"])
        straight_s = statistics.median(times[f"straight {name}"])
        print(f"{name} ({len(items)} items), medians of {args.rounds} rounds: through the service {service_s:.3f} s, "
              f"straight {straight_s:.3f} s: {service_s / straight_s:.2f}x (target <= 1.5x)")  # fmt: skip


if __name__ == "__main__":
    main()
