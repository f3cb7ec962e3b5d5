"""What the judge must know about the model beyond its weights (demo.py reads it from the demo judge's folder)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """What the judge must know about the model beyond its weights."""

    demo: bool = False
    # The model's output must be constrained to this expression (the demo judge: PandaLM's format).
    output_regex: str | None = None
