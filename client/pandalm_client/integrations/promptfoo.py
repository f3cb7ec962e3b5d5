"""A promptfoo assertion: the test's output judged against a baseline by PandaLM, through the service.

In promptfooconfig.yaml (the example in the repository's integrations/promptfoo/):

    defaultTest:
      assert:
        - type: python
          value: file:///path/to/pandalm_client/integrations/promptfoo.py
          config: {preset: greedy}   # optional: judging options, `base_url`, `api_key`
    tests:
      - vars: {instruction: "Give the capital of France.", baseline: "Paris."}

`python -c "import pandalm_client.integrations.promptfoo as m; print(m.__file__)"` prints the path. The
baseline is the test's `baseline` variable (promptfoo reads `baseline: file://answer.txt` from a file),
the instruction its `instruction` variable or else the prompt, the context its `input` variable.
The assertion passes when the output is not worse than the baseline (score 1 or 0.5; both orders are
judged unless `config` sets `swap: false`); the probabilities go in its metadata. A judge failure raises,
which promptfoo reports as the assertion's error message (its score is 0, as for any assertion error).
"""

# promptfoo puts this file's folder first on sys.path, where our `inspect.py` and `deepeval.py` would stand
# in for the standard library's `inspect` and the real DeepEval in any later first import: take it off.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _HERE]

import json  # noqa: E402
from collections.abc import Mapping  # noqa: E402
from typing import Any  # noqa: E402

# Absolute imports: promptfoo loads this file by its path, outside the package.
from pandalm_client.integrations import judge  # noqa: E402


def get_assert(output: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """promptfoo's entry point: the grading result (`pass`, `score`, `reason`, `metadata`) of one output."""
    variables = context.get("vars") or {}
    baseline = variables.get("baseline")
    if not isinstance(baseline, str):
        raise ValueError("the PandaLM assertion needs the test's baseline output: set `vars: {baseline: ...}`")
    instruction = variables.get("instruction") or context.get("prompt")
    if not isinstance(instruction, str) or not instruction:
        raise ValueError("the PandaLM assertion needs an instruction: set `vars: {instruction: ...}` or a prompt")
    candidate = output if isinstance(output, str) else json.dumps(output)
    found = judge(instruction, candidate, baseline, str(variables.get("input") or ""), **(context.get("config") or {}))
    return {
        "pass": found.score >= 0.5,
        "score": found.score,
        "reason": found.reason,
        "metadata": {
            "pandalm_verdict": found.result.verdict,
            "pandalm_consistent": found.result.consistent,
            "pandalm_probabilities": found.probabilities,
            "pandalm_model": found.result.model,
        },
    }
