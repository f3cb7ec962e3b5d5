"""Shared fixtures for the test suite."""

from __future__ import annotations

import os

# Nothing comes from a model hub in these tests (nor can it on the project's machines): a name that is
# not a local folder fails at once instead of retrying the network for a minute. Set before anything
# imports huggingface_hub, which reads it once; servers the tests start inherit it.
os.environ["HF_HUB_OFFLINE"] = "1"
# Every test judges afresh unless it is about the verdict cache (it then names a backend, and flags win):
# a cache shared across tests, in the home directory, would answer for the engine under test.
os.environ["PANDALM_CACHE_BACKEND"] = "off"
# Starlette's test client sends `Host: testserver`, which the default (loopback names only, on loopback
# without keys) refuses; tests/api/test_hosts.py checks that default on its own.
os.environ["PANDALM_ALLOWED_HOSTS"] = "*"

import string
from pathlib import Path

import pytest
from transformers import LlamaTokenizer


@pytest.fixture(scope="session")
def pandalm_data_dir() -> Path:
    """PandaLM's published data, vendored in the repository (`data/pandalm/`, with its licence)."""
    return Path(__file__).resolve().parents[1] / "data" / "pandalm"


@pytest.fixture(scope="session")
def llama_tokenizer() -> LlamaTokenizer:
    """A LLaMA-style tokenizer: `<unk>`, `<s>`, `</s>` at 0, 1, 2, adding `<s>` to every text."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for piece in ["▁", *string.ascii_letters, *string.digits, *string.punctuation]:
        vocab.setdefault(piece, len(vocab))
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    return LlamaTokenizer(vocab=vocab, merges=[], add_bos_token=True)
