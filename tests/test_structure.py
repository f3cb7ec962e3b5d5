"""The layers, read from the source: engines are leaves, and no module imports itself back through others.

Data flows one way, route -> judge -> engine: an engine that imported the judge, the model resolution (which
knows the demo judge) or the cache would run back up the layers, and a cycle makes two modules one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"pandalm_serve": ROOT / "service" / "pandalm_serve", "pandalm_client": ROOT / "client" / "pandalm_client"}


def module_name(path: Path, package: str) -> str:
    parts = [package, *path.relative_to(PACKAGES[package]).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(PACKAGES[package].rglob("*.py"))}


ALL = {**modules("pandalm_serve"), **modules("pandalm_client")}


def imported(name: str, path: Path) -> Iterator[str]:
    """The project's modules that `name` imports, anywhere in it (a function's lazy import counts too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports that module; `from module import name`, the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in ALL else base for alias in node.names]
        else:
            continue
        yield from (target for target in targets if target in ALL and target != name)


GRAPH = {name: sorted(set(imported(name, path))) for name, path in ALL.items()}


def test_the_graph_sees_the_imports_it_is_about() -> None:
    # A check of the reader itself: these edges exist today, so a reader that missed them would pass anything.
    assert "pandalm_serve.engines.base" in GRAPH["pandalm_serve.engines.vllm"]
    assert "pandalm_serve.families.base" in GRAPH["pandalm_serve.judge.reading"]
    assert "pandalm_client.models" in GRAPH["pandalm_client._client"]


@pytest.mark.parametrize("engine", [name for name in GRAPH if name.startswith("pandalm_serve.engines.")])
def test_engines_are_leaves(engine: str) -> None:
    above = ("pandalm_serve.judge", "pandalm_serve.model", "pandalm_serve.demo", "pandalm_serve.cache")
    assert [m for m in GRAPH[engine] if m.startswith(above)] == []


def test_metrics_know_nothing_of_engines() -> None:
    assert [m for m in GRAPH["pandalm_serve.metrics"] if m.startswith("pandalm_serve.engines")] == []


def cycles() -> list[list[str]]:
    """Every import cycle, each once, as the modules on it (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert cycles() == []
