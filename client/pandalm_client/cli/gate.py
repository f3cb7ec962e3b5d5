"""`pandalm gate --baseline base.jsonl --candidate cand.jsonl`: is the candidate at least as good?

Each file holds one model's outputs, one JSON object a line: `{"id", "instruction", "input"?,
"output"}`. On the ids in both files, the judge compares candidate and baseline in both orders; each
prompt scores 1 (the candidate wins both), 0 (it loses both) or ½ (a tie, or the orders disagree).
The gate passes when a one-sided test rejects a mean score below 0.5 - margin (Tango's score test on
p_win - p_loss), fails when it rejects a mean at or above it, and is inconclusive otherwise. The number
of prompts must be chosen before looking (`--plan` says how many for a stated power); to add prompts
and re-run after an inconclusive outcome, use `--sequential` from the first run on.

Exit codes: 0 pass, 1 fail, 2 usage, configuration or input error (a demo judge without
--allow-demo too), 3 inconclusive, 4 judge or infrastructure failure (CI may retry 4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._client import PandaLMClient
from ..sequential import SequentialStats, sequential_stats
from ..stats import GateStats, gate_stats, pairs_needed
from ._args import bounded_float
from ._common import add_option_flags, options_of
from ._errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USAGE, UsageError, item_errors
from ._io import ModelOutput, ProgressBar, pair_item, read_outputs, shared_prompts, write_json
from ._judge import add_judge_flag, judge_names, served_judges
from ._judged import Judged
from ._log import JudgementLog
from ._report import junit_xml, markdown_summary

PLAN_TIE_RATES = (0.0, 0.25, 0.5, 0.75, 0.9)
# Prompts whose two orders disagree score ½, a tie, though each could hide a loss. The default gate
# tolerates p_win - p_loss down to -0.10 (twice the margin of 0.05); above 10% inconsistent prompts,
# what the judge cannot decide could by itself move the difference by more than that tolerance.
DEFAULT_MAX_INCONSISTENT_RATE = 0.10


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "gate", help="CI gate: candidate against baseline", description=__doc__, formatter_class=_Raw
    )
    parser.add_argument("--baseline", type=Path, required=True, help="the baseline model's outputs (JSONL)")
    parser.add_argument("--candidate", type=Path, required=True, help="the candidate model's outputs (JSONL)")
    parser.add_argument(
        "--confidence",
        type=bounded_float(0.5, 1, high_open=True),
        default=0.95,
        help="one-sided confidence of the bounds",
    )
    parser.add_argument(
        "--margin",
        type=bounded_float(-0.5, 0.5, low_open=True, high_open=True),
        default=0.05,
        help="pass when the lower bound >= 0.5 - margin",
    )
    parser.add_argument(
        "--inconclusive", choices=("pass", "fail"), help="fold an inconclusive outcome into pass or fail"
    )
    parser.add_argument(
        "--max-error-rate",
        type=bounded_float(0, 1),
        default=0.02,
        help="most unparsed or failed items before exit 4",
    )
    parser.add_argument(
        "--allow-demo",
        action="store_true",
        help="judge even with the random-weight demo judge (its verdicts are noise: for trying the gate out)",
    )
    parser.add_argument(
        "--plan", action="store_true", help="print how many prompts pass an equal candidate with --power, then stop"
    )
    parser.add_argument(
        "--power",
        type=bounded_float(0, 1, low_open=True, high_open=True),
        default=0.8,
        help="the power --plan plans for (default 0.8)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="anytime-valid mode: add prompts (at the end of the files) and re-run as often as you like",
    )
    parser.add_argument(
        "--max-inconsistent-rate",
        type=bounded_float(0, 1),
        default=DEFAULT_MAX_INCONSISTENT_RATE,
        help="most prompts whose two orders disagree before exit 4 (default 0.10; 1 turns the check off)",
    )
    parser.add_argument("--out", type=Path, default=Path("pandalm-gate"), help="report.json, summary.md, junit.xml")
    parser.add_argument(
        "--log", type=Path, default=Path(".pandalm") / "judgements.jsonl", help="judged pairs, reused by re-runs"
    )
    add_judge_flag(parser, several="a jury: their majority verdict decides each prompt")
    add_option_flags(parser, skip=("swap",))
    parser.set_defaults(run=run)


class _Raw(argparse.RawDescriptionHelpFormatter):
    pass


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    names = judge_names(args)
    baseline = read_outputs(args.baseline)
    candidate = read_outputs(args.candidate)
    shared, only_baseline, only_candidate = shared_prompts((args.baseline, baseline), (args.candidate, candidate))
    for path, ids in ((args.baseline, only_baseline), (args.candidate, only_candidate)):
        if ids:
            print(f"skipped {len(ids)} id(s) only in {path}: {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
    if args.plan:
        try:
            print(plan(len(shared), args.confidence, args.margin, args.power, observed_tie_rate(args.out)))
        except ValueError as exc:  # a margin the plan cannot work with (0 or less): the flags' fault
            raise UsageError(f"--plan: {exc}") from None
        if args.sequential:
            print("(--sequential: these are the fixed-n test's figures; the anytime-valid mode needs more prompts)")
        return EXIT_OK
    if not shared:
        print(f"pandalm: no id is in both {args.baseline} and {args.candidate}")
        return EXIT_USAGE

    judges = served_judges(client, names)
    if judges.demo and not args.allow_demo:
        raise UsageError(
            "refusing to gate on the demo judge: its verdicts are random. Point --url at a service running "
            "PandaLM, or pass --allow-demo to try the gate out"
        )
    options = {**options_of(args, skip=("swap",)), "swap": True}
    log = JudgementLog(args.log, judges.identity())
    judged = judge(client, log, shared, candidate, baseline, judges.choice, options)
    # In the baseline file's order, fixed before any verdict: the sequential mode's bets depend on it.
    scores = [j.score for j in judged if j.score is not None]
    gate = sequential_stats if args.sequential else gate_stats
    stats = gate(scores, confidence=args.confidence, margin=args.margin)
    failed = [j for j in judged if j.score is None]
    shown = item_errors([(f"{args.candidate}:{j.candidate.line} (id {j.id})", j.result) for j in failed])
    if shown:
        print(f"pandalm: {shown}", file=sys.stderr)
    error_rate = len(failed) / len(judged)
    inconsistent_rate = inconsistency(judged)
    outcome = decide(stats, error_rate, args.max_error_rate, args.inconclusive)
    if outcome != "judge_failure" and inconsistent_rate > args.max_inconsistent_rate:
        print(
            f"pandalm: the two presentation orders disagreed on {inconsistent_rate:.1%} of the prompts, above "
            f"--max-inconsistent-rate {args.max_inconsistent_rate}: the judge cannot decide on this data, and "
            "counting those prompts as ties would drift the gate toward a pass",
            file=sys.stderr,
        )
        outcome = "judge_inconsistent"
    report = build_report(args, judges.record(), judged, stats, error_rate, outcome, options)
    write_reports(args.out, report, judged)
    print(report["markdown"])
    return {"pass": EXIT_OK, "fail": EXIT_FAIL, "inconclusive": EXIT_INCONCLUSIVE}.get(outcome, EXIT_INFRASTRUCTURE)


def judge(
    client: PandaLMClient,
    log: JudgementLog,
    ids: list[str],
    candidate: dict[str, ModelOutput],
    baseline: dict[str, ModelOutput],
    choice: str | list[str] | None,
    options: dict[str, Any],
) -> list[Judged]:
    """Every shared prompt judged, reusing the log; only what it lacks goes to the service."""
    items = {i: pair_item(i, candidate[i], baseline[i]) for i in ids}
    keys = {i: log.key(items[i], options) for i in ids}
    results = {i: r for i in ids if (r := log.get(keys[i])) is not None}
    missing = [items[i] for i in ids if i not in results]
    progress = ProgressBar(f"judging {len(missing)} of {len(ids)} prompts")
    for item, result in zip(
        missing, client.iter_batch(missing, progress=progress, judge=choice, **options), strict=True
    ):
        log.add(keys[item["id"]], result)
        results[item["id"]] = result
    progress.close()
    return [Judged(i, candidate[i], baseline[i], results[i]) for i in ids]


def inconsistency(judged: list[Judged]) -> float:
    """The share of prompts with a verdict whose two orders disagreed (scored as ties)."""
    scored = [j for j in judged if j.score is not None]
    return sum(1 for j in scored if j.result.consistent is False) / len(scored) if scored else 0.0


def decide(
    stats: GateStats | SequentialStats, error_rate: float, max_error_rate: float, inconclusive: str | None
) -> str:
    if error_rate > max_error_rate or stats.n == 0:
        return "judge_failure"
    if stats.outcome == "inconclusive" and inconclusive is not None:
        return inconclusive
    return stats.outcome


def observed_tie_rate(out: Path) -> float | None:
    """The tie rate of the last report in `out`, if there is one: a better guess than the assumed rates."""
    try:
        rate = json.loads((out / "report.json").read_text(encoding="utf-8"))["tie_rate"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(rate) if isinstance(rate, int | float) and 0 <= rate <= 1 else None


def plan(shared: int, confidence: float, margin: float, power: float, observed: float | None = None) -> str:
    """Prompts with which a candidate exactly as good as the baseline passes with `power`, by tie rate.

    The assumed tie rates, and `observed` (from an earlier run's report) first when there is one.
    """
    lines = [
        f"{shared} prompts are in both files. Prompts with which the gate passes a candidate as good as the "
        f"baseline {power:.0%} of the time ({confidence:.0%} one-sided, margin {margin}); choose n before "
        "judging (or use --sequential to add prompts later):"
    ]
    if margin <= 0:
        return lines[0] + "\n  none: with a margin <= 0 (a superiority test) an equal candidate never passes"
    rates = [(f"tie rate {t:4.0%}", t) for t in PLAN_TIE_RATES]
    if observed is not None:
        rates.insert(0, (f"observed {observed:4.0%}", observed))
    for label, tie_rate in rates:
        needed = pairs_needed(tie_rate, confidence=confidence, margin=margin, power=power)
        verdict = "enough" if shared >= needed else "too few: expect inconclusive (exit 3)"
        lines.append(f"  {label}: {needed:6d}  {verdict}")
    return "\n".join(lines)


def build_report(
    args: argparse.Namespace,
    judge_record: dict[str, Any],
    judged: list[Judged],
    stats: GateStats | SequentialStats,
    error_rate: float,
    outcome: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    scored = [j for j in judged if j.score is not None]
    length_difference = (
        sum(len(j.candidate.output) - len(j.baseline.output) for j in scored) / len(scored) if scored else 0.0
    )
    tie_rate = stats.ties / stats.n if stats.n else 0.0
    report: dict[str, Any] = {
        "outcome": outcome,
        "baseline": str(args.baseline),
        "candidate": str(args.candidate),
        "judge": judge_record,
        "options": options,
        "mode": "sequential" if args.sequential else "fixed-n",
        "method": stats.method,
        "confidence": args.confidence,
        "margin": args.margin,
        "prompts": len(judged),
        "statistics": asdict(stats),
        "unparsed_or_failed": len(judged) - len(scored),
        "error_rate": error_rate,
        "max_error_rate": args.max_error_rate,
        "tie_rate": tie_rate,
        "inconsistency_rate": inconsistency(judged),
        "max_inconsistent_rate": args.max_inconsistent_rate,
        "mean_length_difference_chars": length_difference,
        "power": args.power,
        # For an equal candidate at the observed tie rate; the sequential mode has no fixed n to plan.
        "prompts_needed_at_this_tie_rate": None
        if args.sequential or args.margin <= 0
        else pairs_needed(tie_rate, confidence=args.confidence, margin=args.margin, power=args.power),
    }
    report["markdown"] = markdown_summary(report, judged)
    return report


def write_reports(out: Path, report: dict[str, Any], judged: list[Judged]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", {k: v for k, v in report.items() if k != "markdown"})
    (out / "summary.md").write_text(report["markdown"], encoding="utf-8")
    (out / "junit.xml").write_text(junit_xml(report, judged), encoding="utf-8")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(report["markdown"] + "\n")
