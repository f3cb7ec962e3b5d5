"""The docs as the tests read them: every page's Markdown, its code, and the site's configuration."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def page(name: str) -> str:
    """One page's Markdown, by its path under docs/."""
    return (DOCS / name).read_text()


def every_page() -> dict[str, str]:
    """Every Markdown page of the site, and the README, by path relative to the repository."""
    files = [README, *sorted(DOCS.rglob("*.md"))]
    return {str(path.relative_to(ROOT)): path.read_text() for path in files}


def code_fragments(markdown: str) -> list[str]:
    """The text of every fenced code block (one fragment a line, continuations joined) and inline code span."""
    fragments: list[str] = []
    fence = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
    for block in fence.findall(markdown):
        fragments += block.replace("\\\n", " ").splitlines()
    prose = fence.sub("", markdown)
    fragments += re.findall(r"`([^`\n]+)`", prose)
    return fragments


def site_config() -> dict[str, Any]:
    """mkdocs.yml, read without running the Python tags it names (pymdownx's fence formatter)."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", lambda loader, suffix, node: suffix)
    config: dict[str, Any] = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)
    return config


def nav_pages(nav: Any) -> set[str]:
    """Every page the site's navigation lists."""
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, list):
        return set().union(*(nav_pages(item) for item in nav))
    if isinstance(nav, dict):
        return set().union(*(nav_pages(value) for value in nav.values()))
    return set()


def build_site(out: Path, root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of the site at `root` into `out`, as `make docs` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=root, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
