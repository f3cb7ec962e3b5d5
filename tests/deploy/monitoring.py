"""The dashboard's and the alert rules' queries, and the metrics they may name.

Shared by the file checks here and the live Prometheus test (tests/integration/test_prometheus.py).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "pandalm.json"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "pandalm.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests" / "pandalm_test.yml"
# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up": "gauge"}
# Grafana's variables, as the tests substitute them: every instance and judge, and a rate window.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$instance": ".*",
    "$judge": ".*",
}


@dataclass(frozen=True)
class Query:
    where: str  # "panel 'Throughput' A", "rule PandaLMTargetDown"
    expr: str  # as written in the file, Grafana's variables included


def dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def dashboard_queries() -> list[Query]:
    return [
        Query(f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def rule_queries() -> list[Query]:
    return [Query(f"rule {rule.get('alert') or rule['record']}", rule["expr"]) for rule in rules()]


def grafana_substituted(expr: str) -> str:
    """The query Grafana sends: its variables replaced (longest name first: $__interval is in $__interval_ms)."""
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    assert "$" not in expr, f"a Grafana variable the tests do not know in {expr}"
    return expr


def selectors(expr: promql_parser.Expr) -> Iterator[tuple[str, str | None]]:
    """Each metric a query reads, with the function whose range argument it is (rate, increase...), if any."""
    if isinstance(expr, promql_parser.VectorSelector):
        yield _name(expr), None
    elif isinstance(expr, promql_parser.MatrixSelector):
        yield _name(expr.vector_selector), None
    elif isinstance(expr, promql_parser.Call):
        for arg in expr.args:
            if isinstance(arg, promql_parser.MatrixSelector):
                yield _name(arg.vector_selector), expr.func.name
            else:
                yield from selectors(arg)
    elif isinstance(expr, promql_parser.BinaryExpr):
        yield from selectors(expr.lhs)
        yield from selectors(expr.rhs)
    elif isinstance(expr, promql_parser.AggregateExpr):
        yield from selectors(expr.expr)
        if expr.param is not None:
            yield from selectors(expr.param)
    elif isinstance(expr, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        yield from selectors(expr.expr)


def _name(selector: promql_parser.VectorSelector) -> str:
    assert selector.name, f"a selector without a metric name: {selector}"
    return str(selector.name)


def exposed_series(exposition: str) -> dict[str, str]:
    """Every series name an exposition text can have, with its family's type, from its `# TYPE` lines."""
    series: dict[str, str] = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\w+)$", exposition, re.M):
        if kind == "histogram":
            series.update({f"{name}{suffix}": kind for suffix in ("_bucket", "_sum", "_count")})
        elif not name.endswith("_created"):  # prometheus_client's creation times: not for queries
            series[name] = kind
    return series


def family(name: str, series: dict[str, str]) -> str:
    """The metric a series belongs to: a histogram's without _bucket, _sum or _count."""
    return re.sub(r"_(bucket|sum|count)$", "", name) if series.get(name) == "histogram" else name


def vllm_series() -> dict[str, str]:
    """vLLM's engine metrics, read from its metrics module (as its Prometheus client exposes them)."""
    spec = importlib.util.find_spec("vllm")  # finds the package without importing it
    assert spec and spec.submodule_search_locations, "vLLM is not installed"
    source = Path(spec.submodule_search_locations[0]) / "v1" / "metrics" / "loggers.py"
    kinds = {"_counter_cls": "counter", "_gauge_cls": "gauge", "_histogram_cls": "histogram"}
    series: dict[str, str] = {}
    for node in ast.walk(ast.parse(source.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in kinds):
            continue
        for keyword in node.keywords:
            if keyword.arg != "name" or not isinstance(keyword.value, ast.Constant):
                continue
            name, kind = str(keyword.value.value), kinds[node.func.attr]
            # prometheus_client adds _total to a counter's samples, and _bucket, _sum, _count to a histogram's.
            suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}[kind]
            series.update({f"{name}{suffix}": kind for suffix in suffixes})
    assert "vllm:num_requests_waiting" in series, f"no vLLM metrics found in {source}"
    return series


def label_uses(expr: promql_parser.Expr) -> set[tuple[str, str]]:
    """(metric, label) for each label a query matches on or aggregates by: a misspelt one matches nothing,
    which `or vector(0)` would show as a zero."""
    uses: set[tuple[str, str]] = set()

    def visit(node: promql_parser.Expr) -> None:  # walk() visits a range's selector too
        if isinstance(node, promql_parser.VectorSelector):
            uses.update((_name(node), m.name) for m in node.matchers.matchers if m.name != "__name__")
        if (
            isinstance(node, promql_parser.AggregateExpr)
            and node.modifier is not None
            and node.modifier.type == promql_parser.AggModifierType.By
        ):
            uses.update((name, label) for name, _ in selectors(node.expr) for label in node.modifier.labels)

    promql_parser.walk(expr, pre_visit=visit)
    return uses


# Labels every scraped series has, and those vLLM puts on each of its engine metrics (loggers.py).
TARGET_LABELS = {"instance", "job"}
VLLM_LABELS = {"model_name", "engine"}


def service_exposition() -> str:
    """What the service's /metrics can hold: metrics.py's series and the judge-quality ones (quality/)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from pandalm_serve.metrics import Metrics
    from pandalm_serve.quality.metrics import QualityMetrics

    quality = CollectorRegistry()
    QualityMetrics(quality)
    return Metrics().exposition().decode() + generate_latest(quality).decode()


def judge_labels() -> dict[str, set[str]]:
    """The label names of each pandalm_* series, from the service's metrics modules."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from pandalm_serve.metrics import Metrics
    from pandalm_serve.quality.metrics import QualityMetrics

    labels: dict[str, set[str]] = {}
    for metric in [*vars(Metrics()).values(), *vars(QualityMetrics(CollectorRegistry())).values()]:
        if not isinstance(metric, MetricWrapperBase):
            continue
        name, kind, names = metric._name, metric._type, set(metric._labelnames)
        if kind == "counter":
            labels[f"{name}_total"] = names
        elif kind == "histogram":
            labels.update({f"{name}_bucket": names | {"le"}, f"{name}_sum": names, f"{name}_count": names})
        else:
            labels[name] = names
    return labels


def known_labels(metric: str) -> set[str]:
    """The labels a series of `metric` can have once scraped."""
    if metric.startswith("pandalm_"):
        return judge_labels().get(metric, set()) | TARGET_LABELS
    if metric.startswith("vllm:"):
        return VLLM_LABELS | TARGET_LABELS | ({"le"} if metric.endswith("_bucket") else set())
    return TARGET_LABELS
