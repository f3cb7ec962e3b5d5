"""Every alert links to its runbook: a page of the docs site, listed in its navigation and on the alerts page."""

from __future__ import annotations

import re

from tests.deploy.monitoring import rules
from tests.docs.pages import DOCS, nav_pages, page, site_config

RUNBOOKS = DOCS / "operations" / "runbooks"


def test_every_alert_has_a_runbook_url_to_its_page() -> None:
    site_url = site_config()["site_url"]
    alerts = [rule for rule in rules() if "alert" in rule]
    assert alerts
    for rule in alerts:
        url = rule["annotations"].get("runbook_url")
        assert url == f"{site_url}operations/runbooks/{rule['alert']}/", rule["alert"]
        # MkDocs publishes docs/x/y.md at <site_url>x/y/.
        source = DOCS / (url.removeprefix(site_url).rstrip("/") + ".md")
        assert source.is_file(), source
        assert f"operations/runbooks/{rule['alert']}.md" in nav_pages(site_config()["nav"])


def test_each_runbook_is_one_alerts_and_says_what_to_check_and_do() -> None:
    alerts = {rule["alert"]: rule for rule in rules() if "alert" in rule}
    assert {path.stem for path in RUNBOOKS.glob("*.md")} == set(alerts)  # none for an alert that is gone
    for name, rule in alerts.items():
        text = (RUNBOOKS / f"{name}.md").read_text()
        assert text.startswith(f"# {name}\n")
        assert f"**Severity:** {rule['labels']['severity']}." in text
        for section in ("## What fired", "## What it means for users", "## Check", "## Fix"):
            assert section in text, (name, section)


def test_the_alerts_page_lists_every_alert_with_its_runbook() -> None:
    listed = re.findall(
        r"^\| \[`(\w+)`\]\(runbooks/(\w+)\.md\) \| .* \| (page|ticket) \|$", page("operations/alerts.md"), re.M
    )
    alerts = {rule["alert"]: rule["labels"]["severity"] for rule in rules() if "alert" in rule}
    assert {name: severity for name, target, severity in listed if name == target} == alerts
