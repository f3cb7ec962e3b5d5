"""The Ray Data batch job on this machine (`ray.init()` on one host, vLLM's CPU build, the demo judge).

It judges the 59 items of the recorded sample, both orders, into the results `pandalm eval` reads; and
Ray reads JSONL and Parquet inputs into the same vLLM rows.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pandalm_client.models import CompareResult
from pandalm_client.testset import VERDICT_LABELS, Agreement, load_testset
from pandalm_client.testset import TestItem as Item
from pandalm_serve.demo import ensure_demo_model
from pandalm_serve.engines.tokenizer import load_tokenizer
from pandalm_serve.jobs.pairs import STATE_COLUMN, JobOptions, OrderState, prepare
from pandalm_serve.judge.tokens import PromptEncoder, fit_prompt
from tests.support import assert_probabilities_follow

# Ray Data warns about its own deprecated settings when it copies its context.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]

# Ray reports nothing home from the tests, and starts no dashboard.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}


TESTSET = Path(__file__).resolve().parents[2] / "data" / "pandalm" / "testset-v1.json"


def raw_items(sample_ids: list[int]) -> list[dict[str, Any]]:
    """The test set's own items (annotators included), for `pandalm eval`."""
    wanted = set(sample_ids)
    return [item for item in json.loads(TESTSET.read_text()) if item["idx"] in wanted]


@pytest.fixture(scope="module")
def demo(demo_cache_dir: Path) -> Path:
    return ensure_demo_model(demo_cache_dir)


@pytest.fixture(scope="module")
def sample(pandalm_data_dir: Path) -> list[Item]:
    """The 59 test items with recorded PandaLM-7B outputs (every 17th)."""
    outputs = {o["idx"] for o in json.loads((pandalm_data_dir / "pandalm-7b-outputs-sample.json").read_text())}
    items = [i for i in load_testset(pandalm_data_dir / "testset-v1.json") if i.idx in outputs]
    assert len(items) == 59
    return items


@pytest.fixture(scope="module")
def pairs_file(sample: list[Item], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray-job") / "pairs.jsonl"
    path.write_text("".join(json.dumps(item.request()) + "\n" for item in sample))
    return path


def test_the_job_judges_the_sample_into_what_pandalm_eval_reads(
    demo: Path, sample: list[Item], pairs_file: Path, server_logs: Path
) -> None:
    output = pairs_file.parent / "results.jsonl"
    command = [
        sys.executable, "-m", "pandalm_serve.jobs.ray_batch", "--input", str(pairs_file), "--output", str(output),
        "--model", str(demo), "--swap", "--truncate", "--mode", "verdict", "--batch-size", "16",
    ]  # fmt: skip
    log = server_logs / "ray-job.log"
    with log.open("w") as out:
        run = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=out, text=True, timeout=900, env={**os.environ, **RAY_ENV}
        )
    assert run.returncode == 0, log.read_text()[-6000:]
    # Ray forwards its workers' logs to the driver's output too: the summary is the line that is one.
    (summary,) = [json.loads(line)["summary"] for line in run.stdout.splitlines() if line.startswith('{"summary"')]
    assert summary["response1"] + summary["response2"] + summary["tie"] + summary["unparsed"] == 59
    assert summary["error"] == 0

    results = [CompareResult.model_validate_json(line) for line in output.read_text().splitlines()]
    assert [(r.index, r.id) for r in results] == [(n, str(item.idx)) for n, item in enumerate(sample)]
    encoder = PromptEncoder(load_tokenizer(str(demo)), "</s>")
    for item, result in zip(sample, results, strict=True):
        assert (result.status, result.model, result.mode, result.preset) == ("ok", str(demo), "verdict", "greedy")
        assert [o.order for o in result.orders or []] == ["original", "swapped"]
        assert_probabilities_follow(result.model_dump(mode="json"))
        # Both prompts were PandaLM's token ids behind `</s>`, as the service builds them.
        fit: dict[str, Any] = {"context_length": 2048, "max_new_tokens": 512, "truncate": True}
        lengths = [
            len(fit_prompt(encoder, item.instruction, item.input, *responses, **fit).token_ids)
            for responses in ((item.response1, item.response2), (item.response2, item.response1))
        ]
        assert result.usage.prompt_tokens == sum(lengths)

    # Through `pandalm eval --from-results`, as a user scores a job's output, without a service.
    testset = pairs_file.parent / "testset-sample.json"
    testset.write_text(json.dumps(raw_items(sample_ids=[item.idx for item in sample])))
    scored = subprocess.run(
        [sys.executable, "-m", "pandalm_client.cli", "eval", str(testset), "--from-results", str(output), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    report = json.loads(scored.stdout)
    report.pop("intervals")  # bootstrap intervals, checked in tests/client/test_evaluation.py
    expected = Agreement()
    for item, result in zip(sample, results, strict=True):
        expected.add(item.gold, VERDICT_LABELS[result.verdict] if result.verdict else None)
    assert report == expected.report()
    assert report["n"] == 59 and report["without_verdict"] == 0


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    import ray

    with pytest.MonkeyPatch.context() as patch:
        for name, value in RAY_ENV.items():
            patch.setenv(name, value)
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        try:
            yield ray
        finally:
            ray.shutdown()


def test_jsonl_and_parquet_inputs_give_the_same_vllm_rows(
    local_ray: Any, demo: Path, sample: list[Item], pairs_file: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pairs_file.with_suffix(".parquet")
    pq.write_table(pa.Table.from_pylist([item.request() for item in sample[:5]]), parquet)
    options = JobOptions(model=str(demo), swap=True)

    def rows(dataset: Any) -> list[dict[str, Any]]:
        return list(dataset.flat_map(functools.partial(prepare, options)).take_all())

    from_jsonl = rows(local_ray.data.read_json(str(pairs_file), lines=True).limit(5))
    from_parquet = rows(local_ray.data.read_parquet(str(parquet)))
    assert len(from_jsonl) == 10
    for a, b in zip(from_jsonl, from_parquet, strict=True):
        assert list(a["tokenized_prompt"]) == list(b["tokenized_prompt"])
        assert OrderState.model_validate_json(a[STATE_COLUMN]) == OrderState.model_validate_json(b[STATE_COLUMN])
