"""What the judge must know about the model beyond its weights (demo.py reads it from the demo judge's folder)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """What the judge must know about the model beyond its weights."""

    demo: bool = False
    # The family a demo judge was built for (None: not a demo).
    family: str | None = None
    # The model's output must be constrained to these expressions (a demo judge: its family's format), when
    # judging pairs and when grading.
    output_regex: str | None = None
    grade_regex: str | None = None
