from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoTokenizer

from pandalm_serve.demo import DEMO_OUTPUT_REGEX, MARKER_FILE, ensure_demo_model, is_demo_model, profile_of
from pandalm_serve.families import FAMILIES
from pandalm_serve.judge.profile import ModelProfile


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_demo_judge_is_built_deterministically_offline(tmp_path: Path) -> None:
    first = ensure_demo_model(tmp_path / "a")
    second = ensure_demo_model(tmp_path / "b")
    assert is_demo_model(first) and digest(first) == digest(second)
    assert ensure_demo_model(tmp_path / "a") == first  # cached: not rebuilt

    config = AutoConfig.from_pretrained(first)
    assert config.model_type == "llama"
    assert config.hidden_size // config.num_attention_heads == 64  # vLLM's CPU attention refuses 16
    tokenizer = AutoTokenizer.from_pretrained(first)
    assert len(tokenizer) == 1000
    assert tokenizer.convert_tokens_to_ids(["<unk>", "<s>", "</s>"]) == [0, 1, 2]
    assert json.loads((first / MARKER_FILE).read_text())["output_regex"] == {"pairwise": DEMO_OUTPUT_REGEX}


def test_the_demo_output_regex_is_pandalm_format() -> None:
    # The marker of demo judges built before the format moved to judge/format.py holds this exact text.
    assert DEMO_OUTPUT_REGEX == (
        r"(1|2|Tie)\n\n### Reason: [A-Za-z][A-Za-z ,.]{7,47}\n\n### Reference: [A-Za-z][A-Za-z ,.]{7,47}\n"
    )


def test_the_judge_learns_of_the_demo_from_its_folder(tmp_path: Path) -> None:
    demo = ensure_demo_model(tmp_path)
    expected = ModelProfile(demo=True, family="pandalm", output_regex=DEMO_OUTPUT_REGEX)
    assert profile_of("WeOpenML/PandaLM-7B-v1", str(demo)) == expected
    assert profile_of("WeOpenML/PandaLM-7B-v1", None) == ModelProfile()


def test_a_demo_judge_built_before_families_is_read_as_pandalms(tmp_path: Path) -> None:
    demo = ensure_demo_model(tmp_path)
    (demo / MARKER_FILE).write_text(json.dumps({"demo_version": "2", "output_regex": DEMO_OUTPUT_REGEX}))
    assert profile_of(str(demo)) == ModelProfile(demo=True, family="pandalm", output_regex=DEMO_OUTPUT_REGEX)


@pytest.mark.parametrize("name", [name for name in FAMILIES if name != "pandalm"])
def test_every_family_has_its_own_demo_judge(tmp_path: Path, name: str) -> None:
    family = FAMILIES[name]
    demo = ensure_demo_model(tmp_path, family)
    assert demo != ensure_demo_model(tmp_path) and demo.name == f"demo-{name}-v2"
    profile = profile_of(str(demo))
    assert profile.family == name and profile.output_regex == family.demo().output_regex["pairwise"]
    assert profile.grade_regex == family.demo().output_regex.get("absolute")
    tokenizer = AutoTokenizer.from_pretrained(demo)
    if family.bos == "chat":  # the demo of a chat family renders its messages with its own template
        rendered = tokenizer.apply_chat_template(
            [{"role": "system", "content": "S."}, {"role": "user", "content": "U."}], tokenize=False,
            add_generation_prompt=True,
        )  # fmt: skip
        assert "S." in rendered and "U." in rendered
    else:
        assert not tokenizer.chat_template
