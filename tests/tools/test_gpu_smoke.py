"""The GPU smoke test's own logic; tests/integration/test_gpu_smoke.py runs the whole of it here."""

from __future__ import annotations

from typing import Any

from pandalm_serve.tools.gpu_smoke import Check, check_host, compare_tokenizers, result_problems, table


def result(**overrides: Any) -> dict[str, Any]:
    base = {
        "status": "ok",
        "verdict": "response1",
        "consistent": None,
        "probabilities": {"response1": 0.7, "response2": 0.2, "tie": 0.1},
    }
    return {**base, **overrides}


def test_a_greedy_result_must_parse_with_probabilities_that_follow_the_verdict() -> None:
    assert result_problems(result(), greedy=True) == []
    assert result_problems(result(verdict="tie"), greedy=True)
    assert result_problems(result(probabilities=None), greedy=True) == ["no probabilities"]
    assert result_problems(result(status="unparsed", verdict=None), greedy=True) == ["unparsed output"]
    # An inconsistent swap is a tie whatever the averaged probabilities say.
    assert result_problems(result(verdict="tie", consistent=False), greedy=True) == []
    # Beam search may leave PandaLM's format on the demo judge; it must not fail.
    assert result_problems(result(status="unparsed", verdict=None), greedy=False) == []
    assert result_problems({"status": "error", "error": {"code": "engine_error"}}, greedy=False)


def test_tokenizations_are_compared_with_bos_id_2() -> None:
    def slow(text: str) -> list[int]:
        return [ord(c) for c in text]

    assert compare_tokenizers(["ab", "c"], lambda t: [2, *slow(t)], slow) == 0
    assert compare_tokenizers(["ab", "c"], lambda t: [1, *slow(t)], slow) == 2  # LLaMA's <s>, not PandaLM's
    assert compare_tokenizers(["ab", "c"], lambda t: [2, *slow(t)][:2], slow) == 1


def test_without_a_gpu_the_gpu_step_is_skipped_with_its_reason() -> None:
    gpu, compiler = check_host(None)
    assert (gpu.outcome, gpu.detail) == ("skip", "no NVIDIA GPU: NVML finds none on this machine")
    assert compiler.step == "C compiler for Triton"


def test_the_table_has_a_row_per_step() -> None:
    text = table([Check("one", "pass", "fine"), Check("a longer step", "skip", "no GPU")])
    assert text.splitlines()[2:] == ["one            PASS    fine", "a longer step  SKIP    no GPU"]
