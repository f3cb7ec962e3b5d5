"""The docs site: built strictly (a broken link or anchor, or a page left out, fails), generated pages and
figures current, and nothing fetched from the internet by the build or by a reader's browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.pages import DOCS, ROOT, build_site, nav_pages, site_config

GENERATORS = ["docs_reference.py", "docs_figures.py"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = build_site(out)
    assert build.returncode == 0, build.stderr[-5000:]
    return out


def test_the_site_builds_strictly_with_every_page_in_its_navigation(site: Path) -> None:
    pages = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert nav_pages(site_config()["nav"]) == pages
    assert (site / "index.html").is_file() and (site / "operations" / "runbooks" / "PandaLMKVCacheFull").is_dir()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    broken = copy / "docs" / "security.md"
    broken.write_text(broken.read_text() + "\nSee [the missing page](nowhere.md).\n")
    build = build_site(tmp_path / "site", root=copy)
    assert build.returncode != 0 and "nowhere.md" in build.stderr


def test_no_page_loads_anything_from_the_internet(site: Path) -> None:
    config = site_config()
    assert config["theme"]["font"] is False  # Material would load Google Fonts
    # Material loads Mermaid from unpkg.com unless a `mermaid` global exists: the vendored script defines it.
    assert config["extra_javascript"] == ["assets/vendor/mermaid/mermaid.min.js"]
    mermaid = DOCS / "assets" / "vendor" / "mermaid" / "mermaid.min.js"
    assert 'globalThis["mermaid"] =' in mermaid.read_text()[-3000:]
    for html in site.rglob("*.html"):
        text = html.read_text()
        fetched = re.findall(r'<(?:script|img|iframe)[^>]+src="(https?:[^"]+)"', text)
        # A canonical link names the page's published address; the browser fetches nothing for it.
        fetched += [tag for tag in re.findall(r"<link[^>]+>", text) if "https:" in tag and 'rel="canonical"' not in tag]
        assert fetched == [], html


@pytest.mark.parametrize("script", GENERATORS)
def test_the_generated_pages_and_figures_are_current(script: str) -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--check"], capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stderr


def test_check_names_a_stale_page(tmp_path: Path) -> None:
    # The generator's --check in a copy of the repository's layout, with the configuration page edited by hand.
    (tmp_path / "scripts").mkdir()
    for name in ("docs_reference.py", "generated.py"):
        shutil.copy(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    shutil.copytree(DOCS, tmp_path / "docs")
    page = tmp_path / "docs" / "configuration.md"
    page.write_text(page.read_text().replace("Address to listen on.", "Edited by hand."))
    check = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "docs_reference.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 1 and "docs/configuration.md is stale" in check.stderr
