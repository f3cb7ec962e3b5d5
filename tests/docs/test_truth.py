"""What the docs show is what the code does: every command and flag they show, against its `--help`; the
settings, the endpoints, the error, warning and exit-code tables, the metric names and the sample result."""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
import shlex
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from pandalm_client.models import CompareResult, WarningCode
from pandalm_serve.app import create_app
from pandalm_serve.errors import ERRORS
from pandalm_serve.metrics import Metrics
from pandalm_serve.settings import CLIENT_VARIABLES, Settings
from tests.deploy.monitoring import judge_labels
from tests.docs.pages import ROOT, code_fragments, every_page, page
from tests.fakes import FakeEngine
from tests.support import api_operations

# Flags the docs show for commands this project does not own, and cannot ask for their --help cheaply:
# vLLM's OpenAI server (importing vLLM's parser takes a minute here), pip, the docs scripts' --check, and
# the placeholders for any flag (`--flag`) and any boolean (`--name`, `--no-name`).
OTHER_FLAGS = {"--logprobs-mode", "--retries", "--check", "--flag", "--name", "--no-name"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def flags_in(help_text: str) -> set[str]:
    return set(FLAG.findall(help_text))


def pandalm_parsers() -> dict[str, argparse.ArgumentParser]:
    """`pandalm`'s subcommands by name, and the command itself under ''."""
    from pandalm_client.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"": parser, **commands.choices}


@functools.cache
def help_of(command: str) -> str:
    """What `<command> --help` prints: in process for this project's own commands, else by running it."""
    if command == "pandalm-serve":
        from pandalm_serve.cli import build_parser

        return build_parser().format_help()
    if command.startswith("pandalm"):
        return pandalm_parsers()[command.removeprefix("pandalm").strip()].format_help()
    # vllm-router's command sits beside this interpreter (the dev extra installs it in the same venv).
    router = [str(Path(sys.executable).parent / "vllm-router")]
    argv = {"vllm-router": router}.get(command) or [sys.executable, *command.split()[1:]]
    shown = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert shown.returncode == 0, (command, shown.stderr[-2000:])
    return shown.stdout


def invocation(fragment: str) -> tuple[str, list[str]] | None:
    """The command a code line runs (`pandalm gate`, `python -m pandalm_serve.jobs.ray_batch`...) and its words."""
    try:
        words = shlex.split(fragment, comments=True)
    except ValueError:
        words = fragment.split()
    words = [w.removeprefix(".venv/bin/").strip("[]") for w in words]
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VARIABLE=value before the command
        words = words[1:]
    for end, word in enumerate(words):
        if word in {"&", "&&", "|", ";"}:
            words = words[:end]
            break
    if not words:
        return None
    if words[0] == "pandalm":
        sub = next((w for w in words[1:] if not w.startswith("-")), "")
        if sub not in pandalm_parsers():
            pytest.fail(f"`pandalm {sub}` is not a subcommand: {fragment}")
        return f"pandalm {sub}".strip(), words
    if words[0] in {"pandalm-serve", "vllm-router"}:
        return words[0], words
    if words[:3] == ["python", "-m", words[2] if len(words) > 2 else ""] and words[2].startswith("pandalm_serve."):
        return " ".join(words[:3]), words
    if len(words) > 1 and words[0] == "python" and re.fullmatch(r"(benchmarks|scripts)/\w+\.py", words[1]):
        return f"python {words[1]}", words
    return None


def shown_commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for name, text in every_page().items():
        for fragment in code_fragments(text):
            command = invocation(fragment.strip())
            if command is not None:
                found.append((name, *command))
    return found


def test_every_command_shown_takes_the_flags_shown() -> None:
    commands = shown_commands()
    assert {"pandalm gate", "pandalm-serve", "vllm-router", "python -m pandalm_serve.jobs.ray_batch"} <= {
        command for _, command, _ in commands
    }
    for name, command, words in commands:
        known = flags_in(help_of(command))
        for word in words:
            if word.startswith("--"):
                flag = word.split("=")[0].replace("--[no-]", "--")
                assert flag in known, f"{name}: `{command}` has no {flag} (see `{command} --help`)"


def test_every_flag_named_alone_is_a_flag_of_a_command_shown() -> None:
    known = OTHER_FLAGS | set().union(*(flags_in(help_of(command)) for _, command, _ in shown_commands()))
    known |= set().union(*(flags_in(p.format_help()) for p in pandalm_parsers().values()))
    for name, text in every_page().items():
        for fragment in code_fragments(text):
            if fragment.startswith("--"):
                flag = fragment.split()[0].split("=")[0].replace("--[no-]", "--")
                assert flag in known, f"{name}: `{fragment}` is no command's flag"


def test_every_setting_is_on_the_configuration_page_and_no_other_variable_anywhere() -> None:
    settings = {f"PANDALM_{name.upper()}" for name in Settings.model_fields}
    assert set(re.findall(r"`(PANDALM_[A-Z_]+)`", page("configuration.md"))) - CLIENT_VARIABLES == settings
    for name, text in every_page().items():
        named = set(re.findall(r"\b(PANDALM_[A-Z_]+[A-Z])\b", text)) - {"PANDALM_NAME"}
        assert named <= settings | CLIENT_VARIABLES, (name, named - settings - CLIENT_VARIABLES)


def test_every_endpoint_is_on_the_api_page() -> None:
    api = page("api.md")
    for path, methods in api_operations(create_app(Settings(), engine=FakeEngine())).items():
        assert any(f"`{method} {path}`" in api for method in methods), path
    assert "`GET /`" in api  # the page, outside the OpenAPI document


def test_the_error_table_is_the_servers() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \| ", page("api.md"), re.M)
    assert {code: int(status) for code, status in rows} == {code: spec.status for code, spec in ERRORS.items()}
    assert len(rows) == len(ERRORS)  # each code once


def test_every_warning_code_is_documented() -> None:
    warnings = page("api.md").split("## Warnings")[1].split("## Errors")[0]
    for code in typing.get_args(WarningCode):
        assert f"`{code}`" in warnings, code


def test_the_exit_code_table_is_the_commands() -> None:
    from pandalm_client.cli import _errors

    table = page("ci.md").split("## Exit codes")[1].split("\n\n")[2]
    rows = [int(code) for code in re.findall(r"^\| (\d) \| ", table, re.M)]
    assert rows == sorted(value for name, value in vars(_errors).items() if name.startswith("EXIT_"))
    # Each error the command line turns into 2 is in the table's row for 2.
    usage = table.splitlines()[4]
    for cause in ("401/403", "422", "http(s)", "--allow-demo", "prompt_too_long"):
        assert cause in usage, cause


def python_names() -> set[str]:
    """Every function, class and variable name the packages define (`pandalm_scorer` is one, not a metric)."""
    names: set[str] = set()
    for package in ("service/pandalm_serve", "client/pandalm_client"):
        for module in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(module.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(node.name)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
    return names


def test_every_metric_named_is_the_services_and_each_is_on_the_metrics_page() -> None:
    series = set(judge_labels())
    histograms = {s.removesuffix("_bucket") for s in series if s.endswith("_bucket")}
    metrics_page = page("operations/metrics.md")
    for name in series - {s for s in series if s.endswith(("_bucket", "_sum", "_count"))} | histograms:
        assert f"`{name}`" in metrics_page, name
    not_metrics = {"pandalm_serve", "pandalm_client", "pandalm_test"} | python_names()
    for name, text in every_page().items():
        named = set(re.findall(r"\bpandalm_[a-z_]+[a-z]\b", text)) - not_metrics
        assert named <= series | histograms, (name, named - series - histograms)
    assert len(vars(Metrics())) > 10


def test_the_sample_result_is_a_whole_compare_result() -> None:
    (sample,) = re.findall(r"```json\n(\{.*?\})\n```", page("getting-started.md"), re.S)
    result = json.loads(sample)
    assert list(result) == list(CompareResult.model_fields)  # every field, in the order the service writes
    CompareResult.model_validate(result)


def test_the_options_table_is_the_requests_options() -> None:
    from pandalm_client.models import JudgeOptions

    options = page("api.md").split("## Options")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ", options, re.M)
    assert rows == list(JudgeOptions.model_fields)


def test_the_command_table_has_every_subcommand_once() -> None:
    rows = re.findall(r"^\| `pandalm ([a-z]+)[ `]", page("client.md"), re.M)
    assert sorted(rows) == sorted(name for name in pandalm_parsers() if name)
