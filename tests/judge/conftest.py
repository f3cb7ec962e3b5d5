from __future__ import annotations

import string

import pytest
from transformers import LlamaTokenizer


@pytest.fixture(scope="session")
def llama_tokenizer() -> LlamaTokenizer:
    """A LLaMA-style tokenizer: `<unk>`, `<s>`, `</s>` at 0, 1, 2, adding `<s>` to every text."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for piece in ["▁", *string.ascii_letters, *string.digits, *string.punctuation]:
        vocab.setdefault(piece, len(vocab))
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    return LlamaTokenizer(vocab=vocab, merges=[], add_bos_token=True)
