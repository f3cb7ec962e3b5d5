"""`pandalm rank a.jsonl b.jsonl c.jsonl`: rank models by pairwise judgements.

Each file holds one model's outputs (`{"id", "instruction", "input"?, "output"}` a line; the model's
name is the file's name without `.jsonl`). Every pair of models is judged on the ids they share, in
both orders; a Bradley-Terry model fitted to the outcomes ranks them. A bootstrap that resamples prompts
(seeded: a re-run gives the same table) gives intervals for strengths, ranks and the differences between
models; a model that never lost (or never won) is reported as such. Beside it, the matrix of win rates.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

from .._client import PandaLMClient
from ..ranking import RankingTable, rank_models, win_rate_matrix
from ._args import bounded_float, positive_int
from ._common import add_option_flags, options_of
from ._errors import EXIT_INFRASTRUCTURE, EXIT_OK, EXIT_USAGE
from ._io import InputError, ModelOutput, ProgressBar, pair_item, read_outputs, shared_prompts, write_json
from ._judge import add_judge_flag, judge_names, served_judges
from ._log import JudgementLog


def register(commands: Any) -> None:
    parser = commands.add_parser("rank", help="rank models by pairwise judgements", description=__doc__)
    parser.add_argument("outputs", type=Path, nargs="+", help="one JSONL file of outputs per model (two or more)")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples for the intervals")
    parser.add_argument(
        "--confidence", type=bounded_float(0, 1, low_open=True, high_open=True), default=0.95, help="of the intervals"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument("--heatmap", type=Path, help="save the win-rate matrix as a PNG (needs matplotlib)")
    parser.add_argument("--json", type=Path, help="also write the ranking and the matrix as JSON")
    parser.add_argument(
        "--log", type=Path, default=Path(".pandalm") / "judgements.jsonl", help="judged pairs, reused by re-runs"
    )
    add_judge_flag(parser, several="a jury: their majority verdict decides each game")
    add_option_flags(parser, skip=("swap",))
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, client: PandaLMClient) -> int:
    if len(args.outputs) < 2:
        raise InputError("rank needs the outputs of two models or more")
    models = {path.name.removesuffix(".jsonl"): (path, read_outputs(path)) for path in args.outputs}
    if len(models) != len(args.outputs):
        raise InputError("two files have the same name: name each model's file after the model")
    names = judge_names(args)
    options = {**options_of(args, skip=("swap",)), "swap": True}
    judges = served_judges(client, names)
    log = JudgementLog(args.log, judges.identity())
    outcomes: list[tuple[str, str, str, float]] = []
    failed = 0
    for a, b in itertools.combinations(models, 2):
        scores, errors = judge_pair(client, log, (a, models[a]), (b, models[b]), judges.choice, options)
        outcomes += [(prompt, a, b, score) for prompt, score in scores]
        failed += errors
    if not outcomes:
        print("pandalm: the models share no prompt to compare them on")
        return EXIT_USAGE
    names = list(models)
    ranking = rank_models(outcomes, names, bootstrap=args.bootstrap, confidence=args.confidence, seed=args.seed)
    matrix = win_rate_matrix([(a, b, score) for _, a, b, score in outcomes], names)
    print(table(ranking, args.confidence))
    print()
    print(matrix_table(matrix, names))
    if failed:
        print(f"\n{failed} judgement(s) without a verdict were left out")
    if args.json:
        write_json(
            args.json,
            {
                "ranking": [r.__dict__ for r in ranking.rankings],
                "differences": [d.__dict__ for d in ranking.differences],
                "skipped_resamples": ranking.skipped_resamples,
                "win_rates": matrix,
                "failed": failed,
                "judge": judges.record(),
            },
        )
    if args.heatmap:
        heatmap(matrix, names, args.heatmap)
    return EXIT_INFRASTRUCTURE if failed > len(outcomes) * 0.02 else EXIT_OK


def judge_pair(
    client: PandaLMClient,
    log: JudgementLog,
    model_a: tuple[str, tuple[Path, dict[str, ModelOutput]]],
    model_b: tuple[str, tuple[Path, dict[str, ModelOutput]]],
    choice: str | list[str] | None,
    options: dict[str, Any],
) -> tuple[list[tuple[str, float]], int]:
    """Model a's score against b on each shared prompt (its id, and 1, ½ or 0), and how many had no verdict."""
    (a, first), (b, second) = model_a, model_b
    shared, _, _ = shared_prompts(first, second)
    outputs_a, outputs_b = first[1], second[1]
    items = [pair_item(i, outputs_a[i], outputs_b[i]) for i in shared]
    keys = [log.key(item, options) for item in items]
    cached = {k: r for k in keys if (r := log.get(k)) is not None}
    missing = [(item, key) for item, key in zip(items, keys, strict=True) if key not in cached]
    progress = ProgressBar(f"{a} against {b}: judging {len(missing)} of {len(items)}")
    judged = client.iter_batch([item for item, _ in missing], progress=progress, judge=choice, **options)
    for (_, key), result in zip(missing, judged, strict=True):
        log.add(key, result)
        cached[key] = result
    progress.close()
    scores: list[tuple[str, float]] = []
    for prompt, key in zip(shared, keys, strict=True):
        result = cached[key]
        if result.status == "ok" and result.verdict is not None:
            scores.append((prompt, {"response1": 1.0, "response2": 0.0, "tie": 0.5}[result.verdict]))
    return scores, len(keys) - len(scores)


def table(ranking: RankingTable, confidence: float) -> str:
    width = max(len("model"), *(len(r.model) for r in ranking.rankings))
    lines = [
        f"rank  {confidence:.0%} interval  {'model':<{width}}  strength  {confidence:.0%} interval",
        "-" * (width + 52),
    ]
    for r in ranking.rankings:
        ranks = f"[{r.rank_lower}, {r.rank_upper}]"
        if r.strength is None or r.lower is None or r.upper is None:
            strength = f"{r.record or 'undefined':>8}"
        else:
            strength = f"{r.strength:8.3f}  [{r.lower:.3f}, {r.upper:.3f}]"
        lines.append(f"{r.rank:>4}  {ranks:>12}  {r.model:<{width}}  {strength}")
    lines += ["", f"log-strength differences, {confidence:.0%} intervals (exp: odds the first beats the second):"]
    for d in ranking.differences:
        if d.difference is None or d.lower is None or d.upper is None:
            lines.append(f"  {d.model} - {d.other}: unbounded (a model never lost or never won)")
        else:
            lines.append(f"  {d.model} - {d.other}: {d.difference:+.3f} [{d.lower:+.3f}, {d.upper:+.3f}]")
    if ranking.skipped_resamples:
        lines.append(f"({ranking.skipped_resamples} resamples left a model without games and were skipped)")
    return "\n".join(lines)


def matrix_table(matrix: dict[str, dict[str, float | None]], names: list[str]) -> str:
    width = max(len(n) for n in names)
    lines = [
        "win rate of the row's model against the column's:",
        " " * (width + 2) + "".join(f"{n:>{width + 2}}" for n in names),
    ]
    for row in names:
        cells = "".join(f"{'-' if (v := matrix[row][col]) is None else f'{v:.2f}':>{width + 2}}" for col in names)
        lines.append(f"{row:<{width + 2}}{cells}")
    return "\n".join(lines)


def heatmap(matrix: dict[str, dict[str, float | None]], names: list[str], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InputError("--heatmap needs matplotlib: pip install 'pandalm-client[plot]'") from exc
    values = [[float("nan") if (v := matrix[r][c]) is None else v for c in names] for r in names]
    figure, axes = plt.subplots(figsize=(1.2 * len(names) + 2, 1.0 * len(names) + 1.5))
    image = axes.imshow(values, cmap="RdYlGn", vmin=0, vmax=1)
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if value == value:  # not NaN
                axes.text(j, i, f"{value:.2f}", ha="center", va="center")
    axes.set_title("win rate of the row's model against the column's")
    figure.colorbar(image)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    print(f"heatmap: {path}")
