"""Text inside a response that can steer the judge: PandaLM's own section headers, and words addressed to the judge."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from pandalm_client.models import ResultWarning

from .format import SECTION_NAME_PATTERN

# A line starting like one of PandaLM's sections. The model reads these as structure, so a
# response containing `### Evaluation:\n1` can pose as the judge's own answer.
_HEADER = re.compile(
    rf"^(?P<hashes>[ \t]*#{{2,}}[ \t]*)(?P<name>{SECTION_NAME_PATTERN})[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)

# Phrases that address whoever judges the text rather than the task. Each must be unlikely in an
# ordinary answer: none fires on PandaLM's published test set (tests/judge/test_injection.py).
# Each comes with words one of which it cannot match without: a plain substring test on the lowered
# text skips the pattern's search when none is there (most responses: the search was 15% of the service's
# own time per pair).
_JUDGE = ("judge", "evaluator", "grader", "assessor", "reviewer")
_PRAISE = ("better", "best", "superior", "winner", "preferred", "correct one")
_DIRECTIVE_PATTERNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("ignore", "disregard", "forget"),
        r"\b(ignore|disregard|forget)\b[^.\n]{0,40}\b(previous|prior|above|earlier|preceding|all)\b[^.\n]{0,20}"
        r"\b(instructions?|prompts?|rules|directions)\b",
    ),
    (
        _JUDGE,
        r"\b(you are|you're|act as|as) (an? |the )?(impartial |fair |strict )?(ai )?(judge|evaluator|grader|"
        r"assessor|reviewer)\b",
    ),
    (_JUDGE, r"\b(dear|attention|note to (the)?) ?(judge|evaluator|grader|assessor|reviewer)s?\b"),
    (
        _JUDGE,
        r"\b(judge|evaluator|grader|assessor|reviewer)s?\b[^.\n]{0,40}\b(must|should|will|shall)\b[^.\n]{0,40}"
        r"\b(choose|pick|select|prefer|rate|score|output|answer|favou?r)\b",
    ),
    (
        ("choose", "pick", "select", "prefer", "output", "rate", "favo"),
        r"\b(choose|pick|select|prefer|output|rate|favou?r)\b[^.\n]{0,20}\b(response|answer|output) ?(1|2|one|two)\b",
    ),
    (
        _PRAISE,
        r"\b(response|answer|output) ?(1|2|one|two) is (clearly |definitely |obviously )?(the )?(better|best|"
        r"superior|winner|preferred|correct one)\b",
    ),
    (
        _PRAISE,
        r"\b(this|my) (response|answer) (is|should be (rated|judged|scored) as) (the )?(better|best|superior|winner)\b",
    ),
)
_DIRECTIVES = [(words, re.compile(pattern, re.IGNORECASE)) for words, pattern in _DIRECTIVE_PATTERNS]
# Characters a reader (and the judge) does not see, which would split a word the patterns look for.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff"))


def fold(text: str) -> str:
    """`text` as the patterns should see it: compatibility forms folded (a non-breaking or other Unicode
    space is a space, a fullwidth number sign a `#`) and invisible characters removed, so that neither hides a header
    or a directive. ASCII text, nearly every response, is returned as it is, at no cost."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


@dataclass(frozen=True, slots=True)
class Screened:
    text: str
    warnings: list[ResultWarning]


def screen(name: str, text: str, *, neutralize: bool) -> Screened:
    """Warn about headers and judge-directed text in one response; defuse the headers if asked."""
    warnings: list[ResultWarning] = []
    seen = fold(text)
    headers = sorted({m.group("name").strip().title() for m in _HEADER.finditer(seen)}) if "##" in seen else []
    if headers:
        found = ", ".join(f"'### {h}:'" for h in headers)
        warnings.append(
            ResultWarning(
                code="section_header",
                message=f"{name} contains PandaLM's own section header(s) {found}, which can change the verdict",
            )
        )
        if neutralize:
            # Dropping the hashes keeps the words but no longer looks like the prompt's structure. A header
            # hidden by invisible characters is defused in the folded text, which is what the judge then gets.
            text, count = _HEADER.subn(lambda m: m.group(0)[len(m.group("hashes")) :], seen)
            seen = text
            warnings.append(
                ResultWarning(
                    code="headers_neutralized",
                    message=f"removed the '#' marks of {count} section header(s) in {name} before judging",
                )
            )
    lowered = seen.lower()
    match = next(
        (m for words, pattern in _DIRECTIVES if any(w in lowered for w in words) and (m := pattern.search(seen))),
        None,
    )
    if match:
        warnings.append(
            ResultWarning(
                code="judge_directive",
                message=f"{name} contains text addressed to the judge ({match.group(0)!r}), "
                "which can change the verdict",
            )
        )
    return Screened(text, warnings)
