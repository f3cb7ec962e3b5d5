"""This service side by side with what a user could run instead, on the same model, prompts and decoding.

    .venv/bin/python benchmarks/alternatives.py --testset data/pandalm/testset-v1.json

  (a) service   this service's /batch, vLLM in process
  (b) vllm      vLLM's own OpenAI server, a plain async client sending the same token-id prompts
                concurrently and parsing nothing
  (c) hf        PandaLM's reference approach: the model in Hugging Face transformers, one prompt at a time
                (greedy; and once with its own 4-beam settings, on fewer pairs)
  (d) remote    this service's remote engine in front of (b)'s server
  (b') vllm+labels  (b) asking also for the label tokens' log-probabilities, as (a) and (d) do: what the
                label probabilities cost the engine and the server, apart from the service

Every side decodes greedily with repetition penalty 1.2 and generates exactly --new-tokens tokens, past
the end of sequence, so every side does the same work; and every side gets the test set's distinct pairs
(900 of the 999: the service judges a repeated pair once, which a plain client would not). The model is the
demo judge's weights without its output constraint (a tiny LLaMA) unless --model names another; on a GPU
host pass PandaLM-7B: each vLLM then takes --gpu-memory-utilization of the GPU, and the reference its own
copy of the weights in their saved dtype (an 80 GB GPU). On a CPU each engine gets one core of its own
(vLLM's CPU build), and torch one thread for (c), its fastest setting here. The sides run in interleaved
rounds (all servers up at once, one side measured at a time) after a warm-up round that is not counted;
each ratio is the median of the per-round ratios, and everything is written as JSON and Markdown (--out).
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
from pandalm_serve.judge.labels import token_labels
from pandalm_serve.judge.prompt import build_prompt
from pandalm_serve.judge.tokens import PromptEncoder
from pandalm_serve.model import on_cuda
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

    def __init__(self, pid: int, children: bool) -> None:
        self.pid = pid
        self.children = children
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            try:
                root = psutil.Process(self.pid)
                tree = [root, *root.children(recursive=True)] if self.children else [root]
                rss = sum(p.memory_info().rss for p in tree)
            except psutil.Error:
                continue
            self.peak = max(self.peak, rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


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


async def run_vllm(
    url: str, model: str, prompts: list[list[int]], new_tokens: int, label_ids: list[int] | None = None
) -> Round:
    """(b): vLLM's server, nothing parsed; with `label_ids`, (b'): also the labels' log-probabilities by id, as
    the service asks for them (the engine computes them at every position, and the server writes them out)."""
    latencies: list[float] = []
    generated = 0
    labels: dict[str, Any] = {}
    if label_ids:
        labels = {"logprobs": len(label_ids), "logprob_token_ids": label_ids, "return_tokens_as_token_ids": True}

    async def one(session: aiohttp.ClientSession, ids: list[int]) -> None:
        nonlocal generated
        body = {"model": model, "prompt": ids, "max_tokens": new_tokens, "temperature": 0.0,
                "repetition_penalty": 1.2, "ignore_eos": True, **labels}  # fmt: skip
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

    # One core, as each engine has; also the reference's fastest setting here (10 pairs/s against 8 with two).
    torch.set_num_threads(1)
    latencies: list[float] = []
    generated = 0
    started = time.perf_counter()
    for ids in prompts:
        one = time.perf_counter()
        with torch.no_grad():
            output = model.generate(
                torch.tensor([ids], device=model.device),
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


def paired_ratio(side: Side, other: Side) -> float:
    """The median over rounds of one side's rate over the other's in the same round: noise that hits a round
    hits both."""
    return statistics.median(
        (a.pairs / a.seconds) / (b.pairs / b.seconds) for a, b in zip(side.rounds, other.rounds, strict=True)
    )


def measure_side(side: Side, pid: int | None, work: Callable[[], Round]) -> None:
    # A server with its engine processes; or this process alone, whose children are the servers.
    watch = MemoryWatch(pid, children=True) if pid is not None else MemoryWatch(os.getpid(), children=False)
    side.rounds.append(work())
    side.peak_rss = max(side.peak_rss, watch.stop())
    last = side.rounds[-1]
    print(f"    {side.name:<8} {last.pairs / last.seconds:8.1f} pairs/s  ({last.pairs} pairs, {last.seconds:.1f} s)")


def markdown(summaries: dict[str, dict[str, float]], ratios: dict[str, float], meta: dict[str, Any]) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine']}; model {meta['model']}; {meta['new_tokens']} new tokens per "
        f"pair, greedy, repetition penalty 1.2; {meta['pairs']} distinct test-set pairs; medians of {meta['rounds']} "
        "interleaved rounds after a warm-up round; ratios are medians of the per-round ratios.",
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
    lines += [
        "",
        "Peak memory is resident memory of the side's processes: (d)'s is the service's alone, its engine being (b)'s "
        "server; (c)'s is the benchmark's own process, which holds the model.",
    ]
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
    parser.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=0.35,
        help="on a GPU, the share of its memory each of the two vLLM engines may take (PandaLM-7B: an 80 GB GPU)",
    )
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "pandalm-serve")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    model = plain_model(args.model, args.cache_dir)
    from transformers import AutoTokenizer

    encoder = PromptEncoder(AutoTokenizer.from_pretrained(model), "</s>")
    by_prompt: dict[tuple[int, ...], dict[str, str]] = {}
    for p in load_pairs(args.testset, args.pairs):
        ids = encoder.encode(build_prompt(p["instruction"], p["input"], p["response1"], p["response2"]))
        by_prompt.setdefault(tuple(ids), p)
    pairs, prompts = list(by_prompt.values()), [list(ids) for ids in by_prompt]
    print(f"{len(pairs)} distinct pairs of the first {args.pairs}")
    logs = Path(tempfile.mkdtemp(prefix="pandalm-alternatives-"))
    common = ["--model", str(model), "--max-new-tokens", str(args.new_tokens), "--ignore-eos", "--log-level", "warning",
              "--cache-backend", "off", "--max-batch-items", "5000", "--max-items-in-flight", "5000"]  # fmt: skip
    # (a) and (b) share the machine: on a GPU, each vLLM gets a share of its memory (the reference's copy of the
    # weights needs the rest); on a CPU, a core each, as vLLM's CPU build would bind both to the first one.
    gpu = on_cuda()
    if gpu:
        common += ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
        memory = ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
        cores: tuple[dict[str, str], dict[str, str]] = ({}, {})
    else:
        memory = ["--kv-cache-memory-bytes", str(2**30)]
        cores = ({"VLLM_CPU_OMP_THREADS_BIND": "0"}, {"VLLM_CPU_OMP_THREADS_BIND": "1"})
    service_port, vllm_port, remote_port = free_port(), free_port(), free_port()
    # One core each for the two engines: vLLM's CPU build would bind both to the first one.
    service = ServerProcess(service_command(service_port, *common), logs / "service.log", cores[0])
    vllm = ServerProcess(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(vllm_port), "--max-model-len", "2048", *memory,
         "--logprobs-mode", "processed_logprobs", "--seed", "0", "--disable-log-stats"],
        logs / "vllm.log",
        cores[1],
    )  # fmt: skip
    remote = None
    sides = {name: Side(name) for name in ("service", "vllm", "vllm+labels", "remote", "hf")}
    label_ids = list(token_labels(encoder).all_ids)
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

        if gpu:
            loaded: Any = AutoModelForCausalLM.from_pretrained(model, dtype="auto")
            hf_model = loaded.to("cuda").eval()
        else:
            hf_model = AutoModelForCausalLM.from_pretrained(model).eval()
        service_url, vllm_url, remote_url = (f"http://127.0.0.1:{p}" for p in (service_port, vllm_port, remote_port))
        warm = pairs[:16]
        asyncio.run(run_service(service_url, warm))
        asyncio.run(run_service(remote_url, warm))
        asyncio.run(run_vllm(vllm_url, str(model), prompts[:16], args.new_tokens))
        for r in range(args.rounds + 1):
            # vLLM compiles for the batch shapes it meets first: round 0, the whole set, warms every side.
            print(f"  round {r}:" if r else "  warm-up round (not counted):")
            measure_side(sides["service"], service.proc.pid, lambda: asyncio.run(run_service(service_url, pairs)))
            measure_side(
                sides["vllm"],
                vllm.proc.pid,
                lambda: asyncio.run(run_vllm(vllm_url, str(model), prompts, args.new_tokens)),
            )
            measure_side(
                sides["vllm+labels"],
                vllm.proc.pid,
                lambda: asyncio.run(run_vllm(vllm_url, str(model), prompts, args.new_tokens, label_ids)),
            )
            measure_side(sides["remote"], remote.proc.pid, lambda: asyncio.run(run_service(remote_url, pairs)))
            measure_side(sides["hf"], None, lambda: run_hf(hf_model, prompts[: args.hf_pairs], args.new_tokens, 1))
            if r == 0:
                for side in sides.values():
                    side.rounds.clear()
        beam = Side("hf 4-beam")
        measure_side(beam, None, lambda: run_hf(hf_model, prompts[: args.beam_pairs], args.new_tokens, 4))
    finally:
        for process in (remote, vllm, service):
            if process is not None:
                process.stop()
    summaries = {name: side.summary() for name, side in sides.items()}
    summaries["hf 4-beam"] = beam.summary()
    ratios = {
        "(a)/(b) service / vllm": paired_ratio(sides["service"], sides["vllm"]),
        "(d)/(b) remote / vllm": paired_ratio(sides["remote"], sides["vllm"]),
        "(a)/(b') service / vllm+labels": paired_ratio(sides["service"], sides["vllm+labels"]),
        "(d)/(b') remote / vllm+labels": paired_ratio(sides["remote"], sides["vllm+labels"]),
        "(b')/(b) vllm+labels / vllm": paired_ratio(sides["vllm+labels"], sides["vllm"]),
        "(a)/(c) service / hf": paired_ratio(sides["service"], sides["hf"]),
        "(a)/(c') service / hf 4-beam": summaries["service"]["pairs_per_s"] / summaries["hf 4-beam"]["pairs_per_s"],
    }
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "model": "demo judge weights, unconstrained" if args.model is None else str(args.model),
        "new_tokens": args.new_tokens,
        "rounds": args.rounds,
        "pairs": len(pairs),
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
