"""The Grafana dashboard: generated from its script, every query valid PromQL on metrics that exist.

The live run of every query against a real Prometheus is tests/integration/test_prometheus.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import promql_parser
import pytest

from tests.deploy.monitoring import (
    DASHBOARD,
    ROOT,
    Query,
    dashboard,
    dashboard_queries,
    exposed_series,
    family,
    grafana_substituted,
    known_labels,
    label_uses,
    selectors,
    service_exposition,
    vllm_series,
)

QUERIES = dashboard_queries()
SERIES = {**exposed_series(service_exposition()), **vllm_series()}


def test_the_committed_dashboard_is_what_the_script_generates() -> None:
    script = ROOT / "scripts" / "grafana_dashboard.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_check_fails_on_a_stale_dashboard(tmp_path: Path) -> None:
    # The script's --check in a copy of the repository's layout, with the dashboard edited by hand.
    root = tmp_path
    (root / "scripts").mkdir()
    (root / "scripts" / "grafana_dashboard.py").write_text((ROOT / "scripts" / "grafana_dashboard.py").read_text())
    stale = root / DASHBOARD.relative_to(ROOT)
    stale.parent.mkdir(parents=True)
    stale.write_text(DASHBOARD.read_text().replace('"PandaLM judge"', '"Edited by hand"'))
    result = subprocess.run([sys.executable, str(root / "scripts" / "grafana_dashboard.py"), "--check"])
    assert result.returncode == 1


def test_queries_use_the_datasource_variable() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.where)
def test_every_query_parses_as_promql(query: Query) -> None:
    promql_parser.parse(grafana_substituted(query.expr))


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.where)
def test_every_range_is_the_rate_interval_and_every_counter_inside_rate(query: Query) -> None:
    assert re.findall(r"\[([^\]]*)\]", query.expr) == ["$__rate_interval"] * query.expr.count("["), query.expr
    for name, function in selectors(promql_parser.parse(grafana_substituted(query.expr))):
        assert name in SERIES, f"{name} is neither in the service's /metrics nor in vLLM's metrics module"
        if SERIES[name] in ("counter", "histogram"):
            # A counter alone, or a histogram's _sum over its _count, is a lifetime average.
            assert function == "rate", f"{name} outside rate() in {query.expr}"
        else:
            assert function is None, f"{function}() of the gauge {name} in {query.expr}"
        assert 'instance=~"$instance"' in query.expr


def test_the_instance_variable_reads_a_real_metric() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    match = re.fullmatch(r"label_values\((\w+), instance\)", variables["instance"]["definition"])
    assert match and match.group(1) in SERIES


def test_every_judge_metric_is_on_the_dashboard() -> None:
    judge = {family(name, SERIES) for name in SERIES if name.startswith("pandalm_")}
    shown = {
        family(name, SERIES)
        for query in QUERIES
        for name, _ in selectors(promql_parser.parse(grafana_substituted(query.expr)))
    }
    assert judge <= shown, f"add a panel for these in scripts/grafana_dashboard.py: {sorted(judge - shown)}"


@pytest.mark.parametrize(
    "engine_metric",
    [
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_hits_total",
        "vllm:prefix_cache_queries_total",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:num_preemptions_total",
    ],
)
def test_the_engine_panels_are_there(engine_metric: str) -> None:
    assert any(engine_metric in q.expr for q in QUERIES)


def test_panels_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    ids = []
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & taken, panel["title"]
        taken |= cells
        ids.append(panel["id"])
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.where)
def test_every_label_matched_or_aggregated_is_one_the_metric_has(query: Query) -> None:
    # A misspelt label matches nothing, which `or vector(0)` would show as a calm zero.
    for metric, label in label_uses(promql_parser.parse(grafana_substituted(query.expr))):
        assert label in known_labels(metric), f"{metric} has no label {label}: {query.expr}"


def test_the_judge_quality_panels_follow_the_judge_variable() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    match = re.fullmatch(r"label_values\((\w+), judge\)", variables["judge"]["definition"])
    assert match and match.group(1) in SERIES and "judge" in known_labels(match.group(1))
    quality = [q for q in QUERIES if "pandalm_quality_" in q.expr or "pandalm_canary_" in q.expr]
    assert len(quality) >= 9
    for query in quality:
        assert query.expr.count('judge=~"$judge"') == query.expr.count("{"), query.expr
