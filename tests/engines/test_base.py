"""Every engine, the test fake included, implements the one engine interface; the judge depends on nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

from pandalm_serve.cache.engine import CachedEngine
from pandalm_serve.engines.base import Engine
from pandalm_serve.engines.remote import RemoteEngine
from pandalm_serve.engines.vllm import VLLMEngine
from pandalm_serve.metrics import Metrics
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine

JUDGE = Path(__file__).resolve().parents[2] / "service" / "pandalm_serve" / "judge"


def test_every_engine_implements_the_interface() -> None:
    # mypy checks these assignments against the protocol's signatures; isinstance checks the members.
    fake: Engine = FakeEngine()
    remote: Engine = RemoteEngine(Settings(engine="remote", remote_url="http://127.0.0.1:1"))
    vllm: Engine = VLLMEngine(Settings())
    cached: Engine = CachedEngine(fake, None, Metrics(), revision=None, template_version="pandalm-v1")
    for engine in (fake, remote, vllm, cached):
        assert isinstance(engine, Engine)


def test_the_judge_never_branches_on_the_engine() -> None:
    for module in JUDGE.glob("*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engines"):
                assert node.module == "engines.base", f"{module.name} imports {node.module}"
            if isinstance(node, ast.Attribute) and node.attr == "name":
                assert not (isinstance(node.value, ast.Attribute) and node.value.attr == "engine"), module.name
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in {"vllm", "remote"}, f"{module.name} names an engine"
