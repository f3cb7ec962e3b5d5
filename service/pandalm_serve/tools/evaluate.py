"""Measure a running service's agreement with PandaLM's human labels.

    python -m pandalm_serve.tools.evaluate --testset testset-v1.json --url http://127.0.0.1:8000

sends every pair of the test set to /batch and prints accuracy and macro precision, recall and F1
against the annotators' majority vote, as the PandaLM paper reports them. With
`--predictions pandalm-7b-testset-v1.json` it scores a file of published outputs instead, without a
service, so the two can be compared.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from pandalm_client.models import BatchResult

from .testset import VERDICT_LABELS, Agreement, TestItem, load_testset, pandalm_label


def evaluate_service(
    items: list[TestItem], url: str, *, batch_size: int = 100, options: dict[str, Any] | None = None
) -> tuple[Agreement, list[dict[str, Any]]]:
    """Judge every item through the service's /batch; returns the agreement and the raw results."""
    agreement = Agreement()
    results: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=httpx.Timeout(None)) as client:
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            body: dict[str, Any] = {"items": [item.request() for item in chunk]}
            if options:
                body["options"] = options
            response = client.post("/batch", json=body)
            if response.status_code != 200:
                raise SystemExit(f"/batch answered {response.status_code}: {response.text[:1000]}")
            batch = BatchResult.model_validate(response.json())
            for item, result in zip(chunk, batch.results, strict=True):
                predicted = VERDICT_LABELS[result.verdict] if result.status == "ok" and result.verdict else None
                agreement.add(item.gold, predicted)
                results.append({"idx": item.idx, "gold": item.gold, **result.model_dump(mode="json")})
    return agreement, results


def evaluate_predictions(items: list[TestItem], predictions_path: Path) -> Agreement:
    """Score a file of PandaLM outputs (`idx`, `pandalm_result`) against the test set."""
    by_idx = {int(p["idx"]): p for p in json.loads(predictions_path.read_text())}
    agreement = Agreement()
    for item in items:
        prediction = by_idx.get(item.idx)
        agreement.add(item.gold, pandalm_label(prediction["pandalm_result"]) if prediction else None)
    return agreement


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pandalm_serve.tools.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--testset", type=Path, required=True, help="PandaLM's testset-v1.json")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service to evaluate")
    parser.add_argument("--predictions", type=Path, help="score this file of published outputs instead")
    parser.add_argument("--batch-size", type=int, default=100, help="items per /batch request")
    parser.add_argument("--options", type=json.loads, help='batch options as JSON, e.g. \'{"preset": "beam"}\'')
    parser.add_argument("--results", type=Path, help="write every result here, one JSON line each")
    args = parser.parse_args(argv)

    items = load_testset(args.testset)
    if args.predictions:
        agreement = evaluate_predictions(items, args.predictions)
    else:
        agreement, results = evaluate_service(items, args.url, batch_size=args.batch_size, options=args.options)
        if args.results:
            args.results.write_text("".join(json.dumps(r) + "\n" for r in results))
    json.dump(agreement.report(), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
