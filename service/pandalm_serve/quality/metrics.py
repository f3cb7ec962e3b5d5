"""How well the judge judges, as Prometheus series: `pandalm_quality_*` from live results, `pandalm_canary_*`
from the canary (quality/canary.py).

Registered on the registry the caller gives (the app's, metrics.py), so /metrics renders them with the rest.
Labels are bounded: `judge` is a configured judge's name, `key` an API key's name (`-` without keys, as
metrics.py's `client`), and the others are closed lists below. Rates and ratios are PromQL's job: these are
counters, except the canary's figures, which are the last run's values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pandalm_client.models import CompareResult, OrderResult

logger = logging.getLogger(__name__)

# The chosen label's probability is at least 1/3 (the largest of three); PandaLM-7B is mostly above 0.9.
_PROBABILITY_BUCKETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# Where a pair judged in both orders came from: the caller asked for swap, or the service sampled it.
SWAP_SOURCES = ("request", "sampled")
CANARY_METRICS = ("accuracy", "macro_f1", "kappa")
# Which position a verdict chose, as the judge saw the pair (not the request's order).
_FIRST = {"original": "response1", "swapped": "response2"}


class QualityMetrics:
    """The judge-quality and canary series, on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.verdicts = Counter(
            "pandalm_quality_verdicts_total",
            "Pairs judged, by outcome (response1, response2, tie, unparsed): the verdict mix and the unparsed "
            "count. Errors (pairs not judged) are not here.",
            ["judge", "key", "outcome"],
            registry=r,
        )
        self.positions = Counter(
            "pandalm_quality_position_verdicts_total",
            "Parsed orders by the position their verdict chose as the judge saw the pair (first, second, tie), "
            "and whether the order was judged with swap (true) or alone (false): the position preference.",
            ["judge", "key", "swap", "position"],
            registry=r,
        )
        self.swap_pairs = Counter(
            "pandalm_quality_swap_pairs_total",
            "Pairs judged in both orders with both parsed, by source (request: the caller asked for swap; "
            "sampled: --swap-sample-rate).",
            ["judge", "key", "source"],
            registry=r,
        )
        self.swap_flips = Counter(
            "pandalm_quality_swap_flips_total",
            "Pairs judged in both orders whose two verdicts disagreed, by source (request, sampled).",
            ["judge", "key", "source"],
            registry=r,
        )
        self.label_probability = Histogram(
            "pandalm_quality_label_probability",
            "The probability the judge gave the label it chose (averaged over both orders with swap), for "
            "results that carry probabilities.",
            ["judge", "key"],
            buckets=_PROBABILITY_BUCKETS,
            registry=r,
        )
        self.sampled_swaps = Counter(
            "pandalm_quality_sampled_swaps_total",
            "Swapped orders sampled for judging in the background, by outcome (judged; dropped: the queue was "
            "full; failed: the judge raised or did not parse).",
            ["judge", "outcome"],
            registry=r,
        )
        self.canary_agreement = Gauge(
            "pandalm_canary_agreement",
            "The last canary run's agreement with the canary's human labels, by metric (accuracy, macro_f1, "
            "kappa; kappa absent where undefined).",
            ["judge", "metric"],
            registry=r,
        )
        self.canary_baseline_agreement = Gauge(
            "pandalm_canary_baseline_agreement",
            "The same agreement for the verdicts the canary compares with: those recorded with the set (the "
            "builtin set: PandaLM-7B's), else the process's first run.",
            ["judge", "metric"],
            registry=r,
        )
        self.canary_changed = Gauge(
            "pandalm_canary_changed_ratio",
            "Share of the last canary run's verdicts that differ from the recorded ones (or the first run's); "
            "a verdict missing (unparsed) counts as changed. 0 on a faithful deployment.",
            ["judge"],
            registry=r,
        )
        self.canary_items = Gauge(
            "pandalm_canary_items",
            "Items of the last canary run, by status (ok, unparsed, error).",
            ["judge", "status"],
            registry=r,
        )
        self.canary_runs = Counter(
            "pandalm_canary_runs_total",
            "Canary runs, by outcome (complete; failed: an item could not be judged, the run was abandoned).",
            ["judge", "outcome"],
            registry=r,
        )
        self.canary_last_run = Gauge(
            "pandalm_canary_last_run_timestamp_seconds",
            "When the last complete canary run ended (Unix time).",
            ["judge"],
            registry=r,
        )

    def observe(self, result: CompareResult, judge: str, key: str) -> None:
        """Count one result of live traffic. Never raises: a quality count costs a metric, never the result."""
        try:
            self._observe(result, judge, key)
        except (TypeError, ValueError, KeyError):
            logger.exception("a result's quality metrics could not be recorded; the result stands")

    def _observe(self, result: CompareResult, judge: str, key: str) -> None:
        if result.status == "error":
            return
        self.verdicts.labels(judge=judge, key=key, outcome=result.outcome).inc()
        if result.jury is not None:
            return  # a jury's majority has no one position, order or probability: observe each juror's instead
        if result.orders is None:
            if result.status == "ok" and result.verdict is not None:
                self._position(judge, key, "false", "original", result.verdict)
        else:
            for order in result.orders:
                self._order_position(judge, key, order)
            if result.consistent is not None:
                self.observe_swap(judge, key, "request", flipped=not result.consistent)
        if result.status == "ok" and result.verdict is not None and result.probabilities is not None:
            chosen = getattr(result.probabilities, result.verdict)
            self.label_probability.labels(judge=judge, key=key).observe(chosen)

    def _order_position(self, judge: str, key: str, order: OrderResult) -> None:
        if order.status == "ok" and order.verdict is not None:
            self._position(judge, key, "true", order.order, order.verdict)

    def _position(self, judge: str, key: str, swap: str, order: str, verdict: str) -> None:
        position = "tie" if verdict == "tie" else "first" if verdict == _FIRST[order] else "second"
        self.positions.labels(judge=judge, key=key, swap=swap, position=position).inc()

    def observe_swap(self, judge: str, key: str, source: str, *, flipped: bool) -> None:
        """Count a pair judged in both orders, both parsed; `flipped` when the two verdicts disagreed."""
        if source not in SWAP_SOURCES:
            raise ValueError(f"unknown swap source {source!r}")
        self.swap_pairs.labels(judge=judge, key=key, source=source).inc()
        # Created at zero with its denominator, so a flip rate reads 0, not "no data", before the first flip.
        flips = self.swap_flips.labels(judge=judge, key=key, source=source)
        if flipped:
            flips.inc()

    def observe_canary(
        self,
        judge: str,
        agreement: Mapping[str, float | None],
        baseline: Mapping[str, float | None],
        changed_ratio: float | None,
        statuses: Mapping[str, int],
        finished_at: float,
    ) -> None:
        """Export a complete canary run."""
        for gauge, figures in ((self.canary_agreement, agreement), (self.canary_baseline_agreement, baseline)):
            for metric in CANARY_METRICS:
                value = figures.get(metric)
                if value is None:
                    # An undefined figure (kappa with one label only) is no series, not a made-up number.
                    gauge.remove(judge, metric)
                else:
                    gauge.labels(judge=judge, metric=metric).set(value)
        if changed_ratio is not None:  # None: nothing to compare with yet
            self.canary_changed.labels(judge=judge).set(changed_ratio)
        for status in ("ok", "unparsed", "error"):
            self.canary_items.labels(judge=judge, status=status).set(statuses.get(status, 0))
        self.canary_runs.labels(judge=judge, outcome="complete").inc()
        self.canary_last_run.labels(judge=judge).set(finished_at)

    def observe_canary_failure(self, judge: str) -> None:
        """Count a canary run abandoned because an item could not be judged (its figures stay the last run's)."""
        self.canary_runs.labels(judge=judge, outcome="failed").inc()
