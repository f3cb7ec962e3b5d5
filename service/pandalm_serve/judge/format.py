"""PandaLM's text format in one place: its section headers, its three labels and the output it writes.

    <1|2|Tie>\\n\\n### Reason: <reason>\\n\\n### Reference: <reference>\\n

The prompt, the parser, the label tokens, the injection checks, the demo judge, the replay server and
the tests all take the format from here.
"""

from __future__ import annotations

from pandalm_client.models import Verdict


def header(section: str) -> str:
    """A section header as PandaLM writes it, e.g. `### Reason:`."""
    return f"### {section}:"


INSTRUCTION_HEADER = header("Instruction")
INPUT_HEADER = header("Input")
RESPONSE1_HEADER = header("Response 1")
RESPONSE2_HEADER = header("Response 2")
EVALUATION_HEADER = header("Evaluation")
REASON_HEADER = header("Reason")
REFERENCE_HEADER = header("Reference")
# Every section of the prompt and of the output, as a case-insensitive pattern of its name.
SECTION_NAME_PATTERN = r"instruction|input|response[ \t]*[12]|evaluation|reason|reference"

VERDICTS: tuple[Verdict, Verdict, Verdict] = ("response1", "response2", "tie")
# The label PandaLM writes for each verdict, in the order of VERDICTS.
LABEL_TEXTS = ("1", "2", "Tie")
LABEL_OF: dict[Verdict, str] = dict(zip(VERDICTS, LABEL_TEXTS, strict=True))
VERDICT_OF_LABEL: dict[str, Verdict] = {label.lower(): verdict for verdict, label in LABEL_OF.items()}


def render_output(verdict: Verdict, reason: str, reference: str) -> str:
    """The text PandaLM writes for a verdict (its reference `output_sequence`)."""
    return f"{LABEL_OF[verdict]}\n\n{REASON_HEADER} {reason}\n\n{REFERENCE_HEADER} {reference}\n"


def output_regex(reason: str, reference: str) -> str:
    """A regular expression of PandaLM's output whose reason and reference match the given patterns.

    The labels and headers hold no character that is special in a regular expression.
    """
    return f"({'|'.join(LABEL_TEXTS)})\\n\\n{REASON_HEADER} {reason}\\n\\n{REFERENCE_HEADER} {reference}\\n"
