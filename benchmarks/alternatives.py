"""This service side by side with what a user could run instead, on the same model, prompts and decoding.

    .venv/bin/python benchmarks/alternatives.py --testset ../shared/data/pandalm/testset-v1.json

  (a) service   this service's /batch, vLLM in process
  (b) vllm      vLLM's own OpenAI server, a plain async client sending the same token-id prompts
                concurrently and parsing nothing
  (c) hf        PandaLM's reference approach: the model in Hugging Face transformers, one prompt at a time
                (greedy; and once with its own 4-beam settings, on fewer pairs)
  (d) remote    this service's remote engine in front of (b)'s server

Every side decodes greedily with repetition penalty 1.2 and generates exactly --new-tokens tokens, past
the end of sequence, so every side does the same work. The model is the demo judge's weights without its
output constraint (a tiny LLaMA) unless --model names another; on a GPU host pass PandaLM-7B. The sides
run in interleaved rounds (all servers up at once, one side measured at a time); the medians are printed
and written as JSON and Markdown (--out).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
from _service import benchmark_parser, client_session, load_pairs

from pandalm_serve.demo import MARKER_FILE, ensure_demo_model
from pandalm_serve.judge.prompt import build_prompt
from pandalm_serve.judge.tokens import PromptEncoder
from pandalm_serve.tools.processes import ServerProcess, free_port, service_command


@dataclass
class Round:
    seconds: float
    latencies: list[float]
    prompt_tokens: int
    generated_tokens: int
    pairs: int


@dataclass
class Side:
    name: str
    rounds: list[Round] = field(default_factory=list)
    peak_rss: int = 0

    def summary(self) -> dict[str, float]:
        rates = [r.pairs / r.seconds for r in self.rounds]
        latencies = sorted(x for r in self.rounds for x in r.latencies)
        best = self.rounds[rates.index(statistics.median(rates))] if len(rates) % 2 else self.rounds[0]
        return {
            "pairs_per_s": statistics.median(rates),
            "prompt_tokens_per_s": statistics.median(r.prompt_tokens / r.seconds for r in self.rounds),
            "generated_tokens_per_s": statistics.median(r.generated_tokens / r.seconds for r in self.rounds),
            "p50_latency_s": latencies[len(latencies) // 2],
            "p99_latency_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "peak_memory_gib": self.peak_rss / 2**30,
            "pairs": best.pairs,
        }


class MemoryWatch:
    """The peak resident memory of a process tree, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                root = psutil.Process(self.pid)
                rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            self.peak = max(self.peak, rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def plain_model(model: Path | None, cache_dir: Path) -> Path:
    """The model every side loads: --model, or the demo judge's files without its output constraint."""
    if model is not None:
        return model
    folder = cache_dir / "tiny-llama-unconstrained"
    if not folder.exists():
        shutil.copytree(ensure_demo_model(cache_dir), folder)
        (folder / MARKER_FILE).unlink()
    return folder


async def run_service(url: str, pairs: list[dict[str, str]]) -> Round:
    async with client_session() as session:
        started = time.perf_counter()
        async with session.post(f"{url}/batch", json={"items": pairs}) as response:
            body = await response.json()
        seconds = time.perf_counter() - started
    results = body["results"]
    assert all(r["status"] != "error" for r in results), [r["error"] for r in results if r["error"]][:2]
    return Round(
        seconds,
        [r["latency_ms"] / 1000 for r in results],
        sum(r["usage"]["prompt_tokens"] or 0 for r in results),
        sum(r["usage"]["completion_tokens"] or 0 for r in results),
        len(results),
    )


async def run_vllm(url: str, model: str, prompts: list[list[int]], new_tokens: int) -> Round:
    latencies: list[float] = []
    generated = 0

    async def one(session: aiohttp.ClientSession, ids: list[int]) -> None:
        nonlocal generated
        body = {"model": model, "prompt": ids, "max_tokens": new_tokens, "temperature": 0.0,
                "repetition_penalty": 1.2, "ignore_eos": True}  # fmt: skip
        started = time.perf_counter()
        async with session.post(f"{url}/v1/completions", json=body) as response:
            data = await response.json()
        latencies.append(time.perf_counter() - started)
        generated += data["usage"]["completion_tokens"]

    async with client_session() as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, ids) for ids in prompts))
        seconds = time.perf_counter() - started
    return Round(seconds, latencies, sum(map(len, prompts)), generated, len(prompts))


def run_hf(model: Any, prompts: list[list[int]], new_tokens: int, beams: int) -> Round:
    import torch

    latencies: list[float] = []
    generated = 0
    started = time.perf_counter()
    for ids in prompts:
        one = time.perf_counter()
        with torch.no_grad():
            output = model.generate(
                torch.tensor([ids]),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,  # past the end of sequence, as the other sides
                do_sample=False,
                num_beams=beams,
                early_stopping=beams > 1,
                repetition_penalty=1.2,
            )
        generated += output.shape[1] - len(ids)
        latencies.append(time.perf_counter() - one)
    return Round(time.perf_counter() - started, latencies, sum(map(len, prompts)), generated, len(prompts))


def measure_side(side: Side, pid: int | None, work: Callable[[], Round]) -> None:
    watch = MemoryWatch(pid if pid is not None else os.getpid())
    side.rounds.append(work())
    side.peak_rss = max(side.peak_rss, watch.stop())
    last = side.rounds[-1]
    print(f"    {side.name:<8} {last.pairs / last.seconds:8.1f} pairs/s  ({last.pairs} pairs, {last.seconds:.1f} s)")


def markdown(summaries: dict[str, dict[str, float]], ratios: dict[str, float], meta: dict[str, Any]) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine']}; model {meta['model']}; {meta['new_tokens']} new tokens per "
        f"pair, greedy, repetition penalty 1.2; medians of {meta['rounds']} interleaved rounds.",
        "",
        "| side | pairs | pairs/s | prompt tok/s | generated tok/s | p50 latency | p99 latency | peak memory |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | {s['pairs']:.0f} | {s['pairs_per_s']:.1f} | {s['prompt_tokens_per_s']:.0f} | "
            f"{s['generated_tokens_per_s']:.0f} | {s['p50_latency_s']:.3f} s | {s['p99_latency_s']:.3f} s | "
            f"{s['peak_memory_gib']:.1f} GiB |"
        )
    lines += ["", "| ratio | value | target |", "| --- | --- | --- |"]
    targets = {"(a)/(b) service / vllm": ">= 0.95", "(d)/(b) remote / vllm": ">= 0.90", "(a)/(c) service / hf": ">= 10"}
    for name, value in ratios.items():
        lines.append(f"| {name} | {value:.2f} | {targets.get(name, '')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.set_defaults(pairs=999, rounds=5)
    parser.add_argument("--model", type=Path, help="a model folder (default: the demo judge without its constraint)")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--hf-pairs", type=int, default=60, help="pairs for (c) per round (it is slow)")
    parser.add_argument("--beam-pairs", type=int, default=10, help="pairs for (c) with 4 beams, once")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "pandalm-serve")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    model = plain_model(args.model, args.cache_dir)
    pairs = load_pairs(args.testset, args.pairs)
    from transformers import AutoTokenizer

    encoder = PromptEncoder(AutoTokenizer.from_pretrained(model), "</s>")
    prompts = [
        encoder.encode(build_prompt(p["instruction"], p["input"], p["response1"], p["response2"])) for p in pairs
    ]
    logs = Path(tempfile.mkdtemp(prefix="pandalm-alternatives-"))
    common = ["--model", str(model), "--max-new-tokens", str(args.new_tokens), "--ignore-eos", "--log-level", "warning",
              "--cache-backend", "off", "--max-batch-items", "5000", "--max-items-in-flight", "5000"]  # fmt: skip
    service_port, vllm_port, remote_port = free_port(), free_port(), free_port()
    # One core each for the two engines: vLLM's CPU build would bind both to the first one.
    service = ServerProcess(
        service_command(service_port, *common), logs / "service.log", {"VLLM_CPU_OMP_THREADS_BIND": "0"}
    )
    vllm = ServerProcess(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(vllm_port), "--max-model-len", "2048", "--kv-cache-memory-bytes", str(2**30),
         "--logprobs-mode", "processed_logprobs", "--seed", "0", "--disable-log-stats"],
        logs / "vllm.log",
        {"VLLM_CPU_OMP_THREADS_BIND": "1"},
    )  # fmt: skip
    remote = None
    sides = {name: Side(name) for name in ("service", "vllm", "remote", "hf")}
    try:
        service.wait_until_ok(f"http://127.0.0.1:{service_port}/readyz")
        vllm.wait_until_ok(f"http://127.0.0.1:{vllm_port}/health")
        remote = ServerProcess(
            service_command(
                remote_port, *common, "--engine", "remote", "--remote-url", f"http://127.0.0.1:{vllm_port}"
            ),
            logs / "remote.log",
        )
        remote.wait_until_ok(f"http://127.0.0.1:{remote_port}/readyz")
        info = httpx.get(f"http://127.0.0.1:{remote_port}/info").json()
        assert info["prompt_format"] == "token_ids", "the remote side must send token ids, as the others"
        from transformers import AutoModelForCausalLM

        hf_model = AutoModelForCausalLM.from_pretrained(model).eval()
        service_url, vllm_url, remote_url = (f"http://127.0.0.1:{p}" for p in (service_port, vllm_port, remote_port))
        warm = pairs[:16]
        asyncio.run(run_service(service_url, warm))
        asyncio.run(run_service(remote_url, warm))
        asyncio.run(run_vllm(vllm_url, str(model), prompts[:16], args.new_tokens))
        for r in range(args.rounds):
            print(f"  round {r + 1}:")
            measure_side(sides["service"], service.proc.pid, lambda: asyncio.run(run_service(service_url, pairs)))
            measure_side(
                sides["vllm"],
                vllm.proc.pid,
                lambda: asyncio.run(run_vllm(vllm_url, str(model), prompts, args.new_tokens)),
            )
            measure_side(sides["remote"], remote.proc.pid, lambda: asyncio.run(run_service(remote_url, pairs)))
            measure_side(sides["hf"], None, lambda: run_hf(hf_model, prompts[: args.hf_pairs], args.new_tokens, 1))
        beam = Side("hf 4-beam")
        measure_side(beam, None, lambda: run_hf(hf_model, prompts[: args.beam_pairs], args.new_tokens, 4))
    finally:
        for process in (remote, vllm, service):
            if process is not None:
                process.stop()
    summaries = {name: side.summary() for name, side in sides.items()}
    summaries["hf 4-beam"] = beam.summary()
    rate = {name: s["pairs_per_s"] for name, s in summaries.items()}
    ratios = {
        "(a)/(b) service / vllm": rate["service"] / rate["vllm"],
        "(d)/(b) remote / vllm": rate["remote"] / rate["vllm"],
        "(a)/(c) service / hf": rate["service"] / rate["hf"],
        "(a)/(c') service / hf 4-beam": rate["service"] / rate["hf 4-beam"],
    }
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, no GPU"
        if args.model is None
        else f"{os.cpu_count()} cores",
        "model": "demo judge weights, unconstrained" if args.model is None else str(args.model),
        "new_tokens": args.new_tokens,
        "rounds": args.rounds,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "alternatives.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "sides": summaries,
                "ratios": ratios,
                "rounds": {
                    n: [asdict(r) | {"latencies": len(r.latencies)} for r in s.rounds] for n, s in sides.items()
                },
            },
            indent=2,
        )
        + "\n"
    )
    table = markdown(summaries, ratios, meta)
    (args.out / "alternatives.md").write_text(table)
    print(table)
    print(f"logs: {logs}")


if __name__ == "__main__":
    main()
