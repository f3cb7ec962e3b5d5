"""The playground page in a real browser: Debian's Chromium, driven by Playwright with that browser as its
executable (Playwright's own browser download cannot run here). Screenshots go to .test-artifacts/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine
from tests.support import CAPITAL_PAIR, serving
from tests.system_tools import ROOT, installed_binary

pytestmark = pytest.mark.integration

SCREENSHOTS = ROOT / ".test-artifacts" / "screenshots"
# As this machine's notes advise: no sandbox as root, and no background traffic to the closed network.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = installed_binary("chromium", "chromium", path="/usr/bin/chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 420, "height": 900})  # a narrow screen
    page = context.new_page()
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_a_newcomer_judges_a_pair_on_the_page(page: Page, vllm_service: str) -> None:
    page.goto(vllm_service + "/")
    expect(page.locator("#demo")).to_be_visible()  # the demo judge says so
    page.get_by_label("Instruction").fill(CAPITAL_PAIR["instruction"])
    page.get_by_label("Response 1").fill(CAPITAL_PAIR["response1"])
    page.get_by_label("Response 2").fill(CAPITAL_PAIR["response2"])
    page.get_by_label("Judge both orders (swap)").check()
    page.get_by_role("button", name="Judge", exact=True).click()
    verdict = page.locator("#verdict .verdict")
    expect(verdict).to_have_text(re.compile(r"^(Response 1 is better|Response 2 is better|Tie)$"), timeout=120_000)
    expect(page.locator("#verdict .bar")).to_have_count(3)
    expect(page.locator("#verdict table tr")).to_have_count(3)  # a header and the two orders
    shot(page, "compare.png")


def test_a_small_batch_streams_with_progress_and_a_summary(page: Page, vllm_service: str, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    rows = [{**CAPITAL_PAIR, "id": f"p{i}", "response2": f"Lyon, number {i}."} for i in range(6)]
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows))
    page.goto(vllm_service + "/")
    page.get_by_label("JSONL file").set_input_files(str(pairs))
    expect(page.locator("#batch-status")).to_have_text("6 pairs read from pairs.jsonl.")
    page.get_by_role("button", name="Judge the file").click()
    expect(page.locator("#summary")).to_be_visible(timeout=120_000)
    assert page.locator("#batch-progress").get_attribute("value") == "6"
    expect(page.locator("#batch-status")).to_have_text("6 of 6 pairs judged.")
    with page.expect_download() as download_info:
        page.locator("#download").click()
    downloaded = download_info.value.path().read_text().splitlines()
    assert [json.loads(line)["id"] for line in downloaded] == [f"p{i}" for i in range(6)]
    shot(page, "batch.png")


def test_with_api_keys_the_page_shows_the_401_then_works_with_a_key(page: Page, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("playground page-key-123\n")
    app = create_app(Settings(api_keys_file=keys), engine=FakeEngine())
    with serving(app) as url:
        page.goto(url + "/")
        page.get_by_label("Instruction").fill("Add 2 and 2.")
        page.get_by_label("Response 1").fill("4")
        page.get_by_label("Response 2").fill("5")
        page.get_by_role("button", name="Judge", exact=True).click()
        expect(page.locator("#compare-output .error")).to_contain_text("a valid API key is needed")
        expect(page.locator("#compare-output .error")).to_contain_text("unauthorized, HTTP 401")
        shot(page, "unauthorized.png")
        page.get_by_label("Key (kept in this browser tab only", exact=False).fill("page-key-123")
        page.get_by_role("button", name="Judge", exact=True).click()
        expect(page.locator("#verdict .verdict")).to_have_text("Response 1 is better")
        expect(page.locator("#model")).to_contain_text("Judge: ")  # /info, asked again with the key
        assert page.evaluate("sessionStorage.getItem('pandalm-api-key')") == "page-key-123"
        assert page.evaluate("localStorage.length") == 0  # never kept beyond the tab


def test_the_judge_selector_lists_the_servers_judges_and_the_result_names_its_judge(page: Page) -> None:
    engines = {"panda": FakeEngine(), "jlm": FakeEngine("2 9\nAssistant 2 is better.")}
    app = create_app(Settings(judge=["panda=pandalm:demo", "jlm=judgelm:demo"]), engines=engines)
    with serving(app) as url:
        page.goto(url + "/")
        selector = page.get_by_label("Judge", exact=True)
        expect(selector.locator("option")).to_have_count(3)  # the default, then each pairwise judge
        selector.select_option("jlm")
        page.get_by_label("Instruction").fill("Add 2 and 2.")
        page.get_by_label("Response 1").fill("5")
        page.get_by_label("Response 2").fill("4")
        page.get_by_role("button", name="Judge", exact=True).click()
        expect(page.locator("#verdict .verdict")).to_have_text("Response 2 is better")
        expect(page.locator("#verdict")).to_contain_text("Judged by jlm.")
        expect(page.locator("#verdict")).to_contain_text("Scores: 2 and 9")
        shot(page, "judge-selector.png")
    assert engines["panda"].prompts == [] and len(engines["jlm"].prompts) == 1
