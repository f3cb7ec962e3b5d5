"""Reading PandaLM's output (its format: judge/format.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pandalm_client.models import Verdict

from .format import REASON_HEADER, REFERENCE_HEADER, VERDICT_OF_LABEL
from .prompt import SPECIAL_TOKEN_PATTERN


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    verdict: Verdict | None  # None: the output does not start with a label we know
    reason: str | None
    reference: str | None


def parse_output(text: str) -> ParsedOutput:
    """Read a PandaLM output. An unknown label gives `verdict=None`, never a guessed tie.

    The reference may itself contain `###` lines and newlines, so it is everything after the
    first `### Reference:` header; the reason is what lies between the two headers.
    """
    text = SPECIAL_TOKEN_PATTERN.sub("", text).strip()
    first_line, _, rest = text.partition("\n")
    verdict = VERDICT_OF_LABEL.get(first_line.strip().lower())
    if verdict is None:
        return ParsedOutput(None, None, None)

    reason: str | None = None
    reference: str | None = None
    before_reference, found_reference, after_reference = rest.partition(REFERENCE_HEADER)
    if found_reference:
        reference = after_reference.strip()
    _, found_reason, after_reason = before_reference.partition(REASON_HEADER)
    if found_reason:
        reason = after_reason.strip()
    return ParsedOutput(verdict, reason, reference)
