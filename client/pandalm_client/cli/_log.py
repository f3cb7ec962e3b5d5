"""The judgement log: every pair the command line has judged, keyed by everything that decides its verdict.

A re-run after a failure, or a later run with the same baseline outputs, judges only what changed.
The key is a hash of the judge's identity (model, template, decoding defaults, from /info, and the judges
`--judge` named: `Judges.identity`), the pair and the options; only results the judge gave (parsed or
not) are kept, never errors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..models import CompareResult


class JudgementLog:
    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity
        self._results: dict[str, CompareResult] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self._results[entry["key"]] = CompareResult.model_validate(entry["result"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by an interrupted run: judged again
        path.parent.mkdir(parents=True, exist_ok=True)

    def key(self, item: dict[str, Any], options: dict[str, Any]) -> str:
        pair = {k: item.get(k, "") for k in ("instruction", "input", "response1", "response2")}
        content = json.dumps({"judge": self.identity, "pair": pair, "options": options}, sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()

    def get(self, key: str) -> CompareResult | None:
        return self._results.get(key)

    def add(self, key: str, result: CompareResult) -> None:
        if result.status == "error" or key in self._results:
            return
        self._results[key] = result
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"key": key, "result": result.model_dump(mode="json")}) + "\n")
