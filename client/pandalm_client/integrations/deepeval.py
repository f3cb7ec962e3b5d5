"""A DeepEval metric: a test case's `actual_output` judged against a baseline by PandaLM, through the service.

    from deepeval import assert_test
    from deepeval.test_case import LLMTestCase
    from pandalm_client.integrations.deepeval import PandaLMMetric

    def test_answer() -> None:
        case = LLMTestCase(input="Give the capital of France.", actual_output="Paris.", expected_output="Paris")
        assert_test(case, [PandaLMMetric(threshold=0.5)])   # passes unless the baseline is better

Install with `pip install "pandalm-client[deepeval]"`, run with `deepeval test run` or pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deepeval.metrics import BaseMetric
from deepeval.test_case import LLMTestCase

from pandalm_client.integrations import Judgement, Options, a_judge, judge


class PandaLMMetric(BaseMetric):
    """The test case's input is the instruction; `actual_output` is compared with `baseline`, else with
    `expected_output`. The score is 1 (better), 0.5 (tie) or 0 (worse), both orders judged unless
    `swap=False`; it passes at `threshold` or above (0.5: not worse). `options` are the judging options
    (`preset`, `mode`...) and the client's (`base_url`, `api_key`, `timeout`, `retry`); the URL and key
    default to `PANDALM_URL` and `PANDALM_API_KEY`. A judge failure raises: DeepEval reports an error."""

    def __init__(
        self,
        threshold: float = 0.5,
        baseline: str | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        **more_options: Any,
    ) -> None:
        # DeepEval copies a metric by calling its class with the attributes named like `__init__`'s
        # parameters: `options` is such a pair, so the copy keeps them (the `**` name must not be one).
        self.options = {**(options or {}), **more_options}
        Options.of(self.options)  # a misspelt option fails when the metric is made, not at the first test
        self.threshold = threshold
        self.baseline = baseline
        self.evaluation_model = "PandaLM"
        self.include_reason = True
        self.async_mode = True
        self.strict_mode = False
        self.verdict_probabilities: dict[str, float] | None = None

    def measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        found = judge(*self._pair(test_case), **self.options)
        return self._record(found)

    async def a_measure(self, test_case: LLMTestCase, *args: Any, **kwargs: Any) -> float:
        found = await a_judge(*self._pair(test_case), **self.options)
        return self._record(found)

    def is_successful(self) -> bool:
        self.success = self.error is None and self.score is not None and self.score >= self.threshold
        return bool(self.success)

    @property
    def __name__(self) -> str:  # DeepEval reads a metric's name this way
        return "PandaLM"

    def _pair(self, test_case: LLMTestCase) -> tuple[str, str, str]:
        baseline = self.baseline if self.baseline is not None else test_case.expected_output
        if baseline is None:
            raise ValueError("PandaLMMetric needs a baseline: pass `baseline=` or set the test case's expected_output")
        if test_case.actual_output is None:
            raise ValueError("PandaLMMetric needs the test case's actual_output")
        return str(test_case.input), str(test_case.actual_output), baseline

    def _record(self, found: Judgement) -> float:
        self.score = found.score
        self.reason = found.reason
        self.verdict_probabilities = found.probabilities
        self.success = self.score >= self.threshold
        return self.score
