"""The docs site in a real browser: its Mermaid diagrams render and no request leaves the host.

Material for MkDocs loads Mermaid from unpkg.com unless the page already defines it; mkdocs.yml loads the
copy vendored under docs/assets/vendor/. The site is built strictly and served from a local HTTP server.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.docs.pages import DOCS, ROOT, build_site
from tests.integration.test_page import browser, shot  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("site")
    build = build_site(out)
    assert build.returncode == 0, build.stderr[-5000:]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def diagram_pages() -> list[str]:
    """The site address of every page with a Mermaid diagram: docs/x/y.md is /x/y/, docs/index.md is /."""
    pages = [path.relative_to(DOCS) for path in sorted(DOCS.rglob("*.md")) if "```mermaid" in path.read_text()]
    return ["/" if page.name == "index.md" else f"/{page.with_suffix('').as_posix()}/" for page in pages]


@pytest.mark.parametrize("path", diagram_pages())
def test_diagrams_render_offline(browser: Browser, site: str, path: str) -> None:  # noqa: F811
    page = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(site + path, wait_until="networkidle")
    # Material replaces each `pre.mermaid` with a `div.mermaid` holding the drawn SVG in a closed shadow
    # root, once Mermaid has parsed it: a diagram that fails to parse stays a `pre`.
    expect(page.locator("div.mermaid").first).to_be_visible(timeout=30_000)
    expect(page.locator("pre.mermaid")).to_have_count(0)
    heights = page.eval_on_selector_all("div.mermaid", "ds => ds.map(d => d.getBoundingClientRect().height)")
    assert heights and min(heights) > 50, heights
    if path == "/":
        shot(page, "docs-site-home.png")
    assert [url for url in requested if not url.startswith((site + "/", "data:", "blob:"))] == []


def test_images_load(browser: Browser, site: str) -> None:  # noqa: F811
    page = browser.new_context().new_page()
    page.goto(site + "/performance/", wait_until="networkidle")
    sizes = page.eval_on_selector_all("article img", "images => images.map(i => i.naturalWidth)")
    assert sizes and all(width > 0 for width in sizes)
    assert Path(ROOT / "docs" / "images" / "playground.png").stat().st_size > 10_000
