"""One prompt the gate judged: its own module, so that the gate and its reports both import it."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import CompareResult
from ._io import ModelOutput


@dataclass(frozen=True, slots=True)
class Judged:
    """One prompt: the candidate as response 1, the baseline as response 2, judged in both orders."""

    id: str
    candidate: ModelOutput
    baseline: ModelOutput
    result: CompareResult

    @property
    def score(self) -> float | None:
        """1 win, 0 loss, ½ tie or disagreeing orders; None when there is no verdict."""
        if self.result.status != "ok":
            return None
        if self.result.verdict == "response1":
            return 1.0
        if self.result.verdict == "response2":
            return 0.0
        return 0.5
