"""Draw the docs' figures from committed data: the benchmark plots from benchmarks/results/*.json and the
Grafana dashboard's layout from deploy/grafana/dashboards/pandalm.json. SVG, written reproducibly (no date,
a fixed id salt), so `--check` exits 1 when a committed figure is not what the data gives (the tests run it).

    python scripts/docs_figures.py            # write docs/images/*.svg
    python scripts/docs_figures.py --check    # are they current?
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from generated import ROOT, main
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

RESULTS = ROOT / "benchmarks" / "results"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "pandalm.json"
# What the dashboard's queries returned against a live service (scripts/dashboard_samples.py records it).
SAMPLES = ROOT / "docs" / "images" / "dashboard-samples.json"
IMAGES = ROOT / "docs" / "images"
# The sides of benchmarks/alternatives.py, as the performance page names them.
SIDES = {
    "service": "(a) this service, vLLM in process",
    "vllm": "(b) vLLM's OpenAI server",
    "vllm+labels": "(b') (b) with label probabilities",
    "remote": "(d) remote engine in front of (b)",
    "hf": "(c) PandaLM's reference, greedy",
    "hf 4-beam": "(c') the reference, 4 beams",
}
PANEL_COLOURS = {"stat": "#d9ead3", "timeseries": "#cfe2f3", "piechart": "#fce5cd", "bargauge": "#fff2cc"}


def svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(figure)
    return out.getvalue()


def alternatives() -> str:
    data = json.loads((RESULTS / "alternatives.json").read_text())
    meta, sides = data["meta"], data["sides"]
    names = [name for name in SIDES if name in sides][::-1]
    figure, axes = plt.subplots(figsize=(7.5, 3.4))
    axes.barh([SIDES[n] for n in names], [sides[n]["pairs_per_s"] for n in names], color="#6fa8dc")
    for row, name in enumerate(names):  # each round's own rate, to show the spread the median hides
        rates = [r["pairs"] / r["seconds"] for r in data["rounds"].get(name, [])]
        axes.plot(rates, [row] * len(rates), "k|", markersize=10)
        right = max([sides[name]["pairs_per_s"], *rates])
        axes.text(right + 0.8, row, f"{sides[name]['pairs_per_s']:.1f}", va="center")
    axes.set_xlabel("pairs judged per second (bar: median; ticks: each round)")
    axes.set_title(
        f"{meta['pairs']} test-set pairs, {meta['new_tokens']} new tokens each, demo judge, "
        f"{meta['machine']}, {meta['date']}",
        fontsize=9,
    )
    axes.spines[["top", "right"]].set_visible(False)
    return svg(figure)


def service_overhead() -> str:
    data = json.loads((RESULTS / "service_overhead.json").read_text())
    measured = {
        "items/s through one /batch": data["batch_items_per_s"],
        "/compare requests/s, 32 clients": data["compare_requests_per_s"],
    }
    targets = {"items/s through one /batch": 2000, "/compare requests/s, 32 clients": 500}
    figure, axes = plt.subplots(figsize=(7.5, 1.9))
    labels = list(measured)[::-1]
    axes.barh(labels, [measured[k] for k in labels], color="#93c47d", label="measured")
    axes.plot([targets[k] for k in labels], labels, "rD", label="target")
    for row, label in enumerate(labels):
        axes.text(measured[label] + 20, row, f"{measured[label]:,.0f}", va="center")
    axes.set_title(
        f"The service alone, engine answering at once ({data['pairs']} pairs, {data['rounds']} rounds)", fontsize=9
    )
    axes.legend(loc="lower right", fontsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return svg(figure)


def dashboard_layout() -> str:
    """The dashboard's panels where Grafana places them (its 24-column grid), titled and coloured by kind."""
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    figure, axes = plt.subplots(figsize=(9, 9 * bottom / 24 * 0.42))
    for panel in panels:
        x, y, w, h = (panel["gridPos"][k] for k in ("x", "y", "w", "h"))
        if panel["type"] == "row":
            axes.text(x + 0.1, y + 0.5, panel["title"], va="center", fontsize=9, fontweight="bold")
            continue
        colour = PANEL_COLOURS.get(panel["type"], "#eeeeee")
        axes.add_patch(Rectangle((x + 0.1, y + 0.1), w - 0.2, h - 0.2, facecolor=colour, edgecolor="#666666"))
        axes.text(
            x + w / 2,
            y + h / 2,
            f"{panel['title']}\n({panel['type']})",
            ha="center",
            va="center",
            fontsize=7,
            wrap=True,
        )
    axes.set_xlim(0, 24)
    axes.set_ylim(bottom, 0)
    axes.axis("off")
    return svg(figure)


def dashboard_panels() -> str:
    """Every panel drawn from the recorded query results, where Grafana places it: a stat panel's last
    value, a time series panel's lines (the first six series, as Grafana's legend would list them)."""
    recorded = json.loads(SAMPLES.read_text())
    by_title = {panel["title"]: panel for panel in recorded["panels"]}
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    width, row_height = 16.0, 0.36  # inches: the figure, and one grid row
    figure = plt.figure(figsize=(width, bottom * row_height))
    for panel in panels:
        x, y, w, h = (panel["gridPos"][k] for k in ("x", "y", "w", "h"))
        box = (x / 24 + 0.004, 1 - (y + h) / bottom + 0.004, w / 24 - 0.008, h / bottom - 0.008)
        if panel["type"] == "row":
            figure.text(box[0], box[1] + box[3] / 2, panel["title"], fontsize=11, fontweight="bold", va="center")
            continue
        axes = figure.add_axes(box)
        axes.set_title(panel["title"], fontsize=8, loc="left")
        axes.tick_params(labelsize=6)
        series = by_title.get(panel["title"], {}).get("series", [])
        if not series:
            axes.text(
                0.5, 0.5, "no data", ha="center", va="center", fontsize=8, color="#888888", transform=axes.transAxes
            )
            axes.set_xticks([])
            axes.set_yticks([])
        elif panel["type"] == "stat":
            last = series[0]["values"][-1][1]
            text = (
                {1.0: "ready", 0.0: "not ready"}.get(last, f"{last:.3g}")
                if panel["title"] == "Engine"
                else f"{last:.3g}"
            )
            if panel["title"] == "Served":
                text = series[0]["legend"]
            axes.text(
                0.5,
                0.45,
                text,
                ha="center",
                va="center",
                fontsize=14 if len(text) < 12 else 6,
                transform=axes.transAxes,
            )
            axes.set_xticks([])
            axes.set_yticks([])
        else:
            for line in series[:6]:
                times, values = zip(*line["values"], strict=True)
                axes.plot(times, values, linewidth=0.8, label=line["legend"][:40])
            axes.legend(fontsize=5, loc="upper left", frameon=False)
            axes.set_xlabel("seconds", fontsize=6)
    figure.suptitle(
        f"The PandaLM dashboard's panels over {recorded['seconds']} s of mixed traffic to the demo judge "
        "(query results recorded by scripts/dashboard_samples.py; drawn without Grafana)",
        fontsize=10, y=1.0,
    )  # fmt: skip
    return svg(figure)


def render() -> dict[Path, str]:
    plt.rcParams["svg.hashsalt"] = "pandalm-serve"
    plt.rcParams["svg.fonttype"] = "none"
    return {
        IMAGES / "benchmark-alternatives.svg": alternatives(),
        IMAGES / "benchmark-service-overhead.svg": service_overhead(),
        IMAGES / "dashboard-layout.svg": dashboard_layout(),
        **({IMAGES / "dashboard-panels.svg": dashboard_panels()} if SAMPLES.exists() else {}),
    }


if __name__ == "__main__":
    sys.exit(main(__doc__, render))
