"""Build the bundled canary: client/pandalm_client/data/canary.json, from PandaLM's vendored data.

The first 30 items, by `idx`, of the 59 that have both human labels (data/pandalm/testset-v1.json) and a
recorded PandaLM-7B output (data/pandalm/pandalm-7b-outputs-sample.json): each test item as published, with
PandaLM-7B's `pandalm_result`, `pandalm_reason` and `pandalm_reference` added. `pandalm eval --canary` and the
service's `--canary builtin` read it; a faithful PandaLM-7B deployment reproduces every recorded verdict.

    python scripts/canary_set.py            # write it
    python scripts/canary_set.py --check    # is the committed file what the data gives? (the tests run it)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from generated import ROOT, main

DATA = ROOT / "data" / "pandalm"
OUTPUT = ROOT / "client" / "pandalm_client" / "data" / "canary.json"
SIZE = 30
RECORDED = ("pandalm_result", "pandalm_reason", "pandalm_reference")


def canary() -> list[dict[str, Any]]:
    """The canary's items, in `idx` order."""
    testset = {item["idx"]: item for item in json.loads((DATA / "testset-v1.json").read_text())}
    outputs = sorted(json.loads((DATA / "pandalm-7b-outputs-sample.json").read_text()), key=lambda o: o["idx"])
    chosen = [o for o in outputs if o["idx"] in testset][:SIZE]
    if len(chosen) < SIZE:
        raise SystemExit(f"only {len(chosen)} items have both human labels and a recorded output")
    return [{**testset[o["idx"]], **{field: o[field] for field in RECORDED}} for o in chosen]


def render() -> dict[Path, str]:
    return {OUTPUT: json.dumps(canary(), indent=2, ensure_ascii=False) + "\n"}


if __name__ == "__main__":
    sys.exit(main(__doc__, render))
