"""The README is the front door: it must stay true to the code."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pandalm_client.models import WarningCode
from pandalm_serve.app import create_app
from pandalm_serve.errors import ERRORS
from pandalm_serve.settings import CLIENT_VARIABLES, Settings
from tests.fakes import FakeEngine
from tests.support import api_operations

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(PANDALM_[A-Z_]+)`", README)) - CLIENT_VARIABLES
    assert documented == {f"PANDALM_{name.upper()}" for name in Settings.model_fields}


def test_every_endpoint_is_documented() -> None:
    for path, methods in api_operations(create_app(Settings(), engine=FakeEngine())).items():
        assert any(f"`{method} {path}`" in README for method in methods), path
    assert "`GET /`" in README  # the page, outside the OpenAPI document


def test_quickstart_commands_exist_and_ci_runs_the_test_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^serve:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make serve" in README and "make test" in README
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")


def test_the_error_table_is_the_servers() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \| ", README, re.M)
    assert {code: int(status) for code, status in rows} == {code: spec.status for code, spec in ERRORS.items()}
    assert len(rows) == len(ERRORS)  # each code once


def test_every_warning_code_is_documented() -> None:
    warnings = README.split("**Warnings.**")[1].split("**Errors.**")[0]
    for code in typing.get_args(WarningCode):
        assert f"`{code}`" in warnings, code


def test_the_exit_code_table_is_the_commands() -> None:
    from pandalm_client.cli import _errors

    table = README.split("**Exit codes.**")[1].split("\n\n")[1]
    rows = [int(code) for code in re.findall(r"^\| (\d) \| ", table, re.M)]
    assert rows == sorted(value for name, value in vars(_errors).items() if name.startswith("EXIT_"))
    # Each error the command line turns into 2 is in the table's row for 2.
    usage = table.splitlines()[4]
    for cause in ("401/403", "422", "http(s)", "--allow-demo", "prompt_too_long"):
        assert cause in usage, cause
