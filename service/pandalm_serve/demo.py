"""The tiny demo judge: a random-weight LLaMA built locally, so every endpoint works without a GPU or a download.

Its verdicts mean nothing. Its folder carries a marker file with the regular expression of PandaLM's
format (`DEMO_OUTPUT_REGEX`); the judge constrains the demo's output to it (model.py reads it), so
parsing, metrics and the API behave as they do with the real model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .judge.format import VERDICTS, output_regex, render_output
from .judge.profile import ModelProfile
from .judge.prompt import build_prompt

logger = logging.getLogger(__name__)

# Bump when the recipe below changes, so a stale cached model is never reused.
DEMO_VERSION = "2"
MARKER_FILE = "pandalm_demo.json"

# Lengths are bounded so a demo verdict takes about a second on a CPU.
DEMO_OUTPUT_REGEX = output_regex(reason="[A-Za-z][A-Za-z ,.]{7,47}", reference="[A-Za-z][A-Za-z ,.]{7,47}")

_VOCAB_SIZE = 1000
_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]  # ids 0, 1, 2, as in LLaMA's tokenizer

_WORD_LIST = """
the a an response responses better worse tie both neither because it is more less concise clear
accurate relevant complete correct incorrect answer question task instruction input reference
evaluation reason provides detailed specific helpful information example list summary translation
sentence article write explain describe compare give generate make create find identify classify and
or but with without for of to in on by from as that this these those which who what why how one two
three first second other same different good bad well poor simple short long new old data model user
text word words number numbers code function story email product customer
"""
_WORDS = _WORD_LIST.split()
# Made-up words from syllables, so the tokenizer learns enough merges to fill its vocabulary.
_SYLLABLES = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"]


def is_demo_model(path: str | Path) -> bool:
    """Whether `path` is a folder holding a demo judge built by `ensure_demo_model`."""
    return (Path(path) / MARKER_FILE).is_file()


def default_demo_dir(cache_dir: Path) -> Path:
    return cache_dir / f"demo-judge-v{DEMO_VERSION}"


def ensure_demo_model(cache_dir: Path) -> Path:
    """Return the demo judge's folder under `cache_dir`, building it first if it is not there.

    Building is deterministic (fixed corpus, fixed seed) and needs no network. It happens in a
    temporary folder renamed into place, so concurrent first uses never see a half-written model.
    """
    target = default_demo_dir(cache_dir)
    if is_demo_model(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    logger.info("building the demo judge in %s (first use only)", target)
    staging = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=cache_dir))
    try:
        _build(staging)
        staging.chmod(0o755)  # mkdtemp makes it private; other users may serve it
        try:
            os.rename(staging, target)
        except OSError:
            if not is_demo_model(target):  # lost a race to another builder: theirs is as good
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _corpus() -> list[str]:
    lines = [
        build_prompt("Instruction", "Input", "Response one", "Response two"),
        build_prompt("Instruction", "", "Response one", "Response two"),
        *(render_output(verdict, "Reason.", "Reference.") for verdict in VERDICTS),
    ]
    # A deterministic pseudo-text: every word beside many others, in both cases.
    n, m = len(_WORDS), len(_SYLLABLES)
    for i in range(4000):
        words = [_WORDS[(i * 7 + j * 13 + (i // n) * j) % n] for j in range(12)]
        words += [_SYLLABLES[(i * 3 + j) % m] + _SYLLABLES[(i * 11 + j * 5) % m] for j in range(4)]
        lines.append(" ".join(words).capitalize() + ".")
    return lines


def _build(folder: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=2048,
    )
    fast.save_pretrained(folder)

    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head dimension 64: vLLM's CPU attention refuses 16
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
        # Wider than LLaMA's 0.02, so the output depends on the prompt: a demo verdict varies
        # between 1, 2 and Tie, and swapping the responses can change it, as with a real judge.
        initializer_range=0.3,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    (folder / MARKER_FILE).write_text(
        json.dumps({"demo_version": DEMO_VERSION, "output_regex": DEMO_OUTPUT_REGEX}, indent=2) + "\n"
    )


def profile_of(*sources: str | None) -> ModelProfile:
    """The profile of the first local folder among `sources` that carries one; the default otherwise."""
    for source in sources:
        if source and (Path(source) / MARKER_FILE).is_file():
            marker = json.loads((Path(source) / MARKER_FILE).read_text())
            return ModelProfile(demo=True, output_regex=marker["output_regex"])
    return ModelProfile()
