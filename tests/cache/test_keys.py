"""The cache key: every part that decides a generation changes it; nothing a client chose is in it."""

from __future__ import annotations

import dataclasses

from pandalm_serve.cache.base import generation_key
from pandalm_serve.engines.base import EnginePrompt, Sampling

PROMPT = EnginePrompt("Below are two responses...", [2, 10, 11, 12])
SAMPLING = Sampling(preset="greedy", max_new_tokens=512, repetition_penalty=1.2, beam_width=4, logprob_token_ids=(5, 6))


def key(**changes: object) -> str:
    prompt = changes.pop("prompt", PROMPT)
    model = changes.pop("model", "vllm|WeOpenML/PandaLM-7B-v1|")
    template = changes.pop("template", "pandalm-v1")
    return generation_key(model, template, prompt, dataclasses.replace(SAMPLING, **changes))  # type: ignore[arg-type]


def test_every_part_that_decides_the_generation_is_in_the_key() -> None:
    base = key()
    variants = [
        key(model="vllm|WeOpenML/PandaLM-7B-v1|refs/pr/1"),
        key(template="pandalm-v2"),
        key(prompt=EnginePrompt(PROMPT.text, [1, 10, 11, 12])),  # another BOS token
        key(prompt=EnginePrompt(PROMPT.text, [2, 10, 11])),  # truncated
        key(prompt=EnginePrompt("Below are two responses...!")),  # text, for a server that tokenizes
        key(preset="beam"),
        key(max_new_tokens=3, stop=("\n",)),  # verdict mode
        key(max_new_tokens=256),
        key(repetition_penalty=1.0),
        key(output_regex="(1|2|Tie)"),
        key(ignore_eos=True),
        key(logprob_token_ids=None, top_logprobs=5),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert key() == base  # and nothing else moves it
    # The beam width only matters to beam search.
    assert key(beam_width=8) == base and key(preset="beam", beam_width=8) != key(preset="beam")
