"""The tiny demo judges: random-weight LLaMAs built locally, one per judge family, so every endpoint works without a
GPU or a download.

Their verdicts mean nothing. A demo's folder carries a marker file with its family and the regular expressions of
the family's output format (families/<name>.py `demo()`); the judge constrains the demo's output to them
(`profile_of`), so parsing, metrics and the API behave as they do with the real model. A chat family's demo
tokenizer carries a chat template.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from .families import family_named
from .families.base import DemoFormat, Family
from .families.pandalm import DEMO_OUTPUT_REGEX, PANDALM
from .judge.profile import ModelProfile

logger = logging.getLogger(__name__)

# Bump when the recipe below changes, so a stale cached model is never reused.
DEMO_VERSION = "2"
MARKER_FILE = "pandalm_demo.json"

__all__ = ["DEMO_OUTPUT_REGEX", "default_demo_dir", "ensure_demo_model", "is_demo_model", "profile_of"]

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


def default_demo_dir(cache_dir: Path, family: Family = PANDALM) -> Path:
    """Where a family's demo judge is kept (PandaLM's where it always was)."""
    if family.name == PANDALM.name:
        return cache_dir / f"demo-judge-v{DEMO_VERSION}"
    return cache_dir / f"demo-{family.name}-v{DEMO_VERSION}"


def ensure_demo_model(cache_dir: Path, family: Family = PANDALM) -> Path:
    """Return the family's demo judge's folder under `cache_dir`, building it first if it is not there.

    Building is deterministic (fixed corpus, fixed seed) and needs no network. It happens in a
    temporary folder renamed into place, so concurrent first uses never see a half-written model.
    """
    target = default_demo_dir(cache_dir, family)
    if is_demo_model(target):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    logger.info("building the %s demo judge in %s (first use only)", family.name, target)
    staging = Path(tempfile.mkdtemp(prefix=".demo-build-", dir=cache_dir))
    try:
        _build(staging, family)
        staging.chmod(0o755)  # mkdtemp makes it private; other users may serve it
        try:
            os.rename(staging, target)
        except OSError:
            if not is_demo_model(target):  # lost a race to another builder: theirs is as good
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _corpus(demo: DemoFormat) -> list[str]:
    lines = list(demo.corpus)
    # A deterministic pseudo-text: every word beside many others, in both cases.
    n, m = len(_WORDS), len(_SYLLABLES)
    for i in range(4000):
        words = [_WORDS[(i * 7 + j * 13 + (i // n) * j) % n] for j in range(12)]
        words += [_SYLLABLES[(i * 3 + j) % m] + _SYLLABLES[(i * 11 + j * 5) % m] for j in range(4)]
        lines.append(" ".join(words).capitalize() + ".")
    return lines


def _build(folder: Path, family: Family) -> None:
    demo = family.demo()
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
    tokenizer.train_from_iterator(_corpus(demo), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=2048,
    )
    if demo.chat_template is not None:
        fast.chat_template = demo.chat_template
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
    marker = {"demo_version": DEMO_VERSION, "family": family.name, "output_regex": dict(demo.output_regex)}
    (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")


def profile_of(*sources: str | None) -> ModelProfile:
    """The profile of the first local folder among `sources` that carries one; the default otherwise."""
    for source in sources:
        if source and (Path(source) / MARKER_FILE).is_file():
            marker = json.loads((Path(source) / MARKER_FILE).read_text())
            regex = marker["output_regex"]
            # A demo judge built before families: PandaLM's, one expression.
            regexes = regex if isinstance(regex, dict) else {"pairwise": regex}
            return ModelProfile(
                demo=True,
                family=family_named(marker.get("family", PANDALM.name)).name,
                output_regex=regexes.get("pairwise"),
                grade_regex=regexes.get("absolute"),
            )
    return ModelProfile()
