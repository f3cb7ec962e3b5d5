"""What the label probabilities cost on vLLM, requested on the generation or from a one-token probe.

    .venv/bin/python benchmarks/label_logprobs.py --testset data/pandalm/testset-v1.json

Judges the same pairs on the demo judge with vLLM's AsyncLLM directly, three ways, alternating over
rounds: no log-probabilities; the label tokens' log-probabilities requested by id on the generation
itself (vLLM then computes and detokenizes them at every position; what the service does); and a
one-token probe for them followed by the generation, which reuses the probe's prompt KV cache.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from _service import benchmark_parser, load_pairs

from pandalm_serve.demo import DEMO_OUTPUT_REGEX, ensure_demo_model
from pandalm_serve.judge.labels import token_labels
from pandalm_serve.judge.prompt import build_prompt
from pandalm_serve.judge.tokens import PromptEncoder

WAYS = ("none", "inline", "probe")


async def measure(model: Path, pairs: list[dict[str, str]], rounds: int) -> None:
    from vllm import SamplingParams
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
    from vllm.v1.engine.async_llm import AsyncLLM

    args = AsyncEngineArgs(
        model=str(model), max_model_len=2048, logprobs_mode="processed_logprobs", kv_cache_memory_bytes=2**30, seed=0
    )
    engine = AsyncLLM.from_engine_args(args)
    encoder = PromptEncoder(engine.get_tokenizer(), "</s>")
    label_ids = list(token_labels(encoder).all_ids)
    prompts = [
        encoder.encode(build_prompt(p["instruction"], p["input"], p["response1"], p["response2"])) for p in pairs
    ]

    def params(max_tokens: int, with_logprobs: bool) -> SamplingParams:
        return SamplingParams(
            temperature=0.0,
            repetition_penalty=1.2,
            max_tokens=max_tokens,
            output_kind=RequestOutputKind.FINAL_ONLY,
            structured_outputs=StructuredOutputsParams(regex=DEMO_OUTPUT_REGEX),
            logprob_token_ids=label_ids if with_logprobs else None,
            flat_logprobs=True,
        )

    async def run(prompt: list[int], sampling: SamplingParams, request_id: str) -> Any:
        async for output in engine.generate(TokensPrompt(prompt_token_ids=prompt), sampling, request_id):
            final = output
        return final

    async def judge(way: str, i: int, prompt: list[int], tag: str) -> None:
        if way == "probe":
            await run(prompt, params(1, True), f"{tag}-{i}-probe")
        await run(prompt, params(512, way == "inline"), f"{tag}-{i}")

    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    try:
        await asyncio.gather(*(judge("none", i, p, "warm") for i, p in enumerate(prompts[:16])))
        for r in range(rounds):
            for way in WAYS:
                started = time.perf_counter()
                await asyncio.gather(*(judge(way, i, p, f"{r}-{way}") for i, p in enumerate(prompts)))
                rates[way].append(len(prompts) / (time.perf_counter() - started))
                print(f"  round {r + 1}: {way:<7} {rates[way][-1]:8.1f} pairs/s")
    finally:
        engine.shutdown()
    base = statistics.median(rates["none"])
    print("medians over rounds:")
    for way in WAYS:
        rate = statistics.median(rates[way])
        print(f"  {way:<7} {rate:8.1f} pairs/s  {rate / base:5.2f}x no log-probabilities")


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "pandalm-serve")
    args = parser.parse_args()
    model = ensure_demo_model(args.cache_dir)
    asyncio.run(measure(model, load_pairs(args.testset, args.pairs), args.rounds))


if __name__ == "__main__":
    main()
