"""Every pandalm_* Prometheus metric, in one place, on a registry per app (so tests can build many apps).

`/metrics` renders this registry and, after it, prometheus_client's global one, where vLLM registers
its own `vllm:*` metrics (and the process and Python runtime metrics live): one endpoint for both.
Labels are bounded: an endpoint, a status code, an outcome, a warning code, a finish reason, a judge's name
(the operator configures the judges); never a request id or anything a client sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pandalm_client.models import CompareResult, GradeResult


class Generated(Protocol):
    """What the metrics read of one generation (an engine's `Generation`)."""

    @property
    def finish_reason(self) -> str: ...

    @property
    def prompt_tokens(self) -> int | None: ...

    @property
    def completion_tokens(self) -> int | None: ...


logger = logging.getLogger(__name__)

# The HTTP layer answers in milliseconds when the engine is idle; a large /batch takes minutes.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
# One pair: about a second on a GPU, up to minutes behind a long queue.
_ITEM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_QUEUE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_TOKEN_BUCKETS = (1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.build_info = Gauge(
            "pandalm_build_info",
            "Always 1; the labels say what is served.",
            ["version", "model", "engine", "template_version", "judge", "family"],
            registry=r,
        )
        self.engine_ready = Gauge("pandalm_engine_ready", "1 when the engine is loaded and answering.", registry=r)
        self.requests = Counter(
            "pandalm_http_requests_total",
            "HTTP requests to the judging endpoints, by endpoint, status code and API key name (- without keys).",
            ["endpoint", "code", "client"],
            registry=r,
        )
        self.request_duration = Histogram(
            "pandalm_http_request_duration_seconds",
            "Time to answer a judging request, to its last byte (a streamed /batch included).",
            ["endpoint"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self.batch_items = Histogram(
            "pandalm_batch_items", "Items in one /batch request.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.items_in_flight = Gauge(
            "pandalm_items_in_flight", "Pairs the engine is judging now (admitted).", registry=r
        )
        self.items_waiting = Gauge(
            "pandalm_items_waiting", "Pairs waiting for a place among those in flight.", registry=r
        )
        self.queue_time = Histogram(
            "pandalm_item_queue_seconds",
            "Time a pair waited before it was admitted to the engine.",
            buckets=_QUEUE_BUCKETS,
            registry=r,
        )
        self.judgements = Counter(
            "pandalm_judgements_total",
            "Pairs judged, by judge and outcome (response1, response2, tie, unparsed, error).",
            ["judge", "outcome"],
            registry=r,
        )
        self.judge_latency = Histogram(
            "pandalm_judge_latency_seconds",
            "Time to judge one pair (or grade one response), queue included, request to parsed verdict.",
            ["judge"],
            buckets=_ITEM_BUCKETS,
            registry=r,
        )
        self.swap_pairs = Counter(
            "pandalm_swap_pairs_total",
            "Pairs judged in both orders (the denominator of inconsistency).",
            ["judge"],
            registry=r,
        )
        self.swap_inconsistent = Counter(
            "pandalm_swap_inconsistent_total",
            "Pairs judged in both orders whose two verdicts disagreed (reported as ties).",
            ["judge"],
            registry=r,
        )
        self.result_warnings = Counter(
            "pandalm_result_warnings_total",
            "Warnings attached to results, by judge and code (section_header, judge_directive, input_truncated, ...).",
            ["judge", "code"],
            registry=r,
        )
        self.prompts_too_long = Counter(
            "pandalm_prompts_too_long_total",
            "Prompts refused before the engine because they do not fit the context.",
            registry=r,
        )
        self.generations = Counter(
            "pandalm_generations_total",
            "Engine generations (one per order), by judge and finish reason: `length` means cut at max_new_tokens.",
            ["judge", "finish_reason"],
            registry=r,
        )
        self.prompt_tokens = Counter("pandalm_prompt_tokens_total", "Prompt tokens sent to the engine.", registry=r)
        self.generated_tokens_total = Counter(
            "pandalm_generated_tokens_total", "Tokens the engine generated.", registry=r
        )
        self.generated_tokens = Histogram(
            "pandalm_pair_generated_tokens",
            "Tokens generated for one pair (both orders with swap), by judge.",
            ["judge"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.grades = Counter(
            "pandalm_grades_total",
            "Responses graded (/grade), by judge and outcome: the score, `unparsed` or `error`.",
            ["judge", "outcome"],
            registry=r,
        )

        self.cache_lookups = Counter(
            "pandalm_cache_lookups_total", "Verdict cache lookups, by result (hit, miss).", ["result"], registry=r
        )
        self.cache_errors = Counter(
            "pandalm_cache_errors_total", "Verdict cache failures: judging went on without the cache.", registry=r
        )
        self.deduplicated = Counter(
            "pandalm_deduplicated_generations_total",
            "Generations that waited for an identical one in flight instead of calling the engine again.",
            registry=r,
        )

    def exposition(self) -> bytes:
        """The judge's metrics, then the process-wide registry's (vLLM's engine metrics among them)."""
        return generate_latest(self.registry) + generate_latest(REGISTRY)

    def observe_error(self, code: str, latency_s: float, judge: str, *, grade: bool = False) -> None:
        """A pair (or a graded response) that was not judged, by its error's code."""
        (self.grades if grade else self.judgements).labels(judge=judge, outcome="error").inc()
        self.judge_latency.labels(judge=judge).observe(latency_s)
        if code == "prompt_too_long":
            self.prompts_too_long.inc()

    def observe_result(self, result: CompareResult, generations: Sequence[Generated], judge: str) -> None:
        """Count a judged pair. Never raises: a count an engine got wrong costs a metric, not the result (a
        remote server's string token count once failed a whole /batch here)."""
        try:
            self._observe_result(result, generations, judge)
        except (TypeError, ValueError):
            logger.exception("a result's metrics could not be recorded; the result stands")

    def observe_grade(self, result: GradeResult, generation: Generated, judge: str) -> None:
        """Count a graded response (never raises, as `observe_result`)."""
        outcome = str(result.score) if result.score is not None else result.status
        self.grades.labels(judge=judge, outcome=outcome).inc()
        try:
            if result.latency_ms is not None:
                self.judge_latency.labels(judge=judge).observe(result.latency_ms / 1000)
            self._observe_generations([generation], judge)
        except (TypeError, ValueError):
            logger.exception("a grade's metrics could not be recorded; the result stands")

    def _observe_result(self, result: CompareResult, generations: Sequence[Generated], judge: str) -> None:
        self.judgements.labels(judge=judge, outcome=result.outcome).inc()
        if result.latency_ms is not None:
            self.judge_latency.labels(judge=judge).observe(result.latency_ms / 1000)
        if result.orders is not None:
            self.swap_pairs.labels(judge=judge).inc()
        if result.consistent is False:
            self.swap_inconsistent.labels(judge=judge).inc()
        for warning in result.warnings:
            self.result_warnings.labels(judge=judge, code=warning.code).inc()
        if result.error is not None and result.error.code == "prompt_too_long":
            self.prompts_too_long.inc()
        self._observe_generations(generations, judge)

    def _observe_generations(self, generations: Sequence[Generated], judge: str) -> None:
        if generations:
            tokens = sum(g.completion_tokens or 0 for g in generations)
            self.generated_tokens.labels(judge=judge).observe(tokens)
            self.generated_tokens_total.inc(tokens)
        for generation in generations:
            if generation.prompt_tokens is not None:
                self.prompt_tokens.inc(generation.prompt_tokens)
            self.generations.labels(judge=judge, finish_reason=generation.finish_reason).inc()
