"""Every pandalm_* Prometheus metric, in one place, on a registry per app (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pandalm_client.models import CompareResult

from .engines.base import Generation

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN_BUCKETS = (1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.judgements = Counter(
            "pandalm_judgements_total",
            "Pairs judged, by outcome (response1, response2, tie, unparsed, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.judge_latency = Histogram(
            "pandalm_judge_latency_seconds",
            "Time to judge one pair, prompt to parsed verdict.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "pandalm_prompt_tokens_total", "Prompt tokens sent to the engine.", registry=self.registry
        )
        self.generated_tokens = Histogram(
            "pandalm_generated_tokens",
            "Tokens generated for one pair (both orders with swap).",
            buckets=_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.truncated_outputs = Counter(
            "pandalm_truncated_outputs_total",
            "Judge outputs cut off at max_new_tokens.",
            registry=self.registry,
        )
        self.requests = Counter(
            "pandalm_http_requests_total",
            "HTTP requests to the judging endpoints, by endpoint and status code.",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self.swap_inconsistent = Counter(
            "pandalm_swap_inconsistent_total",
            "Pairs judged in both orders whose two verdicts disagreed (reported as ties).",
            registry=self.registry,
        )
        self.result_warnings = Counter(
            "pandalm_result_warnings_total",
            "Warnings attached to results, by code (section_header, judge_directive, input_truncated, ...).",
            ["code"],
            registry=self.registry,
        )
        self.engine_ready = Gauge(
            "pandalm_engine_ready", "1 when the engine is loaded and answering.", registry=self.registry
        )

    def observe_result(self, result: CompareResult, generations: list[Generation]) -> None:
        self.judgements.labels(outcome=result.outcome).inc()
        if result.latency_ms is not None:
            self.judge_latency.observe(result.latency_ms / 1000)
        if result.consistent is False:
            self.swap_inconsistent.inc()
        for warning in result.warnings:
            self.result_warnings.labels(code=warning.code).inc()
        if generations:
            self.generated_tokens.observe(sum(g.completion_tokens or 0 for g in generations))
        for generation in generations:
            if generation.prompt_tokens is not None:
                self.prompt_tokens.inc(generation.prompt_tokens)
            if generation.finish_reason == "length":
                self.truncated_outputs.inc()
