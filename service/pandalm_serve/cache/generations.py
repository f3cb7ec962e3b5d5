"""Generations, each made once: identical ones in flight together share one engine call, and finished ones
are remembered by the cache backend, keyed by everything that decides them (cache/base.py).

Every decoding preset is deterministic (greedy or beam search, no sampling), so a generation can be
given again. Only generations are stored, never errors. With `per_key`, the caller's key name is part of
both keys, in flight and stored: a key is never given, nor answered sooner thanks to, another key's work.
A backend that fails is skipped, with a warning (at most once a minute) and `pandalm_cache_errors_total`:
judging goes on without it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..auth import current_caller
from ..engines.base import EnginePrompt, Generation, Sampling
from ..metrics import Metrics
from .base import CacheBackend, CacheUnavailable, dumps, generation_key, loads

logger = logging.getLogger(__name__)

_WARN_EVERY_S = 60.0


@dataclass
class _Flight:
    task: asyncio.Task[Generation]
    waiters: int = 0


class Generations:
    def __init__(self, backend: CacheBackend | None, metrics: Metrics, *, per_key: bool = False) -> None:
        self.backend = backend
        self.metrics = metrics
        self.per_key = per_key
        self.model_identity = ""
        self.template_version = ""
        self._in_flight: dict[tuple[str, object, Sampling], _Flight] = {}
        self._warned = -_WARN_EVERY_S

    async def generate(
        self,
        prompt: EnginePrompt,
        sampling: Sampling,
        produce: Callable[[], Awaitable[Generation]],
        *,
        use_cache: bool,
    ) -> tuple[Generation, bool]:
        """The generation for this prompt and sampling, and whether it came from the cache."""
        # In flight, the exact prompt and sampling are the key (cheap to hash, no collision); in the store,
        # a stable digest of them.
        scope = current_caller.get().name if self.per_key else ""
        identity = (scope, prompt.text if prompt.token_ids is None else tuple(prompt.token_ids), sampling)
        flight = self._in_flight.get(identity)
        if flight is None:
            key = ""
            if use_cache and self.backend is not None:
                key = generation_key(self.model_identity, self.template_version, prompt, sampling, scope=scope)
                cached = await self._lookup(key)
                if cached is not None:
                    return cached, True
                flight = self._in_flight.get(identity)  # another caller may have started it meanwhile
            if flight is None:
                flight = _Flight(asyncio.create_task(self._produce(key, produce, store=bool(key))))
                self._in_flight[identity] = flight
                flight.task.add_done_callback(lambda _: self._in_flight.pop(identity, None))
            else:
                self.metrics.deduplicated.inc()
        else:
            self.metrics.deduplicated.inc()
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task), False
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

    async def close(self) -> None:
        if self.backend is not None:
            await self.backend.close()

    async def _produce(self, key: str, produce: Callable[[], Awaitable[Generation]], *, store: bool) -> Generation:
        generation = await produce()
        if store and self.backend is not None:
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
        # Pairs, not an object: JSON would turn token ids into strings.
        "first_logprobs": [[token, logprob] for token, logprob in first.items()] if first is not None else None,
    }


def _decode(value: dict[str, object]) -> Generation:
    first = value["first_logprobs"]
    return Generation(
        text=str(value["text"]),
        finish_reason="length" if value["finish_reason"] == "length" else "stop",
        prompt_tokens=value["prompt_tokens"],  # type: ignore[arg-type]
        completion_tokens=value["completion_tokens"],  # type: ignore[arg-type]
        first_logprobs={token: float(logprob) for token, logprob in first} if isinstance(first, list) else None,
    )
