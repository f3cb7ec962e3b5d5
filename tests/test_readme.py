"""The README is the front door: short, true to the code, and pointing into the docs for the rest.

What moved to the docs site is checked there (tests/docs/): the settings, the error, warning and exit-code
tables, the metrics, and every command shown.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_reads_in_five_minutes() -> None:
    assert len(README.splitlines()) <= 200


def test_quickstart_commands_exist_and_ci_runs_the_test_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("serve", "test", "test-unit", "docs", "docs-serve", "api-keys", "dist"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "make serve" in README and "make test" in README and "make docs" in README
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_it_shows_one_call_and_one_gate() -> None:
    assert README.count("curl -s localhost:8000/compare") == 1
    assert "pandalm gate --baseline" in README


def test_every_link_into_the_docs_leads_to_a_page() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README)
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).is_file(), link
    # Every page of the site's top level is reachable from the README's table.
    for page in ("getting-started", "api", "client", "ci", "configuration", "security", "performance"):
        assert f"(docs/{page}.md)" in README, page


def test_the_three_install_roles_keep_their_measured_sizes() -> None:
    rows = re.findall(
        r"^\| \*\*(Client|Front-end|Engine host|Development)\*\*.*\| ([\d.]+ [MG]B)[^|]*\|$", README, re.M
    )
    assert [role for role, _ in rows] == ["Client", "Front-end", "Engine host", "Development"]
    assert "tests/integration/test_install_roles.py" in README and "du -sh" in README
