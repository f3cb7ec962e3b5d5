"""PandaLM's prompt, byte for byte as its reference `build_pandalm_prompt` writes it."""

from __future__ import annotations

import hashlib
import re

from .format import (
    EVALUATION_HEADER,
    INPUT_HEADER,
    INSTRUCTION_HEADER,
    RESPONSE1_HEADER,
    RESPONSE2_HEADER,
)

# Version of the template below. Bump it whenever the prompt text can change, because a verdict
# is only comparable with verdicts judged on the same template.
TEMPLATE_VERSION = "pandalm-v1"

# The reference removes these tokens from both responses before judging.
SPECIAL_TOKEN_PATTERN = re.compile(
    r"<unk>|<pad>|<s>|</s>|\[PAD\]|<\|endoftext\|>|\[UNK\]|\[CLS\]|\[MASK\]"
    r"|<\|startofpiece\|>|<\|endofpiece\|>|\[gMASK\]|\[sMASK\]"
)

HEAD_WITH_INPUT = (
    "Below are two responses for a given task. The task is defined by the Instruction with an Input "
    "that provides further context. Evaluate the responses and generate a reference answer for the task."
)
HEAD_WITHOUT_INPUT = (
    "Below are two responses for a given task. The task is defined by the Instruction. "
    "Evaluate the responses and generate a reference answer for the task."
)


def clean_response(text: str) -> str:
    """Strip a response and remove special tokens, as the reference does."""
    text = text.strip()
    if "<" not in text and "[" not in text:  # every special token starts with one: nothing to remove
        return text
    return SPECIAL_TOKEN_PATTERN.sub("", text).strip()


def build_prompt(instruction: str, input: str, response1: str, response2: str) -> str:
    """PandaLM's prompt for one pair; instruction and input are used exactly as given."""
    task = f"{INSTRUCTION_HEADER}\n{instruction}\n\n"
    if input:
        task += f"{INPUT_HEADER}\n{input}\n\n"
    return (
        f"{HEAD_WITH_INPUT if input else HEAD_WITHOUT_INPUT}\n\n{task}"
        f"{RESPONSE1_HEADER}\n{clean_response(response1)}\n\n{RESPONSE2_HEADER}\n{clean_response(response2)}"
        f"\n\n{EVALUATION_HEADER}\n"
    )


def affinity_key(instruction: str, input: str) -> str:
    """What every prompt of one instruction and input shares: a hash of them (the responses left out)."""
    return hashlib.sha256(f"{instruction}\0{input}".encode()).hexdigest()[:32]
