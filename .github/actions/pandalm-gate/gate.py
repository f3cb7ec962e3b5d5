"""The pandalm-gate action's work: run `pandalm gate`, retry exit 4, write the step summary and the outputs.

Run by action.yml with the Python the client was installed into; its inputs arrive as INPUT_* variables
(PANDALM_URL and PANDALM_API_KEY go to the client as they are). Standard library only. Exits with the
gate's code: 0 pass, 1 fail, 2 usage or configuration error, 3 inconclusive, 4 judge or infrastructure
failure (after the retries).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

USAGE_ERROR = 2
EXIT_INFRASTRUCTURE = 4
REPORTS = ("report.json", "summary.md", "junit.xml")
MEANINGS = {
    0: "pass",
    1: "fail",
    2: "usage_error",
    3: "inconclusive",
    4: "judge_failure",
}


def gate_args(env: dict[str, str], out: Path) -> list[str]:
    """`pandalm gate`'s arguments from the action's inputs; an input left empty keeps the CLI's default."""
    args = ["--baseline", env["INPUT_BASELINE"], "--candidate", env["INPUT_CANDIDATE"], "--out", str(out)]
    args += ["--log", str(Path(env.get("INPUT_LOG_DIR") or ".pandalm") / "judgements.jsonl")]
    for flag, variable in (("--margin", "INPUT_MARGIN"), ("--confidence", "INPUT_CONFIDENCE")):
        if env.get(variable):
            args += [flag, env[variable]]
    for flag, variable in (("--plan", "INPUT_PLAN"), ("--sequential", "INPUT_SEQUENTIAL")):
        if env.get(variable, "false").lower() == "true":
            args.append(flag)
    return args + shlex.split(env.get("INPUT_EXTRA_ARGS", ""))


def run_gate(args: list[str], env: dict[str, str], retries: int, delay_s: float) -> int:
    """The gate's exit code; exit 4 (the judge or the network failed) is tried again `retries` times."""
    # The client writes $GITHUB_STEP_SUMMARY itself; here it is written once, after the last attempt.
    child_env = {**env, "GITHUB_STEP_SUMMARY": ""}
    attempt = 0
    while True:
        code = subprocess.run([sys.executable, "-m", "pandalm_client.cli", "gate", *args], env=child_env).returncode
        if code != EXIT_INFRASTRUCTURE or attempt >= retries:
            return code
        attempt += 1
        print(f"::warning::pandalm gate exited 4 (the judge or the network failed); retry {attempt} of {retries} "
              f"in {delay_s:g} s", flush=True)  # fmt: skip
        time.sleep(delay_s)


def outputs(code: int, out: Path, *, planned: bool) -> dict[str, str]:
    """The action's outputs: from report.json when the gate wrote one, else from the exit code alone."""
    outcome = "plan" if planned and code == 0 else MEANINGS.get(code, "judge_failure")
    values = {"exit-code": str(code), "outcome": outcome, "report": ""}
    values.update({"win-rate": "", "lower": "", "upper": ""})
    report_path = out / "report.json"
    if report_path.is_file():
        report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
        statistics = report.get("statistics", {})
        values["outcome"] = str(report.get("outcome", values["outcome"]))
        values["report"] = str(report_path)
        for output, field in (("win-rate", "win_rate"), ("lower", "lower"), ("upper", "upper")):
            if isinstance(statistics.get(field), int | float):
                values[output] = f"{statistics[field]:.4f}"
    return values


def append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def main() -> int:
    env = dict(os.environ)
    out = Path(env.get("INPUT_OUT") or "pandalm-gate")
    for name in REPORTS:  # a report left by an earlier run must not pass for this one's
        (out / name).unlink(missing_ok=True)
    try:
        retries = int(env.get("INPUT_RETRIES") or 2)
        delay_s = float(env.get("INPUT_RETRY_DELAY") or 60)
        args = gate_args(env, out)
    except (KeyError, ValueError) as exc:  # exit 2, as the gate's own usage errors: never 1, which means "worse"
        print(f"::error::pandalm-gate: bad input: {exc} (retries and retry-delay are numbers; baseline and candidate "
              "are required)", flush=True)  # fmt: skip
        code = USAGE_ERROR
    else:
        code = run_gate(args, env, max(retries, 0), max(delay_s, 0.0))
    values = outputs(code, out, planned=env.get("INPUT_PLAN", "").lower() == "true")
    summary = out / "summary.md"
    if summary.is_file():
        append(env.get("GITHUB_STEP_SUMMARY"), summary.read_text(encoding="utf-8") + "\n")
    else:
        append(
            env.get("GITHUB_STEP_SUMMARY"),
            f"## pandalm gate: exit {code} ({values['outcome']})\n\nNo report was written: see the step's log.\n",
        )
    append(env.get("GITHUB_OUTPUT"), "".join(f"{name}={value}\n" for name, value in values.items()))
    return code


if __name__ == "__main__":
    sys.exit(main())
