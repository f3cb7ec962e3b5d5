"""The quality series as Prometheus reads them, from results built by hand."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pandalm_client.models import CompareResult, JurorResult
from pandalm_serve.quality.metrics import QualityMetrics
from tests.quality.results import both_orders, one_order


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def quality(registry: CollectorRegistry) -> QualityMetrics:
    return QualityMetrics(registry)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_the_verdict_mix_and_unparsed_count_per_judge_and_key(
    registry: CollectorRegistry, quality: QualityMetrics
) -> None:
    for result in (one_order("response1"), one_order("response1"), one_order("tie"), one_order(None)):
        quality.observe(result, "pandalm", "team-a")
    quality.observe(one_order("response2"), "other", "-")
    quality.observe(CompareResult(status="error"), "pandalm", "team-a")  # not judged: not counted
    verdicts = "pandalm_quality_verdicts_total"
    assert value(registry, verdicts, judge="pandalm", key="team-a", outcome="response1") == 2
    assert value(registry, verdicts, judge="pandalm", key="team-a", outcome="tie") == 1
    assert value(registry, verdicts, judge="pandalm", key="team-a", outcome="unparsed") == 1
    assert value(registry, verdicts, judge="other", key="-", outcome="response2") == 1
    assert 'outcome="error"' not in generate_latest(registry).decode()


def test_swap_pairs_and_flips_count_pairs_with_both_orders_parsed(
    registry: CollectorRegistry, quality: QualityMetrics
) -> None:
    quality.observe(both_orders("response1", "response1"), "pandalm", "-")
    quality.observe(both_orders("response1", "response2"), "pandalm", "-")
    quality.observe(both_orders("tie", "response2"), "pandalm", "-")
    quality.observe(one_order("response1"), "pandalm", "-")  # one order: not a swap pair
    labels = {"judge": "pandalm", "key": "-", "source": "request"}
    assert value(registry, "pandalm_quality_swap_pairs_total", **labels) == 3
    assert value(registry, "pandalm_quality_swap_flips_total", **labels) == 2


def test_a_flip_rate_reads_zero_before_the_first_flip(registry: CollectorRegistry, quality: QualityMetrics) -> None:
    quality.observe(both_orders("response2", "response2"), "pandalm", "-")
    labels = {"judge": "pandalm", "key": "-", "source": "request"}
    assert registry.get_sample_value("pandalm_quality_swap_flips_total", labels) == 0


def test_position_preference_as_the_judge_saw_each_order(registry: CollectorRegistry, quality: QualityMetrics) -> None:
    # Without swap the request's order is the judge's: response1 is the first position.
    quality.observe(one_order("response1"), "pandalm", "-")
    quality.observe(one_order("response2"), "pandalm", "-")
    quality.observe(one_order("response1"), "pandalm", "-")
    # With swap, the swapped order showed response2 first: response2 winning there is a first-position win.
    quality.observe(both_orders("response1", "response2"), "pandalm", "-")
    quality.observe(both_orders("tie", "response1"), "pandalm", "-")
    name = "pandalm_quality_position_verdicts_total"
    alone = {"judge": "pandalm", "key": "-", "swap": "false"}
    swapped = {"judge": "pandalm", "key": "-", "swap": "true"}
    assert value(registry, name, **alone, position="first") == 2
    assert value(registry, name, **alone, position="second") == 1
    assert value(registry, name, **swapped, position="first") == 2  # original response1, swapped response2
    assert value(registry, name, **swapped, position="second") == 1  # swapped order chose response1
    assert value(registry, name, **swapped, position="tie") == 1


def test_the_chosen_labels_probability_histogram(registry: CollectorRegistry, quality: QualityMetrics) -> None:
    quality.observe(one_order("response1", probability=0.93), "pandalm", "-")
    quality.observe(one_order("tie", probability=0.45), "pandalm", "-")
    quality.observe(one_order("response2"), "pandalm", "-")  # no probabilities: not observed
    name = "pandalm_quality_label_probability"
    labels = {"judge": "pandalm", "key": "-"}
    assert value(registry, f"{name}_count", **labels) == 2
    assert value(registry, f"{name}_sum", **labels) == pytest.approx(1.38)
    assert value(registry, f"{name}_bucket", **labels, le="0.5") == 1
    assert value(registry, f"{name}_bucket", **labels, le="0.95") == 2


def test_the_canarys_figures_and_an_undefined_kappa_as_no_series(
    registry: CollectorRegistry, quality: QualityMetrics
) -> None:
    figures = {"accuracy": 0.7, "macro_f1": 0.6, "kappa": 0.5}
    quality.observe_canary("pandalm", figures, figures, 0.0, {"ok": 30}, 1_700_000_000.0)
    assert value(registry, "pandalm_canary_agreement", judge="pandalm", metric="kappa") == 0.5
    quality.observe_canary("pandalm", {**figures, "kappa": None}, figures, 0.1, {"ok": 29, "unparsed": 1}, 1.7e9)
    assert registry.get_sample_value("pandalm_canary_agreement", {"judge": "pandalm", "metric": "kappa"}) is None
    assert value(registry, "pandalm_canary_changed_ratio", judge="pandalm") == 0.1
    assert value(registry, "pandalm_canary_items", judge="pandalm", status="unparsed") == 1
    assert value(registry, "pandalm_canary_runs_total", judge="pandalm", outcome="complete") == 2
    quality.observe_canary_failure("pandalm")
    assert value(registry, "pandalm_canary_runs_total", judge="pandalm", outcome="failed") == 1


def test_every_series_is_named_by_the_contract(registry: CollectorRegistry) -> None:
    QualityMetrics(registry)
    names = {metric.name for metric in registry.collect()}
    assert all(name.startswith(("pandalm_quality_", "pandalm_canary_")) for name in names), names
    assert {"pandalm_canary_agreement", "pandalm_canary_changed_ratio"} <= names


def test_a_jurys_majority_counts_in_the_verdict_mix_only(registry: CollectorRegistry, quality: QualityMetrics) -> None:
    jury = [JurorResult(judge="a", verdict="response1", status="ok"), JurorResult(judge="b", status="unparsed")]
    result = one_order("response1", probability=0.9).model_copy(update={"jury": jury, "judge": ["a", "b"]})
    quality.observe(result, "jury", "-")
    assert value(registry, "pandalm_quality_verdicts_total", judge="jury", key="-", outcome="response1") == 1
    assert "pandalm_quality_position_verdicts_total{" not in generate_latest(registry).decode()
    assert value(registry, "pandalm_quality_label_probability_count", judge="jury", key="-") == 0
