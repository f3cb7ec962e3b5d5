"""Check a GPU host end to end, in one command, and print a pass/fail table.

    make gpu-smoke        # or: .venv/bin/python -m pandalm_serve.tools.gpu_smoke [--model DIR]

Each step passes, fails or is skipped with the reason (no GPU, no PandaLM-7B on this machine...), so it
also runs, as far as it can, on a machine without a GPU. It starts the service itself, on loopback,
with the tiny demo judge and, where it is on the machine, PandaLM-7B. Exit status 1 if a step failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from pandalm_client.testset import VERDICT_LABELS, load_testset, pandalm_label

from ..demo import ensure_demo_model
from ..judge.labels import token_labels
from ..judge.prompt import build_prompt
from ..judge.tokens import PromptEncoder
from ..settings import PANDALM_7B
from .processes import ServerFailed, ServerProcess, free_port, service_command

Outcome = Literal["pass", "fail", "skip"]
DATA = Path(__file__).resolve().parents[3] / "data" / "pandalm"
PAIRS = [
    {"instruction": "Give the capital of France.", "response1": "Paris.", "response2": "Lyon."},
    {"instruction": "Add 2 and 2.", "response1": "5", "response2": "4"},
    {"instruction": "Name a primary colour.", "input": "", "response1": "Blue.", "response2": "Blue."},
]
MODES: dict[str, dict[str, Any]] = {
    "full": {},
    "verdict": {"mode": "verdict"},
    "swap": {"swap": True},
    "beam": {"preset": "beam", "max_new_tokens": 32},
}


@dataclass
class Check:
    step: str
    outcome: Outcome
    detail: str


@dataclass
class Gpu:
    names: list[str]
    driver: str
    cuda: str | None


@dataclass
class Usage:
    """Start-up time and the peak memory seen while a service ran."""

    startup_s: float = 0.0
    peak_host_bytes: int = 0
    peak_gpu_bytes: int | None = None


def find_gpu() -> Gpu | None:
    """The NVIDIA GPUs NVML sees (never through CUDA: this process stays clean), or None."""
    try:
        from vllm.third_party import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVML library, no driver: no NVIDIA GPU to use
        return None
    try:
        count = pynvml.nvmlDeviceGetCount()
        names = [str(pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
        driver = str(pynvml.nvmlSystemGetDriverVersion())
    finally:
        pynvml.nvmlShutdown()
    if not names:
        return None
    import torch

    return Gpu(names, driver, torch.version.cuda)


def gpu_memory_used() -> int | None:
    try:
        from vllm.third_party import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        return sum(int(pynvml.nvmlDeviceGetMemoryInfo(h).used) for h in handles)
    finally:
        pynvml.nvmlShutdown()


def check_host(gpu: Gpu | None) -> list[Check]:
    checks = []
    if gpu is None:
        checks.append(Check("GPU, CUDA and driver", "skip", "no NVIDIA GPU: NVML finds none on this machine"))
    elif gpu.cuda is None:
        checks.append(Check("GPU, CUDA and driver", "fail", f"{gpu.names}: torch is a CPU build (install vllm)"))
    else:
        checks.append(
            Check("GPU, CUDA and driver", "pass", f"{', '.join(gpu.names)}; CUDA {gpu.cuda}; driver {gpu.driver}")
        )
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if compiler and headers.is_file():
        checks.append(Check("C compiler for Triton", "pass", f"{compiler}; {headers.parent}"))
    else:
        missing = "a C compiler (gcc)" if not compiler else f"Python's headers ({headers})"
        checks.append(Check("C compiler for Triton", "fail", f"no {missing}: Triton cannot build its GPU driver"))
    return checks


@contextmanager
def running_service(
    log_dir: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, Usage]]:
    """`pandalm-serve` with these flags, ready, with its start-up time and peak memory measured."""
    port = free_port()
    usage = Usage()
    started = time.monotonic()
    process = ServerProcess(service_command(port, "--log-level", "warning", *args), log_dir / f"{name}.log", env)
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_memory, args=(process.proc.pid, usage, stop), daemon=True)
    sampler.start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_until_ok(f"{url}/readyz")
        usage.startup_s = time.monotonic() - started
        yield url, usage
    finally:
        stop.set()
        sampler.join(5)
        process.stop()


def _sample_memory(pid: int, usage: Usage, stop: threading.Event) -> None:
    import psutil

    while not stop.wait(0.5):
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
            host = sum(p.memory_info().rss for p in tree if p.is_running())
        except psutil.Error:
            continue
        usage.peak_host_bytes = max(usage.peak_host_bytes, host)
        gpu = gpu_memory_used()
        if gpu is not None:
            usage.peak_gpu_bytes = max(usage.peak_gpu_bytes or 0, gpu)


def judge_modes(url: str, modes: dict[str, dict[str, Any]]) -> tuple[Outcome, str]:
    """Judge the smoke pairs in each mode; greedy modes must parse, with probabilities that follow the verdict."""
    problems: list[str] = []
    with httpx.Client(base_url=url, timeout=600) as client:
        for mode, options in modes.items():
            response = client.post("/batch", json={"items": PAIRS, "options": options})
            if response.status_code != 200:
                problems.append(f"{mode}: HTTP {response.status_code}")
                continue
            for result in response.json()["results"]:
                problems += [f"{mode}: {p}" for p in result_problems(result, greedy=mode != "beam")]
    if problems:
        return "fail", "; ".join(problems[:4])
    return "pass", f"{', '.join(modes)}: {len(PAIRS)} pairs each, verdicts with probabilities that follow them"


def result_problems(result: dict[str, Any], *, greedy: bool) -> list[str]:
    if result["status"] == "error":
        return [f"error {result['error']['code']}"]
    if not greedy:  # beam search: the demo judge is only held to PandaLM's format under greedy decoding
        return []
    if result["status"] != "ok":
        return ["unparsed output"]
    probs = result["probabilities"]
    if probs is None:
        return ["no probabilities"]
    if result["consistent"] is not False and max(probs, key=probs.get) != result["verdict"]:
        return [f"verdict {result['verdict']} is not the most probable label {probs}"]
    return []


def batch_invariance(url: str) -> tuple[Outcome, str]:
    """The same pair alone and inside a larger batch gives the same output, token for token."""
    with httpx.Client(base_url=url, timeout=600) as client:
        alone = client.post("/compare", json=PAIRS[0]).json()
        crowd = client.post("/batch", json={"items": [PAIRS[0], *PAIRS[1:] * 10]}).json()["results"][0]
    if alone["raw"] == crowd["raw"] and alone["probabilities"] == crowd["probabilities"]:
        return "pass", "a pair alone and in a batch of 21: identical output and probabilities"
    return "fail", "a pair alone and in a batch of 21 gave different outputs"


def pandalm_7b_source(model: str | None, revision: str | None) -> str | None:
    """PandaLM-7B on this machine: the --model given, else the hub name when its files are in the HF cache."""
    if model:
        return model
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(PANDALM_7B, "config.json", revision=revision)
    return PANDALM_7B if isinstance(cached, str) else None


def compare_tokenizers(prompts: list[str], fast: Callable[[str], list[int]], slow: Callable[[str], list[int]]) -> int:
    """How many prompts the service's tokenizer (with its BOS) and PandaLM's slow tokenizer tokenize apart."""
    return sum(1 for prompt in prompts if fast(prompt) != [2, *slow(prompt)])


def check_tokenizer(source: str | None, revision: str | None, testset: Path) -> Check:
    step = "prompt token ids vs PandaLM's tokenizer"
    if source is None:
        return Check(step, "skip", "PandaLM-7B is not on this machine (see the README: Running on GPUs)")
    if not testset.is_file():
        return Check(step, "skip", f"no test set at {testset} (pass --testset)")
    import sentencepiece
    from huggingface_hub import hf_hub_download

    from ..engines.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(source, revision)
    folder = Path(source)
    spm_file = folder / "tokenizer.model" if folder.is_dir() else Path(hf_hub_download(source, "tokenizer.model"))
    # PandaLM's code tokenized with transformers' slow LlamaTokenizer: SentencePiece on the text, then BOS.
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_file))
    encoder = PromptEncoder(tokenizer, "</s>")
    prompts = [build_prompt(i.instruction, i.input, i.response1, i.response2) for i in load_testset(testset)]
    apart = compare_tokenizers(prompts, encoder.encode, processor.encode)
    labels = token_labels(encoder)
    detail = (
        f"{len(prompts) - apart}/{len(prompts)} test-set prompts identical, each starting with id 2; "
        f"label tokens {labels.first_ids} = {[tokenizer.convert_ids_to_tokens(i) for i in labels.first_ids]}"
    )
    return Check(step, "pass" if apart == 0 else "fail", detail)


def recorded_agreement(url: str, testset: Path, outputs: Path) -> tuple[Outcome, str]:
    """Judge the items whose PandaLM-7B outputs were recorded; report how many verdicts match."""
    recorded = {int(o["idx"]): o for o in json.loads(outputs.read_text())}
    items = [i for i in load_testset(testset) if i.idx in recorded]
    with httpx.Client(base_url=url, timeout=1800) as client:
        results = client.post("/batch", json={"items": [i.request() for i in items]}).json()["results"]
    parsed = [r for r in results if r["status"] == "ok"]
    same = sum(
        1
        for item, r in zip(items, results, strict=True)
        if r["status"] == "ok" and VERDICT_LABELS[r["verdict"]] == pandalm_label(recorded[item.idx]["pandalm_result"])
    )
    detail = (
        f"{same}/{len(items)} verdicts match PandaLM-7B's recorded ones (those were beam search; this is greedy); "
        f"{len(items) - len(parsed)} unparsed or failed"
    )
    return ("pass" if len(parsed) == len(items) else "fail"), detail


def usage_detail(usage: Usage, label: str) -> str:
    gpu = f"{usage.peak_gpu_bytes / 2**30:.1f} GiB" if usage.peak_gpu_bytes is not None else "n/a (no GPU)"
    return (
        f"{label}: ready in {usage.startup_s:.0f} s; peak host memory {usage.peak_host_bytes / 2**30:.1f} GiB "
        f"(service and engine processes); peak GPU memory {gpu}"
    )


def run(args: argparse.Namespace) -> list[Check]:
    log_dir = Path(tempfile.mkdtemp(prefix="pandalm-gpu-smoke-"))
    gpu = find_gpu()
    checks = check_host(gpu)
    where = "on the GPU" if gpu else "on the CPU (no GPU here)"
    demo = ensure_demo_model(args.cache_dir)
    usages: list[str] = []

    try:
        with running_service(log_dir, "demo", "--model", str(demo)) as (url, usage):
            outcome, detail = judge_modes(url, MODES)
            checks.append(Check(f"service {where}, small model", outcome, detail))
            usages.append(usage_detail(usage, "demo judge"))
    except ServerFailed as exc:
        checks.append(Check(f"service {where}, small model", "fail", str(exc).splitlines()[0]))

    if gpu is None:
        checks.append(Check("batch-invariant mode", "skip", "needs a GPU (vLLM's CPU build does not support it)"))
    else:
        try:
            with running_service(log_dir, "invariant", "--model", str(demo), "--batch-invariant") as (url, _):
                modes = judge_modes(url, {k: v for k, v in MODES.items() if k != "beam"})
                invariance = batch_invariance(url)
                outcome = "pass" if modes[0] == invariance[0] == "pass" else "fail"
                checks.append(Check("batch-invariant mode", outcome, f"{modes[1]}; {invariance[1]}"))
        except ServerFailed as exc:
            checks.append(Check("batch-invariant mode", "fail", str(exc).splitlines()[0]))

    source = pandalm_7b_source(args.model, args.revision)
    step = "PandaLM-7B: default start, hub offline"
    if gpu is None or source is None or not args.outputs.is_file():
        reason = (
            "needs a GPU"
            if gpu is None
            else "PandaLM-7B is not on this machine (see the README: Running on GPUs)"
            if source is None
            else f"no recorded outputs at {args.outputs} (pass --outputs)"
        )
        checks.append(Check(step, "skip", reason))
        checks.append(Check("PandaLM-7B: recorded outputs", "skip", reason))
    else:
        flags = ["--model", source] if args.model else []
        if args.revision:
            flags += ["--revision", args.revision]
        try:
            with running_service(log_dir, "pandalm-7b", *flags, env={"HF_HUB_OFFLINE": "1"}) as (url, usage):
                info = httpx.get(f"{url}/info").json()
                checks.append(Check(step, "pass", f"serving {info['model']} offline"))
                outcome, detail = recorded_agreement(url, args.testset, args.outputs)
                checks.append(Check("PandaLM-7B: recorded outputs", outcome, detail))
                usages.append(usage_detail(usage, "PandaLM-7B"))
        except ServerFailed as exc:
            checks.append(Check(step, "fail", str(exc).splitlines()[0]))

    checks.append(check_tokenizer(source, args.revision, args.testset))
    checks.append(Check("start-up time and memory", "pass" if usages else "fail", "; ".join(usages) or "no service"))
    print(f"service logs: {log_dir}")
    return checks


def table(checks: list[Check]) -> str:
    width = max(len(c.step) for c in checks)
    lines = [f"{'step':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{c.step:<{width}}  {c.outcome.upper():<6}  {c.detail}" for c in checks]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pandalm_serve.tools.gpu_smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="PandaLM-7B's folder (default: the hub name, when it is in the HF cache)")
    parser.add_argument("--revision", help="PandaLM-7B's revision on the hub, e.g. refs/pr/1 (safetensors)")
    parser.add_argument("--testset", type=Path, default=DATA / "testset-v1.json", help="PandaLM's testset-v1.json")
    parser.add_argument(
        "--outputs",
        type=Path,
        default=DATA / "pandalm-7b-outputs-sample.json",
        help="PandaLM-7B's recorded outputs (pandalm-7b-testset-v1.json or the 59-item sample)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path.home() / ".cache" / "pandalm-serve", help="where the demo judge lives"
    )
    checks = run(parser.parse_args(argv))
    print(table(checks))
    sys.exit(1 if any(c.outcome == "fail" for c in checks) else 0)


if __name__ == "__main__":
    main()
