from __future__ import annotations

from pathlib import Path

import pytest

from pandalm_serve.cli import load_settings
from pandalm_serve.judges import JudgeConfigError, judge_specs
from pandalm_serve.settings import Settings


def test_without_judges_the_service_runs_todays_pandalm_judge() -> None:
    settings = Settings(model="some/folder")
    (spec,) = judge_specs(settings)
    assert (spec.name, spec.family.name, spec.settings, spec.configured) == ("pandalm", "pandalm", settings, False)


def test_judge_flags_are_repeatable_and_name_family_and_model() -> None:
    specs = judge_specs(load_settings(["--judge", "a=pandalm:demo", "--judge", "b=judgelm:/models/judgelm",
                                       "--judge", "c=mtbench:remote:http://gpu2:8000"]))  # fmt: skip
    assert [(s.name, s.family.name, s.demo) for s in specs] == [
        ("a", "pandalm", True),
        ("b", "judgelm", False),
        ("c", "mtbench", False),
    ]
    assert specs[1].settings.model == "/models/judgelm" and specs[1].settings.engine == "vllm"
    assert (specs[2].settings.engine, specs[2].settings.remote_url) == ("remote", "http://gpu2:8000")


def test_each_family_gets_its_references_decoding_unless_the_operator_set_it() -> None:
    a, b = judge_specs(Settings(judge=["a=pandalm:demo", "b=judgelm:demo"]))
    assert a.settings.repetition_penalty == 1.2 and b.settings.repetition_penalty == 1.0
    # JudgeLM's 2048 new tokens leave a 2048-token model no room for a prompt: half the context at most.
    assert b.settings.max_new_tokens == 1024
    (b,) = judge_specs(Settings(judge=["b=judgelm:demo"], repetition_penalty=1.1, max_new_tokens=64))
    assert (b.settings.repetition_penalty, b.settings.max_new_tokens) == (1.1, 64)


def test_a_judges_file_sets_each_judges_own_settings(tmp_path: Path) -> None:
    path = tmp_path / "judges.toml"
    path.write_text(
        '[[judges]]\nname = "p"\nfamily = "prometheus2"\nmodel = "remote:http://h:1"\nmax_new_tokens = 300\n'
        '\n[[judges]]\nname = "m"\nfamily = "mtbench"\nmodel = "/m"\nmax_model_len = 4096\n'
    )
    first, p, m = judge_specs(Settings(judge=["panda=pandalm:demo"], judges_file=path))
    assert first.name == "panda"
    assert (p.settings.engine, p.settings.remote_url, p.settings.max_new_tokens) == ("remote", "http://h:1", 300)
    assert (m.settings.model, m.settings.max_model_len, m.settings.max_new_tokens) == ("/m", 4096, 2048)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("panda", "write NAME=FAMILY:MODEL"),
        ("a=gpt4:demo", "unknown family 'gpt4'"),
        ("a b=pandalm:demo", "`name` must be"),
        ("a=pandalm:remote:", "needs --remote-url"),
    ],
)
def test_a_judge_flag_that_cannot_be_served_is_refused_naming_it(flag: str, message: str) -> None:
    with pytest.raises(JudgeConfigError, match=message) as error:
        judge_specs(Settings(judge=[flag]))
    assert "--judge" in str(error.value)


def test_two_judges_of_one_name_are_refused() -> None:
    with pytest.raises(JudgeConfigError, match="two judges are named 'a'"):
        judge_specs(Settings(judge=["a=pandalm:demo", "a=judgelm:demo"]))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[judges]]\nname = 'a'\nfamily = 'pandalm'\nmodel = 'demo'\nport = 1\n", "port cannot be set per judge"),
        ("[[judges]]\nname = 'a'\nfamily = 'pandalm'\n", "`model` is needed"),
        ("judges = 3\n", "must hold `\\[\\[judges\\]\\]` tables only"),
        ("[[judges]\n", "not valid TOML"),
        ("[[judges]]\nname = 'a'\nfamily = 'pandalm'\nmodel = 'demo'\nmax_new_tokens = 0\n", "max_new_tokens"),
    ],
)
def test_a_judges_file_entry_that_cannot_be_served_is_refused_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "judges.toml"
    path.write_text(text)
    with pytest.raises(JudgeConfigError, match=message):
        judge_specs(Settings(judges_file=path))
