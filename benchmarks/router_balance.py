"""How vLLM's router spreads PandaLM's test set over two replicas, policy by policy, and what it does to affinity.

    .venv/bin/python benchmarks/router_balance.py --testset data/pandalm/testset-v1.json
    .venv/bin/python benchmarks/router_balance.py --testset ... --workers replay --policies round_robin consistent_hash

For each policy: two workers, `vllm-router` over them, and `pandalm-serve --engine remote` pointed at the
router; the whole test set goes in as one /batch (in file order, where the pairs of one instruction are
neighbours, or `--shuffle`d), with the service keeping `--in-flight` pairs in flight (256, its default; 1 is
a client sending one /compare at a time). The service judges each distinct prompt once, so 900 of the 999
pairs reach the router. A recording proxy in front of each worker notes the `X-Session-ID` of every
completion, which the remote engine sets to a hash of the prompt's template, instruction and input, so the
report can say, per policy:

- the share of requests each replica served (balance);
- affinity: of the instruction-and-input groups with two requests or more, the fraction whose requests all
  reached one replica (a group split over both replicas computes its shared prefix twice);
- with `--workers vllm`, vLLM's own prefix-cache hit rate (tokens found in the cache over tokens looked up,
  both replicas), the effect affinity is for, and the pairs per second.

Workers: `vllm` (default) is two vLLM OpenAI servers on the demo judge, one CPU core each, to which the
service sends PandaLM's token ids, as in production; their prefix caches are emptied between policies.
`replay` is two replay servers (instant answers, text prompts): seconds instead of minutes, but
`cache_aware` cannot see prefixes there, since it asks the worker to tokenize text (`/v1/completions/render`,
then `/tokenize`) and a replay server does neither. The figures are in README.md, "Scaling out".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from _service import client_session
from aiohttp import web
from tests.servers import Proxy, proxies

from pandalm_serve.demo import ensure_demo_model
from pandalm_serve.engines.remote import AFFINITY_HEADER
from pandalm_serve.settings import Settings
from pandalm_serve.tools.processes import ServerProcess, free_port

# Router flags shared by every policy: see README "Scaling out" for why each.
ROUTER_COMMON = [
    "--disable-retries",
    "--cb-failure-threshold",
    "3",
    "--health-check-interval-secs",
    "5",
    "--worker-startup-check-interval",
    "1",
]
POLICIES: dict[str, list[str]] = {
    "cache_aware": ["--policy", "cache_aware"],
    "cache_aware_tuned": [
        "--policy",
        "cache_aware",
        "--cache-threshold",
        "0.5",
        "--balance-abs-threshold",
        "8",
        "--balance-rel-threshold",
        "1.1",
    ],
    "consistent_hash": ["--policy", "consistent_hash"],
    "sticky_least_loaded": ["--policy", "sticky_least_loaded"],
    "power_of_two": ["--policy", "power_of_two"],
    "round_robin": ["--policy", "round_robin"],
}


class RecordingProxy(Proxy):
    """Forwards everything to one worker and records the affinity header of each completion request."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.keys: list[str] = []

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.path == "/v1/completions":
            self.keys.append(request.headers.get(AFFINITY_HEADER, ""))
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with self._session.request(
            request.method, f"{self.upstream}{request.path_qs}", data=body, headers=headers
        ) as upstream:
            data = await upstream.read()
            return web.Response(body=data, status=upstream.status, content_type=upstream.content_type)


def started(stack: ExitStack, name: str, args: list[str], ready: str, env: dict[str, str] | None = None) -> str:
    """A server on a free port (given as `--port`), ready, stopped when `stack` closes; returns its URL."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix=f"router-bench-{name}-", suffix=".log")[1])
    process = ServerProcess([*args, "--port", str(port)], log, env)
    stack.callback(process.stop)
    url = f"http://127.0.0.1:{port}"
    process.wait_until_ok(f"{url}{ready}")
    return url


def router_args(workers: list[str], policy: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vllm_router.launch_router",
        "--host",
        "127.0.0.1",
        "--prometheus-port",
        str(free_port()),
        "--worker-urls",
        *workers,
        *ROUTER_COMMON,
        *policy,
    ]


def service_args(router: str, in_flight: int) -> list[str]:
    """The service in remote mode in front of the router, as deploy/scale-out runs it, with a cache of its own.

    The service judges a prompt once however often it repeats (900 distinct prompts among the 999 pairs), so
    900 requests reach the router.
    """
    return [
        sys.executable, "-m", "pandalm_serve.cli", "--host", "127.0.0.1", "--log-level", "warning",
        "--engine", "remote", "--remote-url", router, "--remote-max-connections", "512",
        "--cache-dir", tempfile.mkdtemp(prefix="router-bench-cache-"), "--max-items-in-flight", str(in_flight),
    ]  # fmt: skip


def start_workers(stack: ExitStack, kind: str, testset: Path) -> list[str]:
    if kind == "replay":
        outputs = replay_outputs(testset)
        command = [sys.executable, "-m", "pandalm_serve.tools.replay", "--testset", str(testset)]
        return [started(stack, f"replay{i}", [*command, "--outputs", str(outputs)], "/health") for i in range(2)]
    model = ensure_demo_model(Settings().cache_dir)
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host", "127.0.0.1",
        "--max-model-len", "2048", "--kv-cache-memory-bytes", str(2**30),
        "--logprobs-mode", "processed_logprobs", "--seed", "0",
    ]  # fmt: skip
    # One core each (vLLM's CPU build binds every engine to core 0 otherwise), and the dev endpoints for
    # /reset_prefix_cache. Started one after the other: two at once on two cores take longer than that.
    return [
        started(
            stack, f"vllm{i}", command, "/health", {"VLLM_CPU_OMP_THREADS_BIND": str(i), "VLLM_SERVER_DEV_MODE": "1"}
        )
        for i in range(2)
    ]


def replay_outputs(testset: Path) -> Path:
    """An output for every item: PandaLM-7B's where the shared sample has one, else a fixed tie."""
    sample = testset.parent / "pandalm-7b-outputs-sample.json"
    recorded = {o["idx"]: o for o in json.loads(sample.read_text())} if sample.is_file() else {}
    tie = {"pandalm_result": "Tie", "pandalm_reason": "Both are fine.", "pandalm_reference": "Fine."}
    outputs = [recorded.get(t["idx"], {"idx": t["idx"], **tie}) for t in json.loads(testset.read_text())]
    path = Path(tempfile.mkstemp(prefix="router-bench-outputs-", suffix=".json")[1])
    path.write_text(json.dumps(outputs))
    return path


def prefix_cache(workers: list[str]) -> tuple[float, float]:
    """vLLM's prefix-cache hits and queries (tokens), summed over the workers."""
    hits = queries = 0.0
    for url in workers:
        for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
            if line.startswith("vllm:prefix_cache_hits_total"):
                hits += float(line.split()[-1])
            elif line.startswith("vllm:prefix_cache_queries_total"):
                queries += float(line.split()[-1])
    return hits, queries


async def judge_all(url: str, items: list[dict[str, Any]], options: dict[str, Any]) -> tuple[Counter[str], float]:
    started_at = time.perf_counter()
    body = {"items": items, "options": options}
    async with client_session() as session, session.post(f"{url}/batch", json=body) as response:
        response.raise_for_status()
        results = (await response.json())["results"]
    elapsed = time.perf_counter() - started_at
    return Counter(r["status"] if r["status"] != "error" else r["error"]["code"] for r in results), elapsed


def affinity(per_worker: list[list[str]]) -> tuple[float, int]:
    """The fraction of groups with two requests or more whose requests all reached one worker, and their count."""
    workers_of: dict[str, set[int]] = defaultdict(set)
    size: Counter[str] = Counter()
    for worker, keys in enumerate(per_worker):
        for key in keys:
            workers_of[key].add(worker)
            size[key] += 1
    groups = [key for key, n in size.items() if n >= 2]
    together = sum(1 for key in groups if len(workers_of[key]) == 1)
    return together / len(groups), len(groups)


def measure(args: argparse.Namespace) -> None:
    raw = json.loads(args.testset.read_text())
    items = [{k: str(t.get(k, "")) for k in ("instruction", "input", "response1", "response2")} for t in raw]
    if args.shuffle:
        random.Random(0).shuffle(items)
    options: dict[str, Any] = {"truncate": True} if args.workers == "vllm" else {}
    if args.workers == "vllm":
        options["mode"] = "verdict"  # one generated token: what is measured is the routing and the prefill
    rows = []
    with ExitStack() as stack:
        workers = start_workers(stack, args.workers, args.testset)
        for name in args.policies:
            for round_ in range(args.rounds):
                with proxies(RecordingProxy, workers) as recorders, ExitStack() as run:
                    router = started(
                        run, "router", router_args([p.url for p in recorders], POLICIES[name]), "/readiness"
                    )
                    service = started(run, "service", service_args(router, args.in_flight), "/readyz")
                    info = httpx.get(f"{service}/info").json()
                    if args.workers == "vllm":
                        for url in workers:
                            httpx.post(f"{url}/reset_prefix_cache", timeout=30).raise_for_status()
                    before = prefix_cache(workers) if args.workers == "vllm" else (0.0, 0.0)
                    statuses, elapsed = asyncio.run(judge_all(service, items, options))
                    after = prefix_cache(workers) if args.workers == "vllm" else (0.0, 0.0)
                    per_worker = [list(p.keys) for p in recorders]
                total = sum(len(k) for k in per_worker)
                shares = [len(k) / total for k in per_worker]
                together, groups = affinity(per_worker)
                queried = after[1] - before[1]
                hit_rate = (after[0] - before[0]) / queried if queried else float("nan")
                rows.append((name, shares, together, hit_rate, len(items) / elapsed))
                print(
                    f"{name:<18} round {round_ + 1}: {info['prompt_format']} prompts, {total} requests, "
                    f"shares {' / '.join(f'{s:.1%}' for s in shares)}, {groups} groups together {together:.1%}, "
                    f"prefix-cache hits {hit_rate:.1%}, {len(items) / elapsed:.1f} pairs/s, {dict(statuses)}",
                    flush=True,
                )
    order = "shuffled" if args.shuffle else "file order"
    print(f"\nmedians over {args.rounds} round(s), {args.workers} workers, {order}, {args.in_flight} in flight:")
    print("| policy | busier replica's share (worst) | groups on one replica | prefix-cache hits | pairs/s |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.policies:
        mine = [r for r in rows if r[0] == name]
        busier = [max(r[1]) for r in mine]
        together = statistics.median(r[2] for r in mine)
        hits = statistics.median(r[3] for r in mine)
        rate = statistics.median(r[4] for r in mine)
        worst = f" ({max(busier):.0%})" if len(mine) > 1 else ""
        cached = "-" if math.isnan(hits) else f"{hits:.1%}"
        print(f"| `{name}` | {statistics.median(busier):.0%}{worst} | {together:.0%} | {cached} | {rate:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--testset", type=Path, required=True, help="PandaLM's testset-v1.json")
    parser.add_argument("--workers", choices=["vllm", "replay"], default="vllm")
    parser.add_argument("--policies", nargs="+", choices=list(POLICIES), default=list(POLICIES))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--shuffle", action="store_true", help="send the pairs in a seeded random order")
    parser.add_argument(
        "--in-flight", type=int, default=256, help="the service's --max-items-in-flight: requests at once at most"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    measure(args)


if __name__ == "__main__":
    main()
