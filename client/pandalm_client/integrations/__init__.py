"""Adapters for the evaluation tools teams already run: promptfoo, DeepEval and inspect-ai.

Each compares a candidate output with a baseline through the service's /compare and maps the verdict into
the tool's own result: the candidate better scores 1, a tie 0.5, the baseline better 0. Both orders are
judged (`swap=True`) unless the options say otherwise, so PandaLM's position bias cannot decide a score.
A judge that gives no verdict (the service fails, or its output does not parse) raises `JudgeFailure` or the
client's error: the tool reports an error, never a lost comparison.

The tools themselves are imported only by their own module (`.promptfoo`, `.deepeval`, `.inspect`), each
installed with its extra (`pip install "pandalm-client[deepeval]"`); this module needs none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pandalm_client._client import AsyncPandaLMClient, PandaLMClient
from pandalm_client._exceptions import PandaLMError
from pandalm_client.models import CompareResult, JudgeOptions

# The candidate is sent as response1 and the baseline as response2; verdicts come back in those positions.
SCORES = {"response1": 1.0, "tie": 0.5, "response2": 0.0}
# Options for the client rather than the judge; every other option is a `JudgeOptions` field.
CLIENT_OPTIONS = frozenset({"base_url", "api_key", "timeout", "retry"})


class JudgeFailure(PandaLMError):
    """The judge gave no verdict for a pair: an error of the evaluation, not a comparison the candidate lost."""

    def __init__(self, message: str, result: CompareResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True, slots=True)
class Judgement:
    """A candidate judged against its baseline: its score (1, 0.5 or 0), a reason to show, and the result."""

    score: float
    reason: str
    result: CompareResult

    @property
    def probabilities(self) -> dict[str, float] | None:
        """The judge's probabilities as candidate better / tie / baseline better, when the engine gives them."""
        probs = self.result.probabilities
        if probs is None:
            return None
        return {"candidate": probs.response1, "tie": probs.tie, "baseline": probs.response2}


@dataclass(frozen=True, slots=True)
class Options:
    """An adapter's options split in two: the client's (URL, key, timeout, retries) and the judge's."""

    client: dict[str, Any]
    judge: dict[str, Any]

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> Options:
        """Split and check `options`: a misspelt judging option fails here, before any pair is judged."""
        client = {k: v for k, v in options.items() if k in CLIENT_OPTIONS}
        judge = {"swap": True, **{k: v for k, v in options.items() if k not in CLIENT_OPTIONS}}
        JudgeOptions(**judge)
        return cls(client, judge)

    def sync_client(self) -> PandaLMClient:
        """A client honouring `PANDALM_URL` and `PANDALM_API_KEY` where the options name no URL or key."""
        return PandaLMClient(**self.client)

    def async_client(self) -> AsyncPandaLMClient:
        return AsyncPandaLMClient(**self.client)


def judge(instruction: str, candidate: str, baseline: str, input: str = "", **options: Any) -> Judgement:
    """Judge `candidate` against `baseline` for one instruction (blocking). Options: see `Options`."""
    parsed = Options.of(options)
    with parsed.sync_client() as client:
        return judgement(client.compare(instruction, candidate, baseline, input, **parsed.judge))


async def a_judge(instruction: str, candidate: str, baseline: str, input: str = "", **options: Any) -> Judgement:
    """The async twin of `judge`."""
    parsed = Options.of(options)
    async with parsed.async_client() as client:
        return judgement(await client.compare(instruction, candidate, baseline, input, **parsed.judge))


def judgement(result: CompareResult) -> Judgement:
    """A result with the candidate as response1, as a `Judgement`; `JudgeFailure` when it has no verdict."""
    if result.status != "ok" or result.verdict is None:
        detail = result.error.message if result.error is not None else f"its output did not parse: {result.raw!r}"
        raise JudgeFailure(f"the PandaLM judge gave no verdict ({result.status}): {detail}", result)
    return Judgement(SCORES[result.verdict], describe(result), result)


def describe(result: CompareResult) -> str:
    """One line saying what the judge decided and why, the candidate and baseline named as such."""
    verdict = result.verdict or "tie"
    said = {
        "response1": "the output is better than the baseline",
        "tie": "the output is as good as the baseline (a tie)",
        "response2": "the baseline is better than the output",
    }[verdict]
    if result.consistent is False:
        said += "; the two orders disagreed, so it counts as a tie"
    if result.probabilities is not None:
        said += f" (P(output better) = {result.probabilities.response1:.2f})"
    if not result.reason:
        return f"PandaLM: {said}."
    # The judge's own words name positions: say which is which.
    return f"PandaLM: {said}. Its reason (Response 1 is the output, Response 2 the baseline): {result.reason}"
