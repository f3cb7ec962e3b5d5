"""The service with vLLM's data parallelism in process (`--data-parallel-size 2`) on the demo judge.

Two engines on vLLM's CPU build, one core each: slow to start (about a minute and a half here), so the
service runs for this module only, and never beside more than the session's one other engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pandalm_client.testset import load_testset
from pandalm_serve.demo import ensure_demo_model
from pandalm_serve.engines.tokenizer import load_tokenizer
from pandalm_serve.judge.prompt import build_prompt
from pandalm_serve.judge.tokens import PromptEncoder
from tests.integration.conftest import serve
from tests.support import CAPITAL_PAIR, assert_probabilities_follow

pytestmark = pytest.mark.integration

TIMEOUT = httpx.Timeout(300.0)


@pytest.fixture(scope="module")
def demo(demo_cache_dir: Path) -> Path:
    return ensure_demo_model(demo_cache_dir)


@pytest.fixture(scope="module")
def dp_service(server_logs: Path, demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Its own cache folder: verdicts the session's other services remember must not stand in for these.
    yield from serve(
        server_logs,
        "dp-service",
        "--engine", "vllm", "--model", str(demo), "--cache-dir", str(tmp_path_factory.mktemp("dp-cache")),
        "--data-parallel-size", "2", "--max-batch-items", "64",
    )  # fmt: skip


def engine_requests(url: str) -> dict[str, float]:
    """vLLM's finished requests per data-parallel engine, from the service's /metrics."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("vllm:request_success_total{"):
            engine = line.split('engine="', 1)[1].split('"', 1)[0]
            counts[engine] = counts.get(engine, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_info_reports_two_engines_and_pandalm_prompts(dp_service: str, demo: Path) -> None:
    info = httpx.get(f"{dp_service}/info").json()
    assert (info["engine"], info["data_parallel_size"], info["demo"]) == ("vllm", 2, True)
    assert (info["prompt_format"], info["bos_token"], info["tokenizer"]) == ("token_ids", "</s>", str(demo))


def test_a_batch_is_judged_by_both_engines_as_in_process(dp_service: str, demo: Path, pandalm_data_dir: Path) -> None:
    items = [i.request() for i in load_testset(pandalm_data_dir / "testset-v1.json")[:300:10]]
    before = engine_requests(dp_service)
    response = httpx.post(f"{dp_service}/batch", json={"items": items, "options": {"swap": True}}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == [item["id"] for item in items]
    assert all(r["status"] == "ok" for r in results), [r for r in results if r["status"] != "ok"][:1]
    for result in results:
        assert_probabilities_follow(result)
        assert [o["order"] for o in result["orders"]] == ["original", "swapped"]
    after = engine_requests(dp_service)
    served = {engine: after[engine] - before.get(engine, 0.0) for engine in after}
    assert sorted(served) == ["0", "1"] and all(count > 0 for count in served.values()), served

    # The prompt the engines got is PandaLM's token ids behind `</s>`: counted as the service built it.
    encoder = PromptEncoder(load_tokenizer(str(demo)), "</s>")
    item: dict[str, Any] = items[0]
    prompt = build_prompt(item["instruction"], item["input"], item["response1"], item["response2"])
    swapped = build_prompt(item["instruction"], item["input"], item["response2"], item["response1"])
    assert results[0]["usage"]["prompt_tokens"] == len(encoder.encode(prompt)) + len(encoder.encode(swapped))


def test_beam_search_and_the_context_check_stay(dp_service: str) -> None:
    options = {"preset": "beam", "max_new_tokens": 8}
    beam = httpx.post(f"{dp_service}/compare", json={**CAPITAL_PAIR, "options": options}, timeout=TIMEOUT)
    assert beam.status_code == 200, beam.text
    # The demo judge is only constrained to PandaLM's format under greedy decoding.
    assert beam.json()["status"] in ("ok", "unparsed") and beam.json()["preset"] == "beam"
    assert 0 < beam.json()["usage"]["completion_tokens"] <= 8
    too_long = httpx.post(f"{dp_service}/compare", json={**CAPITAL_PAIR, "response1": "word " * 3000}, timeout=TIMEOUT)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["details"]["context_length"] == 2048
