"""The Kubernetes manifests: valid against Kubernetes' schemas, and agreeing with the code and the rule file.

No cluster here. Built-in kinds are checked against Kubernetes' OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail); the Prometheus operator's kinds, whose schemas that package lacks, against
the subset of their CRDs written below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.monitoring import RULES, rule_groups
from tests.deploy.service_facts import ROOT, ROUTES, SETTINGS, setting_names

KUBERNETES = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(KUBERNETES.glob("*.yaml"))

# Prometheus's durations, as the operator's CRDs match them.
_DURATION_PATTERN = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
_DURATION = {"type": "string", "pattern": _DURATION_PATTERN}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_METADATA = _closed(
    {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": _STRINGS,
        "annotations": _STRINGS,
    },
    ["name"],
)
# The fields of monitoring.coreos.com/v1 these manifests use, with their neighbours, as the operator's CRDs
# define them; anything else is refused, so a misspelt field fails here rather than being dropped by the API.
_RULE = _closed(
    {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"type": "string"},
        "for": _DURATION,
        "keep_firing_for": _DURATION,
        "labels": _STRINGS,
        "annotations": _STRINGS,
    },
    ["expr"],
)
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": _closed(
        {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": _closed(
                {
                    "jobLabel": {"type": "string"},
                    "selector": _closed({"matchLabels": _STRINGS}, ["matchLabels"]),
                    "namespaceSelector": {"type": "object"},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": _closed(
                            {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "honorLabels": {"type": "boolean"},
                            },
                            ["port"],
                        ),
                    },
                },
                ["selector", "endpoints"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
    "PrometheusRule": _closed(
        {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": _closed(
                {
                    "groups": {
                        "type": "array",
                        "items": _closed(
                            {
                                "name": {"type": "string", "minLength": 1},
                                "interval": _DURATION,
                                "limit": {"type": "integer"},
                                "rules": {"type": "array", "items": _RULE},
                            },
                            ["name"],
                        ),
                    }
                },
                ["groups"],
            ),
        },
        ["apiVersion", "kind", "metadata", "spec"],
    ),
}


def documents(path: Path = KUBERNETES / "pandalm.yaml") -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def find(kind: str) -> dict[str, Any]:
    (document,) = [d for path in MANIFESTS for d in documents(path) if d["kind"] == kind]
    return document


@pytest.mark.parametrize(
    "document",
    [d for path in MANIFESTS for d in documents(path)],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_every_manifest_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    if document["kind"] in CRD_SCHEMAS:
        jsonschema.Draft202012Validator(CRD_SCHEMAS[document["kind"]]).validate(document)
    else:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_the_crd_subsets_refuse_a_misspelt_field() -> None:
    monitor = find("ServiceMonitor")
    misspelt = {**monitor, "spec": {**monitor["spec"], "endpoint": monitor["spec"]["endpoints"]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(CRD_SCHEMAS["ServiceMonitor"]).validate(misspelt)


def test_kubernetes_probes_hit_real_routes() -> None:
    deployment = find("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in ROUTES
    assert setting_names([e["name"] for e in container["env"]]) <= SETTINGS
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] in ROUTES
    service = find("Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_kubernetes_keeps_weights_on_a_persistent_volume_with_shared_memory() -> None:
    claim = find("PersistentVolumeClaim")
    pod = find("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    startup = pod["containers"][0]["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800


def test_kubernetes_requests_the_resources_it_needs() -> None:
    resources = find("Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert {"cpu", "memory", "nvidia.com/gpu"} <= set(resources["requests"])
    # An extended resource's request must equal its limit.
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == 1
    assert "cpu" not in resources["limits"], "a CPU limit throttles the engine's scheduling loop"


def test_the_service_monitor_scrapes_the_service_under_the_job_the_rules_name() -> None:
    monitor, service = find("ServiceMonitor"), find("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] in ROUTES
    # The operator names the job after the Service; the target alerts select job="pandalm".
    assert "jobLabel" not in monitor["spec"] and service["metadata"]["name"] == "pandalm"
    assert f'up{{job="{service["metadata"]["name"]}"}}' in RULES.read_text()


def test_the_prometheus_rule_is_the_rule_file() -> None:
    assert find("PrometheusRule")["spec"]["groups"] == rule_groups()
    # Byte for byte: the rule file from `groups:` on, indented under `spec:`.
    rule_file = RULES.read_text()
    body = rule_file[rule_file.index("\ngroups:") + 1 :]
    indented = "".join(f"  {line}" if line.strip() else line for line in body.splitlines(keepends=True))
    manifest = (KUBERNETES / "monitoring.yaml").read_text()
    assert manifest.endswith("\nspec:\n" + indented), (
        "copy the rule file into monitoring.yaml: sed -n '/^groups:/,$p' deploy/prometheus/rules/pandalm.yml"
        " | sed 's/^./  &/'"
    )


@pytest.mark.parametrize(
    ("manifest", "deployment"),
    [
        (KUBERNETES / "pandalm.yaml", "pandalm"),
        (ROOT / "deploy" / "scale-out" / "kubernetes" / "judge.yaml", "pandalm-judge"),
    ],
)
def test_kubernetes_judges_read_their_api_keys_from_a_mounted_secret(manifest: Path, deployment: str) -> None:
    (spec,) = [
        d["spec"]["template"]["spec"]
        for d in yaml.safe_load_all(manifest.read_text())
        if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment
    ]
    (container,) = spec["containers"]
    keys_file = Path({e["name"]: e.get("value") for e in container["env"]}["PANDALM_API_KEYS_FILE"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(keys_file.parent)]
    assert mount.get("readOnly") is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]["secretName"]
    # The file is the Secret's key of that name, as the manifest's comment creates it.
    assert f"kubectl create secret generic {secret} --from-file={keys_file.name}=" in manifest.read_text()
