"""`/docs` and `/redoc` render their operations in a real browser with no request leaving the host.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, and are blank without internet; the service serves
their assets itself. Every request the browser starts is recorded: each goes to the service, or was refused
by the browser under the pages' Content-Security-Policy before it was sent (ReDoc's footer logo).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine
from tests.integration.test_page import browser, shot  # noqa: F401  (the browser fixture)
from tests.support import serving

pytestmark = pytest.mark.integration

OPERATIONS = ["/compare", "/batch", "/healthz", "/readyz", "/info", "/metrics", "/cache"]


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    with serving(create_app(Settings(), engine=FakeEngine())) as url:
        yield url


def visit(browser: Browser, url: str) -> tuple[Page, list[str], set[str]]:  # noqa: F811
    """A page at `url`, with every URL it asked for, and those the browser refused under the page's CSP."""
    page = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
    requested: list[str] = []
    refused: set[str] = set()
    page.on("request", lambda request: requested.append(request.url))

    def failed(request: Request) -> None:
        if request.failure == "csp":
            refused.add(request.url)

    page.on("requestfailed", failed)
    page.goto(url, wait_until="networkidle")
    return page, requested, refused


def only_local(requested: list[str], refused: set[str], service: str) -> None:
    outside = [url for url in requested if not url.startswith((service + "/", "data:", "blob:"))]
    assert set(outside) <= refused, outside


def test_swagger_ui_renders_every_operation_offline(browser: Browser, service: str) -> None:  # noqa: F811
    page, requested, refused = visit(browser, service + "/docs")
    for path in OPERATIONS:
        expect(page.locator(f'.opblock-summary-path[data-path="{path}"]').first).to_be_visible(timeout=30_000)
    page.locator('.opblock-summary-path[data-path="/compare"]').first.click()  # the schema expands
    expect(page.get_by_text("CompareRequest").first).to_be_visible()
    shot(page, "docs-swagger.png")
    only_local(requested, refused, service)
    assert f"{service}/openapi.json" in requested


def test_redoc_renders_every_operation_offline(browser: Browser, service: str) -> None:  # noqa: F811
    page, requested, refused = visit(browser, service + "/redoc")
    expect(page.locator("h2", has_text="Judge one pair of responses")).to_be_visible(timeout=30_000)
    for path in OPERATIONS:
        expect(page.locator("body")).to_contain_text(path)
    shot(page, "docs-redoc.png")
    only_local(requested, refused, service)
