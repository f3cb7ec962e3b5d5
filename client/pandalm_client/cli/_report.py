"""The gate's reports for people (Markdown, for a CI job's summary) and for CI tools (JUnit XML)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from ._judged import Judged

if TYPE_CHECKING:
    from ..models import CompareResult

_HEADLINES = {
    "pass": "PASS: the candidate is at least as good as the baseline",
    "fail": "FAIL: the candidate is worse than the baseline",
    "inconclusive": "INCONCLUSIVE: too few prompts to decide",
    "judge_failure": "JUDGE FAILURE: too many items without a verdict to decide",
    "judge_inconsistent": "JUDGE INCONSISTENT: the two orders disagree on too many prompts to decide",
}
_WORST_LOSSES = 10
# The judge's labels as the gate reads them: the candidate is response 1, the baseline response 2.
_SIDES = {"response1": "candidate", "response2": "baseline", "tie": "tie"}
_POSITIONS = "In the judge's reasons, response 1 is the candidate and response 2 the baseline"
_DEMO = "**Demo judge.** The service serves the random-weight demo judge: these verdicts are noise."


def markdown_summary(report: dict[str, Any], judged: list[Judged]) -> str:
    s = report["statistics"]
    lines = [
        f"## pandalm gate: {_HEADLINES[report['outcome']]}",
        "",
        f"Candidate `{report['candidate']}` against baseline `{report['baseline']}`, judged by "
        f"{judged_by(report['judge'])} in both orders.",
        "",
        *([_DEMO, ""] if report["judge"].get("demo") else []),
        "| | |",
        "| --- | --- |",
        f"| prompts scored | {s['n']} of {report['prompts']} ({report['unparsed_or_failed']} without a verdict) |",
        f"| wins / ties / losses | {s['wins']} / {s['ties']} / {s['losses']} |",
        f"| win rate | {s['win_rate']:.3f} |",
        f"| {report['confidence']:.0%} one-sided bounds | [{s['lower']:.3f}, {s['upper']:.3f}] |",
        f"| mode | {report['mode']}: {report['method']} |",
        f"| threshold | {s['threshold']:.3f} (0.5 - margin {report['margin']}) |",
        *([f"| sign test, wins against losses | p = {s['sign_test_p']:.4g} |"] if "sign_test_p" in s else []),
        f"| tie rate / orders disagreeing | {report['tie_rate']:.1%} / {report['inconsistency_rate']:.1%} "
        f"(at most {report['max_inconsistent_rate']:.0%}) |",
        f"| mean length difference | {report['mean_length_difference_chars']:+.0f} characters (candidate - baseline) |",
        *(
            [
                f"| prompts an equal candidate needs to pass {report['power']:.0%} of the time at this tie rate | "
                f"{report['prompts_needed_at_this_tie_rate']} |"
            ]
            if report["prompts_needed_at_this_tie_rate"] is not None
            else []
        ),
    ]
    losses = sorted(
        (j for j in judged if j.score == 0.0),
        key=lambda j: -(j.result.probabilities.response2 if j.result.probabilities else 0.0),
    )
    if losses:
        lines += ["", f"### Worst losses ({min(len(losses), _WORST_LOSSES)} of {len(losses)})", ""]
        lines += [f"{_POSITIONS}.", ""]
        lines += ["| id | P(baseline better) | the judge's reason |", "| --- | --- | --- |"]
        for j in losses[:_WORST_LOSSES]:
            p = f"{j.result.probabilities.response2:.2f}" if j.result.probabilities else "n/a"
            lines.append(f"| `{j.id}` | {p} | {_cell(j.result.reason or '')} |")
    return "\n".join(lines) + "\n"


def junit_xml(report: dict[str, Any], judged: list[Judged]) -> str:
    """One test case per prompt (a loss fails, no verdict is an error), and one for the gate's decision.

    Each prompt's case carries its verdict, the judge's reason and both orders' verdicts, as properties
    and as text (the failure's, or system-out), so that a CI page shows why a prompt lost.
    """
    suite = ET.Element("testsuite", name="pandalm-gate")
    suite_properties = ET.SubElement(suite, "properties")
    name_of = report["judge"].get("name")
    for name, value in (
        ("outcome", report["outcome"]),
        ("judge.model", report["judge"]["model"]),
        ("judge.demo", str(bool(report["judge"].get("demo"))).lower()),
        *([("judge.name", ", ".join(name_of) if isinstance(name_of, list) else name_of)] if name_of else []),
    ):
        ET.SubElement(suite_properties, "property", name=name, value=str(value))
    failures = errors = 0
    for j in judged:
        case = ET.SubElement(suite, "testcase", classname="pandalm.gate.prompt", name=j.id)
        properties = ET.SubElement(case, "properties")
        for name, value in _case_properties(j.result):
            ET.SubElement(properties, "property", name=name, value=value)
        text = _case_text(j.result)
        if j.score is None:
            errors += 1
            ET.SubElement(case, "error", message=f"no verdict ({j.result.status})").text = text
        elif j.score == 0.0:
            failures += 1
            message = f"the baseline is better: {_cell(j.result.reason or 'no reason given')}"
            ET.SubElement(case, "failure", message=message).text = text
        else:
            ET.SubElement(case, "system-out").text = text
    decision = ET.SubElement(suite, "testcase", classname="pandalm.gate", name="decision")
    outcome = report["outcome"]
    if outcome in ("judge_failure", "judge_inconsistent"):
        errors += 1
        ET.SubElement(decision, "error", message=_HEADLINES[outcome])
    elif outcome != "pass":
        failures += 1
        ET.SubElement(decision, "failure", message=_HEADLINES[outcome])
    ET.SubElement(decision, "system-out").text = report["markdown"]
    suite.set("tests", str(len(judged) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def judged_by(judge: dict[str, Any]) -> str:
    """The judge of a report in words: its name and model, or a jury's names."""
    name = judge.get("name")
    if isinstance(name, list):
        return f"the jury {', '.join(f'`{n}`' for n in name)} (majority verdict; {judge['model']})"
    named = f"`{name}`: " if name else ""
    return f"{named}`{judge['model']}` ({judge['template_version']})"


def _case_properties(result: CompareResult) -> list[tuple[str, str]]:
    verdict = _SIDES[result.verdict] if result.status == "ok" and result.verdict else result.status
    properties = [("verdict", verdict), ("reason", result.reason or "")]
    for order in result.orders or []:
        properties.append((f"order.{order.order}", _SIDES[order.verdict] if order.verdict else order.status))
    if result.error is not None:
        properties.append(("error", result.error.code))
    return properties


def _case_text(result: CompareResult) -> str:
    """The prompt's judgement in a few lines: what CI shows under the test case."""
    lines = [f"{name}: {value}" for name, value in _case_properties(result) if name != "reason"]
    if result.consistent is False:
        lines.append("the two orders disagreed: counted as a tie")
    if result.reason:
        lines.append(f"reason ({_POSITIONS.lower()}): {result.reason}")
    if result.error is not None:
        lines.append(f"error: {result.error.message}")
    elif result.status == "unparsed" and result.raw:
        lines.append(f"the judge's output: {result.raw}")
    return "\n".join(lines)


def _cell(text: str, limit: int = 200) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
