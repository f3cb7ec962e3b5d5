"""Which judges the service runs: `--judge NAME=FAMILY:MODEL` flags and a judges file, read into one spec each.

Each judge gets its own settings: the server's, with its family's reference decoding where the operator set
none (families/<name>.py `defaults`), then what its `--judge` or judges-file entry says (its model, engine,
remote URL, or any engine or decoding setting). Without any, the service runs today's single PandaLM judge.
Every problem is found here, at start-up, naming the flag or the file's entry.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .families import FAMILIES, family_named
from .families.base import Family
from .families.pandalm import PANDALM
from .settings import Settings

# What a judges-file entry may set of its own, besides name, family and model: the engine's and decoding settings.
JUDGE_SETTINGS = frozenset(
    {
        "engine", "revision", "tokenizer", "bos_token", "dtype", "max_model_len", "tensor_parallel_size",
        "data_parallel_size", "gpu_memory_utilization", "kv_cache_gib", "enable_prefix_caching", "batch_invariant",
        "remote_url", "remote_model", "remote_prompt_format", "remote_api_key", "remote_timeout_s",
        "remote_max_connections", "remote_max_retries", "preset", "max_new_tokens", "repetition_penalty",
        "beam_width", "truncate", "mode", "swap", "cache", "neutralize_headers",
    }
)  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEMO = "demo"
REMOTE_PREFIX = "remote:"


class JudgeConfigError(ValueError):
    """A judge that cannot be configured as given; the message names the flag or the file's entry."""


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """One judge to run: its name, family, own settings, and whether it serves its family's demo judge."""

    name: str
    family: Family
    settings: Settings
    demo: bool = False
    # False for the single PandaLM judge of a service configured without judges (its cache keys stay as before).
    configured: bool = True


def judge_specs(settings: Settings) -> list[JudgeSpec]:
    """Every judge the settings configure, the default first."""
    entries = [_flag_entry(flag) for flag in settings.judge]
    if settings.judges_file is not None:
        entries += _file_entries(settings.judges_file)
    if not entries:
        return [JudgeSpec(PANDALM.name, PANDALM, settings, configured=False)]
    specs = [_spec(settings, entry, where) for entry, where in entries]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise JudgeConfigError(f"two judges are named {spec.name!r}: each needs its own name")
        seen.add(spec.name)
    return specs


def _flag_entry(flag: str) -> tuple[dict[str, Any], str]:
    where = f"--judge {flag!r}"
    name, equals, rest = flag.partition("=")
    family, colon, model = rest.partition(":")
    if not (equals and colon and name and family and model):
        raise JudgeConfigError(f"{where}: write NAME=FAMILY:MODEL, e.g. panda=pandalm:demo")
    return {"name": name, "family": family, "model": model}, where


def _file_entries(path: Any) -> list[tuple[dict[str, Any], str]]:
    try:
        document = tomllib.loads(path.read_text())
    except OSError as exc:
        raise JudgeConfigError(f"cannot read the judges file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise JudgeConfigError(f"the judges file {path} is not valid TOML: {exc}") from None
    extra = set(document) - {"judges"}
    tables = document.get("judges")
    if extra or not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise JudgeConfigError(f"the judges file {path} must hold `[[judges]]` tables only")
    return [(table, f"{path}: judge #{i + 1}") for i, table in enumerate(tables)]


def _spec(settings: Settings, entry: dict[str, Any], where: str) -> JudgeSpec:
    name, family_name, model = entry.get("name"), entry.get("family"), entry.get("model")
    if not isinstance(name, str) or not _NAME.match(name):
        raise JudgeConfigError(f"{where}: `name` must be 1 to 64 letters, digits, `.`, `_` or `-`")
    if family_name not in FAMILIES:
        raise JudgeConfigError(f"{where}: unknown family {family_name!r}; known: {', '.join(FAMILIES)}")
    if not isinstance(model, str) or not model:
        raise JudgeConfigError(f"{where}: `model` is needed: a folder or hub name, `demo` or `remote:URL`")
    unknown = sorted(set(entry) - {"name", "family", "model"} - JUDGE_SETTINGS)
    if unknown:
        raise JudgeConfigError(
            f"{where}: {', '.join(unknown)} cannot be set per judge; "
            f"a judge may set: {', '.join(sorted(JUDGE_SETTINGS))}"
        )
    family = family_named(family_name)
    own: dict[str, Any] = {k: v for k, v in entry.items() if k in JUDGE_SETTINGS}
    demo = model == DEMO
    if model.startswith(REMOTE_PREFIX):
        own.update(engine="remote", remote_url=model.removeprefix(REMOTE_PREFIX), model=None)
    elif demo:
        own.update(engine="vllm", model=None)
    else:
        own["model"] = model
    values = settings.model_dump()
    values.update(_family_defaults(settings, family, own.get("max_model_len", settings.max_model_len)))
    values.update(own, judge=[], judges_file=None)
    try:
        judge_settings = Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise JudgeConfigError(f"{where}: {problems}") from None
    return JudgeSpec(name, family, judge_settings, demo=demo)


def _family_defaults(settings: Settings, family: Family, context_length: int) -> dict[str, Any]:
    """The family's reference decoding, for the settings the operator did not set himself. The answer's room is
    at most half the context, so that a prompt has the other half (FastChat's 2048 new tokens would leave a
    2048-token model none)."""
    max_new_tokens = family.defaults.max_new_tokens
    defaults = {
        "repetition_penalty": family.defaults.repetition_penalty,
        "max_new_tokens": min(max_new_tokens, context_length // 2) if max_new_tokens is not None else None,
    }
    return {k: v for k, v in defaults.items() if v is not None and k not in settings.model_fields_set}
