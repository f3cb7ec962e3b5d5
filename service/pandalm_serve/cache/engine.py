"""The verdict cache, as an engine around the engine: each generation made once. Identical ones in flight together
share one engine call, and finished ones are remembered by the cache backend, keyed by everything that decides
them (cache/base.py).

Every decoding preset is deterministic (greedy or beam search, no sampling), so a generation can be
given again. Only generations are stored, never errors. With `per_key`, the caller's key name is part of
both keys, in flight and stored: a key is never given, nor answered sooner thanks to, another key's work.
A backend that fails is skipped, with a warning (at most once a minute) and `pandalm_cache_errors_total`:
judging goes on without it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from pandalm_client.models import Preset, PromptFormat

from ..auth import current_caller
from ..engines.base import Engine, EnginePrompt, Generation, Sampling
from ..metrics import Metrics
from .base import CacheBackend, CacheUnavailable, dumps, generation_key, loads, model_identity

logger = logging.getLogger(__name__)

_WARN_EVERY_S = 60.0


@dataclass
class _Flight:
    task: asyncio.Task[Generation]
    waiters: int = 0


class CachedEngine:
    """An engine around an engine: each generation made once, and given again from the cache backend.

    The judge sees one engine; what is cached, shared or generated is decided here alone.
    """

    def __init__(
        self,
        engine: Engine,
        backend: CacheBackend | None,
        metrics: Metrics,
        *,
        revision: str | None,
        template_version: str,
        per_key: bool = False,
        namespace: str = "",
        judge: str = "",
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.metrics = metrics
        self._revision = revision
        self._template_version = template_version
        self.per_key = per_key
        self._namespace = namespace
        self._judge = judge
        self._model_identity = ""
        self._in_flight: dict[tuple[str, object, Sampling], _Flight] = {}
        self._warned = -_WARN_EVERY_S

    # The wrapped engine's members, passed on.
    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def model_name(self) -> str:
        return self.engine.model_name

    @property
    def context_length(self) -> int | None:
        return self.engine.context_length

    @property
    def prompt_format(self) -> PromptFormat:
        return self.engine.prompt_format

    @property
    def tokenizer(self) -> Any | None:
        return self.engine.tokenizer

    @property
    def tokenizer_source(self) -> str | None:
        return self.engine.tokenizer_source

    @property
    def presets(self) -> frozenset[Preset]:
        return self.engine.presets

    @property
    def data_parallel_size(self) -> int | None:
        return self.engine.data_parallel_size

    @property
    def dead(self) -> bool:
        return self.engine.dead

    async def start(self) -> None:
        await self.engine.start()
        # Known once the engine has resolved its model: what makes its verdicts comparable.
        # Only a remote engine knows more of its model than its name (what its server reports).
        served = str(getattr(self.engine, "served_identity", ""))
        self._model_identity = model_identity(
            self.engine.name, self.engine.model_name, self._revision, served, self._namespace, self._judge
        )

    async def stop(self) -> None:
        try:
            await self.engine.stop()
        finally:
            if self.backend is not None:
                await self.backend.close()

    async def check_health(self) -> None:
        await self.engine.check_health()

    async def generate(self, prompt: EnginePrompt, sampling: Sampling, request_id: str) -> Generation:
        """The generation for this prompt and sampling: remembered (`cached`), shared with an identical one in
        flight, or the wrapped engine's."""
        # In flight, the exact prompt and sampling are the key (cheap to hash, no collision); in the store,
        # a stable digest of them. Callers that skip the cache still share a generation in flight.
        decoding = dataclasses.replace(sampling, cache=True)
        scope = current_caller.get().name if self.per_key else ""
        identity = (scope, prompt.text if prompt.token_ids is None else tuple(prompt.token_ids), decoding)
        flight = self._in_flight.get(identity)
        if flight is None:
            key = ""
            if sampling.cache and self.backend is not None:
                key = generation_key(self._model_identity, self._template_version, prompt, decoding, scope=scope)
                cached = await self._lookup(key)
                if cached is not None:
                    return dataclasses.replace(cached, cached=True)
                flight = self._in_flight.get(identity)  # another caller may have started it meanwhile
            if flight is None:
                produced = self.engine.generate(prompt, decoding, request_id)
                flight = _Flight(asyncio.create_task(self._produce(key, produced)))
                self._in_flight[identity] = flight
                flight.task.add_done_callback(lambda _: self._in_flight.pop(identity, None))
            else:
                self.metrics.deduplicated.inc()
        else:
            self.metrics.deduplicated.inc()
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()  # nobody waits for it any more: vLLM aborts the request

    async def clear(self) -> int:
        if self.backend is None:
            return 0
        try:
            return await self.backend.clear()
        except CacheUnavailable as exc:
            self._failed(exc)
            raise

    async def _produce(self, key: str, produced: Awaitable[Generation]) -> Generation:
        generation = await produced
        if key and self.backend is not None:
            try:
                await self.backend.put(key, dumps(_encode(generation)))
            except CacheUnavailable as exc:
                self._failed(exc)
        return generation

    async def _lookup(self, key: str) -> Generation | None:
        if self.backend is None:
            return None
        try:
            raw = await self.backend.get(key)
        except CacheUnavailable as exc:
            self._failed(exc)
            return None
        self.metrics.cache_lookups.labels(result="hit" if raw is not None else "miss").inc()
        return _decode(loads(raw)) if raw is not None else None

    def _failed(self, exc: CacheUnavailable) -> None:
        self.metrics.cache_errors.inc()
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY_S:
            self._warned = now
            logger.warning("the verdict cache is unavailable, judging without it: %s", exc)


def _encode(generation: Generation) -> dict[str, object]:
    first = generation.first_logprobs
    return {
        "text": generation.text,
        "finish_reason": generation.finish_reason,
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "first_logprobs": dict(first) if first is not None else None,
    }


def _decode(value: dict[str, object]) -> Generation:
    first = value["first_logprobs"]
    return Generation(
        text=str(value["text"]),
        finish_reason="length" if value["finish_reason"] == "length" else "stop",
        prompt_tokens=value["prompt_tokens"],  # type: ignore[arg-type]
        completion_tokens=value["completion_tokens"],  # type: ignore[arg-type]
        first_logprobs={str(token): float(logprob) for token, logprob in first.items()}
        if isinstance(first, dict)
        else None,
    )
