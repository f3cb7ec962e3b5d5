"""Generate the Grafana dashboard of the PandaLM judge: deploy/grafana/dashboards/pandalm.json.

The dashboard is code, reviewed here; the JSON is what Grafana provisions. Edit this file, run it, commit
both. `--check` exits 1 when the committed JSON is not what this file generates (the tests run it).

    python scripts/grafana_dashboard.py            # write the JSON
    python scripts/grafana_dashboard.py --check    # is the committed JSON current?

Every query takes its data source from the `datasource` variable and its instances from `instance`, and every
series of a judge's work its judges from `judge`; every counter is read through rate() over `$__rate_interval`
(never a lifetime average).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "pandalm.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
QUANTILES = (0.5, 0.95, 0.99)
# Judged pairs with a verdict or unparsed output (errors were not judged).
JUDGED = 'outcome!="error"'
VERDICTS = 'outcome=~"response1|response2|tie"'

Panel = dict[str, Any]


# The series with a `judge` label (service/pandalm_serve/metrics.py): selected by the `judge` variable.
JUDGE_SERIES = (
    "pandalm_build_info", "pandalm_judgements_total", "pandalm_judge_latency_seconds", "pandalm_swap_pairs_total",
    "pandalm_swap_inconsistent_total", "pandalm_result_warnings_total", "pandalm_generations_total",
    "pandalm_pair_generated_tokens", "pandalm_grades_total",
)  # fmt: skip


def sel(metric: str, matchers: str = "") -> str:
    """A selector of `metric` on the chosen instances (and judges, for a judge's series), with more matchers."""
    scope = 'instance=~"$instance"'
    if metric.startswith(JUDGE_SERIES):
        scope += ', judge=~"$judge"'
    return f"{metric}{{{scope}{', ' + matchers if matchers else ''}}}"


def rate(metric: str, matchers: str = "") -> str:
    return f"rate({sel(metric, matchers)}[$__rate_interval])"


def ratio(metric: str, part: str, whole: str = "") -> str:
    """Share of `metric`'s rate matching `part` among that matching `whole`; 0, not "no data", when none."""
    return f"(sum({rate(metric, part)}) or vector(0)) / sum({rate(metric, whole)})"


def quantiles(
    histogram: str, by: str = "", qs: tuple[float, ...] = QUANTILES, matchers: str = ""
) -> list[tuple[str, str]]:
    """histogram_quantile over the buckets' rates, one target per quantile."""
    labels = f"le, {by}" if by else "le"
    legend = f" {{{{{by}}}}}" if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({labels}) ({rate(histogram + '_bucket', matchers)}))",
            f"p{q * 100:g}{legend}",
        )
        for q in qs
    ]


def timeseries(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    unit: str = "short",
    *,
    stacked: bool = False,
    max_value: float | None = None,
    threshold: float | None = None,
    width: int = 8,
) -> Panel:
    custom: dict[str, Any] = {"fillOpacity": 30 if stacked else 10, "lineWidth": 1, "showPoints": "never"}
    if stacked:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if threshold is not None:
        # A dashed line at the alert's threshold.
        custom["thresholdsStyle"] = {"mode": "dashed"}
        steps.append({"color": "red", "value": threshold})
    defaults: dict[str, Any] = {
        "unit": unit,
        "min": 0,
        "custom": custom,
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "timeseries",
        "gridPos": {"w": width, "h": 8},
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": _targets(targets),
    }


def stat(
    title: str,
    description: str,
    expr: str,
    unit: str,
    *,
    legend: str = "",
    mappings: Sequence[Any] = (),
    text_mode: str = "auto",
) -> Panel:
    return {
        "type": "stat",
        "gridPos": {"w": 6, "h": 4},
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "mappings": list(mappings)}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "textMode": text_mode},
        "targets": _targets([(expr, legend)]),
    }


def _targets(targets: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i)}
        for i, (expr, legend) in enumerate(targets)
    ]


def row(title: str) -> Panel:
    return {"type": "row", "gridPos": {"w": 24, "h": 1}, "title": title, "collapsed": False, "panels": []}


READY = [
    {"type": "value", "options": {"0": {"text": "not ready", "color": "red"}, "1": {"text": "ready", "color": "green"}}}
]
JUDGEMENTS = "pandalm_judgements_total"
QUALITY_VERDICTS = "pandalm_quality_verdicts_total"
POSITIONS = "pandalm_quality_position_verdicts_total"
REQUESTS = "pandalm_http_requests_total"


def service_row() -> list[Panel]:
    return [
        row("Service"),
        stat(
            "Engine",
            "pandalm_engine_ready: 0 while the model loads (up to 30 minutes on a first start) or after the engine "
            "failed.",
            f"min({sel('pandalm_engine_ready')})",
            "none",
            mappings=READY,
        ),
        stat("Pairs judged / s", "Pairs judged, every outcome.", f"sum({rate(JUDGEMENTS)})", "short"),
        stat(
            "5xx ratio",
            "Share of /compare and /batch requests answered with a 5xx (objective: under 0.5%).",
            ratio(REQUESTS, 'code=~"5.."'),
            "percentunit",
        ),
        stat(
            "Served",
            "pandalm_build_info: each judge's model, engine and template version, and the service version.",
            f"count by (judge, model, engine, template_version, version) ({sel('pandalm_build_info')})",
            "none",
            legend="{{judge}}: {{model}} ({{engine}}, {{template_version}}, {{version}})",
            text_mode="name",
        ),
    ]


def traffic_row() -> list[Panel]:
    return [
        row("Traffic and latency"),
        timeseries(
            "Throughput",
            "Pairs judged per second, and /compare and /batch requests per second.",
            [(f"sum({rate(JUDGEMENTS)})", "pairs judged"), (f"sum by (endpoint) ({rate(REQUESTS)})", "{{endpoint}}")],
            "ops",
        ),
        timeseries(
            "Requests by status",
            "Requests per second by endpoint and HTTP status.",
            [(f"sum by (endpoint, code) ({rate(REQUESTS)})", "{{endpoint}} {{code}}")],
            "reqps",
            stacked=True,
        ),
        timeseries(
            "5xx error ratio",
            "Share of requests answered with a 5xx. The dashed line is the 0.5% error budget; the burn-rate alerts "
            "fire at 6 and 14.4 times it.",
            [(ratio(REQUESTS, 'code=~"5.."'), "5xx")],
            "percentunit",
            threshold=0.005,
        ),
        timeseries(
            "Request latency",
            "Time to the last byte of a request (a streamed /batch included), by endpoint. The latency objective "
            "(dashed): 95% of /compare within 10 s.",
            quantiles("pandalm_http_request_duration_seconds", "endpoint"),
            "s",
            threshold=10,
        ),
        timeseries(
            "Latency per pair",
            "Time to judge one pair, its wait for a place included.",
            quantiles("pandalm_judge_latency_seconds"),
            "s",
        ),
        timeseries(
            "Requests by API key",
            "Requests per second by the name of the API key that made them (- without keys).",
            [(f"sum by (client) ({rate(REQUESTS)})", "{{client}}")],
            "reqps",
            stacked=True,
        ),
    ]


def verdicts_row() -> list[Panel]:
    return [
        row("Verdicts"),
        timeseries(
            "Verdict mix",
            "Share of each outcome among the pairs each judge judged.",
            [
                (
                    f"sum by (judge, outcome) ({rate(JUDGEMENTS)}) / ignoring (outcome) group_left () "
                    f"sum by (judge) ({rate(JUDGEMENTS)})",
                    "{{judge}} {{outcome}}",
                )
            ],
            "percentunit",
            stacked=True,
            max_value=1,
        ),
        timeseries(
            "Unparsed, error and tie rates",
            "Unparsed: outputs not in PandaLM's format, of the pairs judged (alert over 2%, dashed). Error: pairs "
            "not judged, of all pairs (alert over 5%). Tie: of the verdicts.",
            [
                (ratio(JUDGEMENTS, 'outcome="unparsed"', JUDGED), "unparsed"),
                (ratio(JUDGEMENTS, 'outcome="error"'), "error"),
                (ratio(JUDGEMENTS, 'outcome="tie"', VERDICTS), "tie"),
            ],
            "percentunit",
            threshold=0.02,
        ),
        timeseries(
            "Swap inconsistency",
            "Pairs judged in both orders whose two verdicts disagreed (reported as ties), of the pairs judged with "
            "swap.",
            [
                (
                    f"sum({rate('pandalm_swap_inconsistent_total')}) / sum({rate('pandalm_swap_pairs_total')})",
                    "inconsistent",
                )
            ],
            "percentunit",
            max_value=1,
        ),
        timeseries(
            "Result warnings and refusals",
            "Warnings attached to results per second, by code, and prompts refused because they do not fit the "
            "context.",
            [
                (f"sum by (code) ({rate('pandalm_result_warnings_total')})", "{{code}}"),
                (f"sum({rate('pandalm_prompts_too_long_total')})", "prompt too long"),
            ],
            "ops",
            width=12,
        ),
        timeseries(
            "Cut off at max_new_tokens",
            "Share of generations (one per order) that stopped at max_new_tokens instead of the end of sequence: "
            "often unparsed.",
            [(ratio("pandalm_generations_total", 'finish_reason="length"'), "cut off")],
            "percentunit",
            width=12,
        ),
        timeseries(
            "Grades",
            "Responses graded by /grade per second, by judge and outcome: the score, unparsed or error.",
            [(f"sum by (judge, outcome) ({rate('pandalm_grades_total')})", "{{judge}} {{outcome}}")],
            "ops",
            stacked=True,
            width=24,
        ),
    ]


def load_row() -> list[Panel]:
    return [
        row("Load"),
        timeseries(
            "Tokens / s",
            "Tokens sent to the engine and generated by it.",
            [
                (f"sum({rate('pandalm_prompt_tokens_total')})", "prompt"),
                (f"sum({rate('pandalm_generated_tokens_total')})", "generated"),
            ],
            "short",
        ),
        timeseries(
            "Generated tokens per pair",
            "Both orders with swap; about 1 a pair in verdict mode.",
            quantiles("pandalm_pair_generated_tokens", qs=(0.5, 0.95)),
            "short",
        ),
        timeseries(
            "Batch sizes",
            "Items per /batch request.",
            [
                *quantiles("pandalm_batch_items", qs=(0.5, 0.95)),
                (f"sum({rate('pandalm_batch_items_sum')}) / sum({rate('pandalm_batch_items_count')})", "mean"),
            ],
            "short",
        ),
        timeseries(
            "Queue depth and in flight",
            "Pairs being judged, and pairs waiting for a place (--max-items-in-flight).",
            [
                (f"sum({sel('pandalm_items_in_flight')})", "in flight"),
                (f"sum({sel('pandalm_items_waiting')})", "waiting"),
            ],
            "short",
            width=12,
        ),
        timeseries(
            "Queue wait per pair",
            "Time a pair waited for its place.",
            quantiles("pandalm_item_queue_seconds", qs=(0.5, 0.95)),
            "s",
            width=12,
        ),
    ]


def cache_row() -> list[Panel]:
    return [
        row("Verdict cache"),
        timeseries(
            "Verdict cache hit rate",
            "Generations given again from the verdict cache, of the lookups (one per order of a pair judged with "
            "the cache on).",
            [(ratio("pandalm_cache_lookups_total", 'result="hit"'), "hits")],
            "percentunit",
            max_value=1,
            width=12,
        ),
        timeseries(
            "Cache failures and shared generations",
            "Lookups or stores that failed (judging went on without the cache), and generations that waited for "
            "an identical one in flight instead of calling the engine again, per second.",
            [
                (f"sum({rate('pandalm_cache_errors_total')})", "cache failures"),
                (f"sum({rate('pandalm_deduplicated_generations_total')})", "shared generations"),
            ],
            "ops",
            width=12,
        ),
    ]


def engine_row() -> list[Panel]:
    return [
        row("Engine (vLLM)"),
        timeseries(
            "Engine requests",
            "vLLM's requests waiting and in model execution (one per order of a pair). Alert when some have waited "
            "for 15 minutes.",
            [
                (f"sum({sel('vllm:num_requests_waiting')})", "waiting"),
                (f"sum({sel('vllm:num_requests_running')})", "running"),
            ],
            "short",
        ),
        timeseries(
            "KV-cache usage",
            "Share of vLLM's KV cache in use (alert over 95% for 10 minutes, dashed).",
            [(f"max by (instance) ({sel('vllm:kv_cache_usage_perc')})", "{{instance}}")],
            "percentunit",
            max_value=1,
            threshold=0.95,
        ),
        timeseries(
            "Prefix-cache hit rate",
            "Prompt tokens found in vLLM's prefix cache, of those looked up (PandaLM's template is a shared prefix).",
            [(f"sum({rate('vllm:prefix_cache_hits_total')}) / sum({rate('vllm:prefix_cache_queries_total')})", "hits")],
            "percentunit",
            max_value=1,
        ),
        timeseries(
            "Time to first token",
            "vLLM's time to the first generated token: its queue and the prefill.",
            quantiles("vllm:time_to_first_token_seconds"),
            "s",
            width=12,
        ),
        timeseries(
            "Preemptions",
            "Requests vLLM preempted per second (evicted to free KV-cache blocks).",
            [(f"sum({rate('vllm:num_preemptions_total')})", "preemptions")],
            "ops",
            width=12,
        ),
    ]


def quality_row() -> list[Panel]:
    """Judge quality (pandalm_quality_*, pandalm_canary_*), per judge, on the judges the `judge` variable picks."""
    judge = 'judge=~"$judge"'
    verdicts = f"sum by (judge) ({rate(QUALITY_VERDICTS, judge)})"
    unparsed = rate(QUALITY_VERDICTS, judge + ', outcome="unparsed"')
    first = rate(POSITIONS, judge + ', position="first"')
    decisive = rate(POSITIONS, judge + ', position=~"first|second"')
    return [
        row("Judge quality"),
        timeseries(
            "Swap-flip rate",
            "Pairs judged in both orders (asked with swap, or sampled by --swap-sample-rate) whose two verdicts "
            "disagreed, of those pairs. PandaLM-7B flips about 17% of PandaLM's test set; an alert fires on a jump "
            "of 10 points over the judge's last day.",
            [
                (
                    f"sum by (judge) ({rate('pandalm_quality_swap_flips_total', judge)}) / sum by (judge) "
                    f"({rate('pandalm_quality_swap_pairs_total', judge)})",
                    "{{judge}}",
                )
            ],
            "percentunit",
            max_value=1,
        ),
        timeseries(
            "Position preference",
            "First-position wins among the verdicts that chose a response, as the judge saw each order: alone "
            "(swap=false) and within swapped pairs (swap=true). 50% is no preference.",
            [
                (
                    f"sum by (judge, swap) ({first}) / sum by (judge, swap) ({decisive})",
                    "{{judge}} swap={{swap}}",
                )
            ],
            "percentunit",
            max_value=1,
        ),
        timeseries(
            "Verdict mix by judge",
            "Share of each outcome (response1, response2, tie, unparsed) among the pairs each judge judged.",
            [
                (
                    f"sum by (judge, outcome) ({rate(QUALITY_VERDICTS, judge)}) / ignoring (outcome) group_left () "
                    f"{verdicts}",
                    "{{judge}} {{outcome}}",
                )
            ],
            "percentunit",
            stacked=True,
            max_value=1,
        ),
        timeseries(
            "Unparsed rate by judge",
            "Outputs not in the judge's format, of the pairs it judged. An alert fires on a jump of 2 points over "
            "the judge's last day (dashed: 2%).",
            # A judge with no unparsed output has no such series: 0 for it, not "no data".
            [(f"(sum by (judge) ({unparsed}) or {verdicts} * 0) / {verdicts}", "{{judge}}")],
            "percentunit",
            threshold=0.02,
        ),
        timeseries(
            "Chosen label probability",
            "The probability each judge gave the label it chose (results with probabilities): the 10th "
            "percentile falling means more uncertain verdicts.",
            quantiles("pandalm_quality_label_probability", "judge", (0.1, 0.5, 0.9), judge),
            "percentunit",
            max_value=1,
        ),
        timeseries(
            "Sampled swaps",
            "Swapped orders judged in the background by --swap-sample-rate, per second: judged, dropped (the "
            "queue was full) and failed.",
            [
                (
                    f"sum by (judge, outcome) ({rate('pandalm_quality_sampled_swaps_total', judge)})",
                    "{{judge}} {{outcome}}",
                )
            ],
            "ops",
        ),
        timeseries(
            "Canary agreement",
            "The last canary run's agreement with the canary's human labels (solid), and its baseline's: the "
            "recorded verdicts' (the builtin canary: PandaLM-7B's) or the first run's. An alert fires 0.05 below.",
            [
                (f"max by (judge, metric) ({sel('pandalm_canary_agreement', judge)})", "{{judge}} {{metric}}"),
                (
                    f"max by (judge, metric) ({sel('pandalm_canary_baseline_agreement', judge)})",
                    "{{judge}} {{metric}} baseline",
                ),
            ],
            "percentunit",
            max_value=1,
        ),
        timeseries(
            "Canary changed ratio",
            "Share of the last canary run's verdicts that differ from the recorded ones (or the first run's): 0 on "
            "a faithful deployment; an alert fires above 0.",
            [(f"max by (judge) ({sel('pandalm_canary_changed_ratio', judge)})", "{{judge}}")],
            "percentunit",
            max_value=1,
        ),
        timeseries(
            "Canary runs",
            "Canary runs per second (complete, or failed: an item could not be judged), the last run's items by "
            "status, and the seconds since the last complete run.",
            [
                (f"sum by (judge, outcome) ({rate('pandalm_canary_runs_total', judge)})", "{{judge}} {{outcome}}"),
                (f"max by (judge, status) ({sel('pandalm_canary_items', judge)})", "{{judge}} items {{status}}"),
                (
                    f"time() - max by (judge) ({sel('pandalm_canary_last_run_timestamp_seconds', judge)})",
                    "{{judge}} age (s)",
                ),
            ],
            "short",
        ),
    ]


def layout(panels: list[Panel]) -> list[Panel]:
    """Number the panels and place them left to right, a new line when one does not fit or at a row."""
    placed: list[Panel] = []
    x = y = height = 0
    for number, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > 24 or panel["type"] == "row":
            x, y = 0, y + height
        placed.append({**panel, "id": number, "gridPos": {"h": h, "w": w, "x": x, "y": y}})
        x, height = x + w, h
    return placed


def variables() -> list[dict[str, Any]]:
    instances = "label_values(pandalm_build_info, instance)"
    judges = "label_values(pandalm_build_info, judge)"
    return [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "includeAll": False, "multi": False, "refresh": 1, "regex": ""},
        {"name": "instance", "label": "Instance", "type": "query", "datasource": DATASOURCE,
         "query": {"query": instances, "refId": "instance"}, "definition": instances,
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0,
         "includeAll": True, "allValue": ".*", "multi": True, "refresh": 2, "regex": "", "sort": 1},
        {"name": "judge", "label": "Judge", "type": "query", "datasource": DATASOURCE,
         "query": {"query": judges, "refId": "judge"}, "definition": judges,
         "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "hide": 0,
         "includeAll": True, "allValue": ".*", "multi": True, "refresh": 2, "regex": "", "sort": 1},
    ]  # fmt: skip


def dashboard() -> dict[str, Any]:
    rows = [
        *service_row(),
        *traffic_row(),
        *verdicts_row(),
        *quality_row(),
        *load_row(),
        *cache_row(),
        *engine_row(),
    ]
    return {
        "uid": "pandalm",
        "title": "PandaLM judge",
        "description": "The PandaLM judging service and its vLLM engine. Generated by scripts/grafana_dashboard.py.",
        "tags": ["pandalm", "vllm"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "",
        "templating": {"list": variables()},
        "annotations": {"list": []},
        "links": [],
        "panels": layout(rows),
        "version": 1,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed JSON is not current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python scripts/grafana_dashboard.py", file=sys.stderr)
            return 1
        print(f"{OUTPUT} is current")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
