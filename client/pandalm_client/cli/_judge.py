"""The judges a command uses: `--judge` parsed, checked against /info's list, warned about when a demo."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Any

from .._client import PandaLMClient
from ..models import MAX_JUDGE_NAME_CHARS, MAX_JURY, InfoResponse, JudgeInfo, JudgeMode
from ._errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def judge_name(text: str) -> str:
    """An argparse type: a judge's name as the wire takes it (a typo fails here, exit 2, before any request)."""
    if not _NAME.fullmatch(text) or len(text) > MAX_JUDGE_NAME_CHARS:
        raise argparse.ArgumentTypeError(
            f"expected a judge's name (letters, digits, '_', '.', '-'; at most {MAX_JUDGE_NAME_CHARS}), got {text!r}"
        )
    return text


def add_judge_flag(parser: argparse.ArgumentParser, *, several: str | None) -> None:
    """`--judge NAME`; `several` says what giving it more than once means (None: it may be given once)."""
    if several is None:
        parser.add_argument(
            "--judge",
            type=judge_name,
            metavar="NAME",
            help="the judge, a name from the service's /info (default: the service's)",
        )
        return
    parser.add_argument(
        "--judge",
        type=judge_name,
        action="append",
        metavar="NAME",
        help=f"the judge, a name from the service's /info (default: the service's first); repeat it for {several}",
    )


def judge_names(args: argparse.Namespace) -> list[str]:
    """The names `--judge` gave, in order: none, one, or up to a jury's worth of distinct names."""
    given = getattr(args, "judge", None)
    names: list[str] = [] if given is None else [given] if isinstance(given, str) else list(given)
    if len(set(names)) != len(names):
        raise UsageError(f"--judge names a judge twice: {', '.join(names)}")
    if len(names) > MAX_JURY:
        raise UsageError(f"--judge is given {len(names)} times: at most {MAX_JURY} judges")
    return names


@dataclass(frozen=True, slots=True)
class Judges:
    """The service's /info, and the judges a command uses: those `--judge` named, else the service's default."""

    info: InfoResponse
    names: list[str]  # as `--judge` gave them; empty: the service's default
    chosen: list[JudgeInfo]  # their /info entries; empty when the service lists no judges

    @property
    def choice(self) -> str | list[str] | None:
        """`--judge` as the wire takes it: None (the default), one name, or a list of them (a jury)."""
        if not self.names:
            return None
        return self.names[0] if len(self.names) == 1 else list(self.names)

    @property
    def demo(self) -> bool:
        return any(j.demo for j in self.chosen) if self.chosen else self.info.demo

    def identity(self) -> dict[str, Any]:
        """What decides a verdict besides the pair and the options: the judgement log's key includes it."""
        identity: dict[str, Any] = {
            "model": self.info.model,
            "template_version": self.info.template_version,
            "prompt_format": self.info.prompt_format,
            "decoding": self.info.decoding.model_dump(mode="json"),
        }
        if self.names:  # absent for the default judge, so that logs written before judges existed stay valid
            identity["judges"] = [
                j.model_dump(include={"name", "family", "model", "template_version"}) for j in self.chosen
            ]
            identity["names"] = self.names
        return identity

    def record(self) -> dict[str, Any]:
        """The judge(s) as reports write them: name (a list for a jury), model, template, demo, and /info's entries."""
        info = self.info
        record: dict[str, Any] = {
            "name": self.choice if self.names else (self.chosen[0].name if self.chosen else None),
            "model": info.model,
            "demo": self.demo,
            "template_version": info.template_version,
            "prompt_format": info.prompt_format,
            "decoding": info.decoding.model_dump(mode="json"),
            "service_version": info.service_version,
        }
        if self.chosen:
            record["model"] = ", ".join(dict.fromkeys(j.model for j in self.chosen))
            record["template_version"] = ", ".join(dict.fromkeys(j.template_version for j in self.chosen))
            record["judges"] = [j.model_dump(mode="json") for j in self.chosen]
        return record


def served_judges(client: PandaLMClient, names: list[str], mode: JudgeMode = "pairwise") -> Judges:
    """/info, and the judges named (or the default) checked against it: a judge it does not serve, or one that
    cannot judge in `mode`, is a usage error (exit 2) before anything is judged. Every command that judges
    calls it first, so that a demo judge never goes unnoticed."""
    info = client.info()
    served = {j.name: j for j in info.judges}
    listing = ", ".join(f"{j.name} ({j.family}: {'/'.join(j.modes)})" for j in info.judges)
    for name in names:
        if served and name not in served:
            raise UsageError(f"--judge {name}: {client.base_url} serves no judge of that name; it serves {listing}")
        if served and mode not in served[name].modes:
            raise UsageError(f"--judge {name}: that judge cannot do {mode} judging; the service's judges: {listing}")
    if names:
        chosen = [served[name] for name in names if name in served]
    else:
        chosen = [j for j in info.judges if mode in j.modes][:1]
        if info.judges and not chosen:
            raise UsageError(f"{client.base_url} serves no judge that does {mode} judging; its judges: {listing}")
    judges = Judges(info, names, chosen)
    if judges.demo:
        demos = [j.name for j in chosen if j.demo]
        which = f"the random-weight demo judge ({info.model})" if not demos else f"demo judge(s) {', '.join(demos)}"
        print(
            f"pandalm: warning: {client.base_url} serves {which}: its verdicts are noise, not judgements",
            file=sys.stderr,
        )
    return judges
