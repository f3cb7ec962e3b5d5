"""Judge a file of pairs with PandaLM on Ray Data and vLLM, for offline jobs of 100,000 pairs and more.

    python -m pandalm_serve.jobs.ray_batch --input pairs.jsonl --output results.jsonl --model DIR [--replicas N]

The input is JSONL (one compare request a line, as `pandalm batch` reads it) or Parquet with the same
columns: `instruction`, `input` (optional), `response1`, `response2`, `id` (optional). The output is what
`pandalm batch -o` writes: one `CompareResult` a line, in input order, each with its `index`, shaped as
`/batch` returns it; the counts go to standard output as `/batch`'s summary. The options are flags, the same
for every pair, and mean what they mean in the service (greedy preset only).

The prompts are PandaLM's token ids, built by the service's own code (jobs/pairs.py) on Ray's CPU workers;
Ray Data's vLLM processor (`ray.data.llm`) runs `--replicas` vLLM engines; the results are put together
on the driver. `ray.init()` starts Ray on this machine, or joins the cluster named by `RAY_ADDRESS` (or the
one `ray job submit` runs it on): the same command either way. Needs the `ray` extra beside vLLM.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pandalm_client.models import BatchSummary, CompareResult

from ..judge.batch import summarize
from ..settings import Settings
from .pairs import INFERENCE_ERROR_COLUMN, JobOptions, combine, failed_order, pair_rows, prepare, read

logger = logging.getLogger(__name__)

# vLLM's KV cache per engine on a CPU, as the service's vLLM engine sizes it.
_CPU_KV_CACHE_GIB = 1.0


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the vLLM replicas run: how many, on what, with how much memory."""

    replicas: int = 1
    device: str = "auto"  # "cpu", "gpu", or "auto": GPUs when the Ray cluster has any
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    kv_cache_gib: float | None = None
    gpu_memory_utilization: float = 0.9
    batch_size: int = 64


def _default(name: str) -> Any:
    """The service's default for a setting the job shares with it (settings.py states each once)."""
    return Settings.model_fields[name].default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pandalm_serve.jobs.ray_batch", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--input", type=Path, required=True, help="pairs: a .jsonl or .parquet file, or a folder")
    parser.add_argument("--output", type=Path, required=True, help="results, one JSON line each")
    parser.add_argument("--input-format", choices=["jsonl", "parquet"], help="default: from the input's name")
    parser.add_argument("--model", required=True, help="PandaLM's folder or hub name (e.g. WeOpenML/PandaLM-7B-v1)")
    parser.add_argument("--tokenizer", help="PandaLM's tokenizer; default: the model's own")
    parser.add_argument("--revision", help="the model's revision on the hub")
    parser.add_argument(
        "--bos-token", default=_default("bos_token"), help="token every prompt starts with; empty: the tokenizer's"
    )
    parser.add_argument("--max-model-len", type=int, default=_default("max_model_len"))
    parser.add_argument("--mode", choices=["full", "verdict"], default=_default("mode"))
    parser.add_argument("--max-new-tokens", type=int, default=_default("max_new_tokens"))
    parser.add_argument("--repetition-penalty", type=float, default=_default("repetition_penalty"))
    parser.add_argument("--truncate", action="store_true", help="shorten responses that do not fit the context")
    parser.add_argument("--swap", action="store_true", help="judge both orders (what `pandalm gate` and `rank` use)")
    parser.add_argument("--neutralize-headers", action="store_true")
    parser.add_argument("--replicas", type=int, default=1, help="vLLM engines (one per GPU, or per TP group)")
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default="auto",
        help="auto: GPUs if the Ray cluster has some now (say gpu where the cluster adds GPU nodes on demand)",
    )
    parser.add_argument("--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--kv-cache-gib", type=float, help="KV cache per engine; default on CPUs 1")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per vLLM batch")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = JobOptions(
        model=args.model,
        tokenizer=args.tokenizer,
        revision=args.revision,
        bos_token=args.bos_token or None,
        max_model_len=args.max_model_len,
        mode=args.mode,
        max_new_tokens=args.max_new_tokens,
        repetition_penalty=args.repetition_penalty,
        truncate=args.truncate,
        swap=args.swap,
        neutralize_headers=args.neutralize_headers,
    )
    engine = EngineConfig(
        replicas=args.replicas,
        device=args.device,
        tensor_parallel_size=args.tensor_parallel_size,
        dtype=args.dtype,
        kv_cache_gib=args.kv_cache_gib,
        gpu_memory_utilization=args.gpu_memory_utilization,
        batch_size=args.batch_size,
    )
    input_format = args.input_format or ("parquet" if args.input.suffix == ".parquet" else "jsonl")
    summary = run_job(options, engine, args.input, input_format, args.output)
    print(json.dumps({"summary": summary.model_dump()}))
    sys.exit(1 if summary.error else 0)


def run_job(options: JobOptions, engine: EngineConfig, source: Path, input_format: str, output: Path) -> BatchSummary:
    """Judge every pair of `source` into `output`; return the counts."""
    import ray
    import ray.data

    # Neither Ray nor vLLM reports usage to their makers from here: the evaluation data stays in-house.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env = {"VLLM_NO_USAGE_STATS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    if Path(options.model).is_dir():
        env["HF_HUB_OFFLINE"] = "1"  # a local model needs nothing from the hub
    started = time.monotonic()
    if not ray.is_initialized():
        # A Ray started here needs no dashboard; a cluster's is the cluster's business.
        local: dict[str, Any] = {} if "RAY_ADDRESS" in os.environ else {"include_dashboard": False}
        ray.init(runtime_env={"env_vars": env}, **local)
    context = ray.data.DataContext.get_current()
    # Rows keep the input's order from reading to writing: each result's index is its position.
    context.execution_options.preserve_order = True

    if input_format == "parquet":
        pairs = ray.data.read_parquet(str(source))
    else:
        pairs = ray.data.read_json(str(source), lines=True)
    orders = pairs.flat_map(functools.partial(prepare, options))
    judged = _processor(options, engine, env)(orders)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        summary = summarize(_written(out, judged.iter_rows(), options))
    os.replace(temporary, output)  # a job that fails leaves no half-written results behind
    logger.info("judged the pairs of %s in %.1f s: %s", source, time.monotonic() - started, summary)
    return summary


def _processor(options: JobOptions, engine: EngineConfig, env: dict[str, str]) -> Any:
    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    device = engine.device
    if device == "auto":
        device = "gpu" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
    kv_cache_gib = engine.kv_cache_gib if engine.kv_cache_gib is not None or device == "gpu" else _CPU_KV_CACHE_GIB
    engine_kwargs: dict[str, Any] = {
        "max_model_len": options.max_model_len,
        "dtype": engine.dtype,
        "tensor_parallel_size": engine.tensor_parallel_size,
        "enable_prefix_caching": True,
        # Log-probabilities after the repetition penalty, so they agree with the label chosen (as in process).
        "logprobs_mode": "processed_logprobs",
        "seed": 0,
    }
    if options.tokenizer:
        engine_kwargs["tokenizer"] = options.tokenizer
    if options.revision:
        engine_kwargs["revision"] = options.revision
    if kv_cache_gib is not None:
        engine_kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
    else:
        engine_kwargs["gpu_memory_utilization"] = engine.gpu_memory_utilization
    placement = None
    replica_env = dict(env)
    if device == "cpu":
        # With one engine per replica Ray asks for a GPU (`num_gpus=1`), which a CPU cluster never has.
        placement = {"bundles": [{"CPU": 1}]}
        if engine.replicas > 1:
            # vLLM's CPU build binds every engine of a machine to its first core unless told otherwise.
            replica_env["VLLM_CPU_OMP_THREADS_BIND"] = "nobind"
    config = vLLMEngineProcessorConfig(
        model_source=options.model,
        engine_kwargs=engine_kwargs,
        concurrency=engine.replicas,
        batch_size=engine.batch_size,
        # The prompts are PandaLM's token ids already, and the outputs are read by token id.
        chat_template_stage=False,
        tokenize_stage=False,
        detokenize_stage=False,
        # A pair vLLM fails on becomes that pair's error result; the job goes on.
        should_continue_on_error=True,
        placement_group_config=placement,
        runtime_env={"env_vars": replica_env},
        # vLLM's metrics through Ray's need `ray[serve]` (vLLM imports `ray.serve` for them); a batch job's
        # progress is in its log, and `ray[data]` alone stays enough.
        log_engine_metrics=False,
    )
    return build_processor(config, postprocess=functools.partial(read, options))


def _written(out: TextIO, rows: Iterable[Mapping[str, Any]], options: JobOptions) -> Iterator[CompareResult]:
    """Each pair's result, once written to `out`, in the job's order."""
    for index, pair in enumerate(pair_rows(_settled(rows))):
        result = combine(pair, index, options)
        out.write(result.model_dump_json() + "\n")
        yield result


def _settled(rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """The rows vLLM judged, and those it failed on as their order's error."""
    for row in rows:
        yield failed_order(row) if row.get(INFERENCE_ERROR_COLUMN) else row


if __name__ == "__main__":
    main()
