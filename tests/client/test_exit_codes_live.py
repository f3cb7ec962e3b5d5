"""The `pandalm` exit codes case by case through the real service, the command in its own process as CI runs it.

The service runs under uvicorn on loopback with API keys on, a scripted engine in place of vLLM (a judge
whose preference is known: the longer response); the demo case marks the engine's model folder as the
demo judge, as `pandalm-serve` does. tests/client/test_cli_errors.py holds the finer cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pandalm_serve.app import create_app
from pandalm_serve.demo import MARKER_FILE
from pandalm_serve.errors import EngineError
from pandalm_serve.settings import Settings
from pandalm_serve.tools.processes import free_port
from tests.client.test_gate_end_to_end import prefers_longer, write
from tests.fakes import FakeEngine
from tests.support import serving

KEY = "ci-t0ken"


@pytest.fixture(scope="module")
def keyed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    keys = tmp_path_factory.mktemp("keys") / "keys"
    keys.write_text(f"ci-bot {KEY}\n")
    with serving(create_app(Settings(api_keys_file=keys), engine=FakeEngine(prefers_longer))) as url:
        yield url


def pandalm(*args: str, key: str | None = None, **extra_env: str) -> tuple[int, str, str]:
    """`pandalm ARGS` in its own process; only the API key given here is in its environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PANDALM_URL", "PANDALM_API_KEY")}
    env.update(extra_env)
    if key is not None:
        env["PANDALM_API_KEY"] = key
    run = subprocess.run(
        [sys.executable, "-m", "pandalm_client.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )
    return run.returncode, run.stdout, run.stderr


def gate_args(url: str, tmp_path: Path, baseline: list[str], candidate: list[str]) -> list[str]:
    base, cand = write(tmp_path / "base.jsonl", baseline), write(tmp_path / "cand.jsonl", candidate)
    return ["gate", "--url", url, "--baseline", str(base), "--candidate", str(cand),
            "--out", str(tmp_path / "gate"), "--log", str(tmp_path / "log.jsonl")]  # fmt: skip


EQUAL = [f"Answer number {i}." for i in range(60)]  # an equal candidate passes from 42 all-tied prompts
PAIR = ["--instruction", "Add 2 and 2.", "--response1", "4", "--response2", "five"]


def test_401_is_exit_2_whether_the_key_is_missing_or_wrong(keyed_url: str, tmp_path: Path) -> None:
    args = gate_args(keyed_url, tmp_path, EQUAL, EQUAL)
    code, _, err = pandalm(*args)
    assert code == 2 and "HTTP 401" in err and "no API key was sent" in err
    code, _, err = pandalm(*args, key="not-the-key")
    assert code == 2 and "the API key from PANDALM_API_KEY was refused" in err
    assert (code := pandalm(*args, key=KEY)[0]) == 0, code


def test_an_option_the_service_refuses_is_exit_2_naming_it(keyed_url: str, tmp_path: Path) -> None:
    code, _, err = pandalm("compare", "--url", keyed_url, *PAIR, "--max-new-tokens", "100000", key=KEY)
    assert code == 2 and "the service refused the option max_new_tokens (--max-new-tokens)" in err
    code, _, err = pandalm(*gate_args(keyed_url, tmp_path, EQUAL, EQUAL), "--max-new-tokens", "100000", key=KEY)
    assert code == 2 and "max_new_tokens" in err


def test_bad_flags_are_exit_2_before_the_service_is_called(keyed_url: str, tmp_path: Path) -> None:
    for flag in (["--margin", "0.7"], ["--confidence", "1"], ["--max-error-rate", "many"]):
        code, _, err = pandalm(*gate_args(keyed_url, tmp_path, EQUAL, EQUAL), *flag, key=KEY)
        assert code == 2 and f"argument {flag[0]}" in err, err
    assert not (tmp_path / "log.jsonl").exists()  # nothing was judged


def test_a_url_without_a_scheme_is_exit_2(keyed_url: str, tmp_path: Path) -> None:
    without_scheme = keyed_url.removeprefix("http://")
    code, _, err = pandalm("compare", *PAIR, "--url", without_scheme, key=KEY)
    assert code == 2 and "is not an http:// or https:// URL" in err
    code, _, err = pandalm("compare", *PAIR, key=KEY, PANDALM_URL=without_scheme)
    assert code == 2 and err.startswith("pandalm: PANDALM_URL")


def test_a_judge_that_is_down_is_exit_4(tmp_path: Path) -> None:
    code, _, err = pandalm(*gate_args(f"http://127.0.0.1:{free_port()}", tmp_path, EQUAL, EQUAL), key=KEY)
    assert code == 4 and "cannot reach the PandaLM service" in err and err.count("\n") == 1


def test_an_engine_failing_every_item_is_exit_4_with_the_items_listed(tmp_path: Path) -> None:
    failing = FakeEngine(lambda prompt, sampling: EngineError("the GPU fell off"))
    with serving(create_app(Settings(), engine=failing)) as url:
        code, out, err = pandalm(*gate_args(url, tmp_path, EQUAL, EQUAL))
    assert code == 4 and "JUDGE FAILURE" in out
    assert f"{tmp_path / 'cand.jsonl'}:1 (id q0): engine_error" in err


def test_the_gate_refuses_the_demo_judge_unless_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "demo-judge"
    folder.mkdir()
    (folder / MARKER_FILE).write_text(json.dumps({"output_regex": ".*"}))
    engine = FakeEngine(prefers_longer)
    engine.model_name = str(folder)
    with serving(create_app(Settings(), engine=engine)) as url:
        args = gate_args(url, tmp_path, EQUAL, EQUAL)
        code, _, err = pandalm(*args)
        assert code == 2 and "refusing to gate on the demo judge" in err
        code, _, err = pandalm(*args, "--allow-demo")
        assert code == 0 and "demo judge" in err
        code, _, err = pandalm("compare", "--url", url, *PAIR)
        assert code == 0 and "warning" in err and "demo judge" in err
    assert json.loads((tmp_path / "gate" / "report.json").read_text())["judge"]["demo"] is True


def test_a_closed_pipe_ends_quietly(keyed_url: str) -> None:
    env = {**os.environ, "PANDALM_API_KEY": KEY}
    command = [sys.executable, "-m", "pandalm_client.cli", "compare", "--json", "--url", keyed_url, *PAIR]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `| head -c 0`: the reader is gone before the first line
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0 and err == ""
