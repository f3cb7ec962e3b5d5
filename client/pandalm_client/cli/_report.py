"""The gate's reports for people (Markdown, for a CI job's summary) and for CI tools (JUnit XML)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from ._judged import Judged

_HEADLINES = {
    "pass": "PASS: the candidate is at least as good as the baseline",
    "fail": "FAIL: the candidate is worse than the baseline",
    "inconclusive": "INCONCLUSIVE: too few prompts to decide",
    "judge_failure": "JUDGE FAILURE: too many items without a verdict to decide",
}
_WORST_LOSSES = 10


def markdown_summary(report: dict[str, Any], judged: list[Judged]) -> str:
    s = report["statistics"]
    lines = [
        f"## pandalm gate: {_HEADLINES[report['outcome']]}",
        "",
        f"Candidate `{report['candidate']}` against baseline `{report['baseline']}`, judged by "
        f"`{report['judge']['model']}` ({report['judge']['template_version']}) in both orders.",
        "",
        "| | |",
        "| --- | --- |",
        f"| prompts scored | {s['n']} of {report['prompts']} ({report['unparsed_or_failed']} without a verdict) |",
        f"| wins / ties / losses | {s['wins']} / {s['ties']} / {s['losses']} |",
        f"| win rate | {s['win_rate']:.3f} |",
        f"| {report['confidence']:.0%} one-sided bounds | [{s['lower']:.3f}, {s['upper']:.3f}] "
        f"(effective sample size {s['n_eff']:.0f}) |",
        f"| threshold | {s['threshold']:.3f} (0.5 - margin {report['margin']}) |",
        f"| sign test, wins against losses | p = {s['sign_test_p']:.4g} |",
        f"| tie rate / orders disagreeing | {report['tie_rate']:.1%} / {report['inconsistency_rate']:.1%} |",
        f"| mean length difference | {report['mean_length_difference_chars']:+.0f} characters (candidate - baseline) |",
        f"| prompts a decision needs at this tie rate | {report['prompts_needed_at_this_tie_rate']} |",
    ]
    losses = sorted(
        (j for j in judged if j.score == 0.0),
        key=lambda j: -(j.result.probabilities.response2 if j.result.probabilities else 0.0),
    )
    if losses:
        lines += ["", f"### Worst losses ({min(len(losses), _WORST_LOSSES)} of {len(losses)})", ""]
        lines += ["| id | P(baseline better) | the judge's reason |", "| --- | --- | --- |"]
        for j in losses[:_WORST_LOSSES]:
            p = f"{j.result.probabilities.response2:.2f}" if j.result.probabilities else "n/a"
            lines.append(f"| `{j.id}` | {p} | {_cell(j.result.reason or '')} |")
    return "\n".join(lines) + "\n"


def junit_xml(report: dict[str, Any], judged: list[Judged]) -> str:
    """One test case per prompt (a loss fails, no verdict is an error), and one for the gate's decision."""
    suite = ET.Element("testsuite", name="pandalm-gate")
    failures = errors = 0
    for j in judged:
        case = ET.SubElement(suite, "testcase", classname="pandalm.gate.prompt", name=j.id)
        if j.score is None:
            errors += 1
            detail = j.result.error.message if j.result.error else (j.result.raw or "")
            ET.SubElement(case, "error", message=f"no verdict ({j.result.status})").text = detail
        elif j.score == 0.0:
            failures += 1
            ET.SubElement(case, "failure", message="the baseline is better").text = j.result.reason or ""
    decision = ET.SubElement(suite, "testcase", classname="pandalm.gate", name="decision")
    outcome = report["outcome"]
    if outcome == "judge_failure":
        errors += 1
        ET.SubElement(decision, "error", message=_HEADLINES[outcome])
    elif outcome != "pass":
        failures += 1
        ET.SubElement(decision, "failure", message=_HEADLINES[outcome])
    suite.set("tests", str(len(judged) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _cell(text: str, limit: int = 200) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
