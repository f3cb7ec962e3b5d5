"""The scrape config and the alert rules: promtool checks them and runs their unit tests.

Each alert must have a unit test that makes it fire and one that keeps it quiet. The live run of every
rule against a real Prometheus is tests/integration/test_prometheus.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.deploy.monitoring import (
    PROMETHEUS_CONFIG,
    PROMETHEUS_SERIES,
    RULE_TESTS,
    RULES,
    Query,
    exposed_series,
    known_labels,
    label_uses,
    rule_queries,
    rules,
    selectors,
    service_exposition,
    vllm_series,
)
from tests.system_tools import unpacked_binary

SERIES = {**exposed_series(service_exposition()), **vllm_series(), **PROMETHEUS_SERIES}
ALERTS = {rule["alert"] for rule in rules() if "alert" in rule}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return unpacked_binary("prometheus", "promtool")


def run(promtool: Path, *args: str | Path) -> str:
    result = subprocess.run([str(promtool), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_check_config(promtool: Path) -> None:
    output = run(promtool, "check", "config", PROMETHEUS_CONFIG)
    # The config's rule_files glob finds the rule file, relative to the config.
    assert f"Checking {RULES}" in output, output


def test_promtool_check_rules(promtool: Path) -> None:
    output = run(promtool, "check", "rules", RULES)
    assert f"SUCCESS: {len(rules())} rules found" in output


def test_promtool_test_rules(promtool: Path) -> None:
    assert "SUCCESS" in run(promtool, "test", "rules", RULE_TESTS)


def test_every_alert_is_tested_firing_and_quiet() -> None:
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert fires == ALERTS, f"alerts never made to fire: {sorted(ALERTS - fires)}"
    assert quiet == ALERTS, f"alerts never checked to stay quiet: {sorted(ALERTS - quiet)}"


@pytest.mark.parametrize("query", rule_queries(), ids=lambda q: q.where)
def test_every_rule_reads_real_metrics_and_counters_only_through_rate(query: Query) -> None:
    for name, function in selectors(promql_parser.parse(query.expr)):
        assert name in SERIES, f"{name} is neither in the service's /metrics nor in vLLM's metrics module"
        if SERIES[name] in ("counter", "histogram"):
            assert function in ("rate", "increase"), f"{name} outside rate() in {query.expr}"
        else:
            assert function is None, f"{function}() of the gauge {name} in {query.expr}"


@pytest.mark.parametrize("rule", [r for r in rules() if "alert" in r], ids=lambda r: r["alert"])
def test_every_alert_says_how_urgent_and_what_happened(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("page", "ticket")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert rule.get("for"), "an alert without `for` fires on one bad evaluation"


def test_the_5xx_alerts_burn_the_same_budget_with_a_traffic_guard() -> None:
    burn = {r["alert"]: " ".join(r["expr"].split()) for r in rules() if "ErrorBudget" in r.get("alert", "")}
    assert set(burn) == {"PandaLMErrorBudgetBurnFast", "PandaLMErrorBudgetBurnSlow"}
    for name, windows, factor in (("Fast", ("1h", "5m"), "14.4"), ("Slow", ("6h", "30m"), "6")):
        expr = burn[f"PandaLMErrorBudgetBurn{name}"]
        for window in windows:
            assert f'pandalm_http_requests_total{{code=~"5.."}}[{window}]' in expr
            assert f"> ({factor} * 0.005)" in expr
        assert f"increase(pandalm_http_requests_total[{windows[0]}])) >= " in expr


def test_the_scrape_job_is_the_one_the_rules_name() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "pandalm"
    assert all('up{job="pandalm"}' in r["expr"] for r in rules() if r.get("alert", "").startswith("PandaLMTarget"))
    assert [RULES.parent.name + "/*.yml"] == config["rule_files"]


@pytest.mark.parametrize("query", rule_queries(), ids=lambda q: q.where)
def test_every_label_matched_or_aggregated_is_one_the_metric_has(query: Query) -> None:
    # A misspelt label matches nothing, which `or vector(0)` would show as a calm zero.
    for metric, label in label_uses(promql_parser.parse(query.expr)):
        assert label in known_labels(metric), f"{metric} has no label {label}: {query.expr}"
