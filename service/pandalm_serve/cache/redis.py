"""The shared option for several replicas: Redis, with keys under one prefix.

Redis bounds itself: give it `maxmemory` and `maxmemory-policy allkeys-lru` (the README says how); an
optional time to live expires entries too. Every failure (Redis down, slow) is `CacheUnavailable`.
"""

from __future__ import annotations

from typing import Any

from .base import CacheUnavailable

_PREFIX = "pandalm:generation:"
# A cache that is slower than judging is no cache: give up on it quickly.
_TIMEOUT_S = 0.5


class RedisCache:
    name = "redis"

    def __init__(self, url: str, ttl_s: int | None) -> None:
        import redis.asyncio

        self.ttl_s = ttl_s
        self._client: Any = redis.asyncio.Redis.from_url(
            url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S, retry_on_timeout=False
        )

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(_PREFIX + key)
        except Exception as exc:  # redis-py raises ConnectionError, TimeoutError, ResponseError...
            raise CacheUnavailable(f"Redis failed: {type(exc).__name__}") from exc
        return bytes(value) if value is not None else None

    async def put(self, key: str, value: bytes) -> None:
        try:
            await self._client.set(_PREFIX + key, value, ex=self.ttl_s)
        except Exception as exc:
            raise CacheUnavailable(f"Redis failed: {type(exc).__name__}") from exc

    async def clear(self) -> int:
        try:
            count = 0
            async for key in self._client.scan_iter(match=_PREFIX + "*", count=1000):
                count += int(await self._client.delete(key))
        except Exception as exc:
            raise CacheUnavailable(f"Redis failed: {type(exc).__name__}") from exc
        return count

    async def close(self) -> None:
        await self._client.aclose()
