"""An inspect-ai scorer: a sample's output judged against its target (or a baseline) by PandaLM, through the service.

    from inspect_ai import Task, task
    from inspect_ai.dataset import Sample
    from pandalm_client.integrations.inspect import pandalm_scorer

    @task
    def capitals() -> Task:
        return Task(dataset=[Sample(input="Give the capital of France.", target="Paris.")], scorer=pandalm_scorer())

Install with `pip install "pandalm-client[inspect]"`; run with `inspect eval`.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from pandalm_client.integrations import Options, a_judge


@scorer(metrics=[mean(), stderr()])
def pandalm_scorer(**options: Any) -> Scorer:
    """Score each sample 1 (output better), 0.5 (tie) or 0 (worse) against the `baseline` in its metadata, else
    its target; the explanation is the judge's reason. Both orders are judged unless `swap=False`. `options` are
    the judging options and the client's (`base_url`, `timeout`, `retry`); the URL defaults to `PANDALM_URL`,
    the key comes from `PANDALM_API_KEY`. A judge failure raises: inspect records the sample's error."""
    if "api_key" in options:
        # inspect writes a scorer's arguments into every eval log.
        raise ValueError(
            "pandalm_scorer takes no api_key, which inspect would write into its logs: set PANDALM_API_KEY"
        )
    Options.of(options)  # a misspelt option fails when the task is built, not at the first sample

    async def score(state: TaskState, target: Target) -> Score:
        baseline = state.metadata.get("baseline") if state.metadata else None
        if baseline is None:
            baseline = target.text
        if not isinstance(baseline, str) or not baseline:
            raise ValueError("pandalm_scorer needs a baseline: a sample target, or `baseline` in its metadata")
        output = state.output.completion
        found = await a_judge(state.input_text, output, baseline, **options)
        return Score(
            value=found.score,
            answer=output,
            explanation=found.reason,
            metadata={"verdict": found.result.verdict, "probabilities": found.probabilities},
        )

    return score
