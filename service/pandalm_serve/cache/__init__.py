"""The verdict cache: each order's generation remembered by everything that decides it, and given again."""

from __future__ import annotations

import logging

from ..settings import Settings
from .base import CacheBackend, CacheUnavailable, UnusableCache

logger = logging.getLogger(__name__)


def build_cache(settings: Settings) -> CacheBackend | None:
    """The configured backend; None when it is off. One that cannot be opened is an `UnusableCache`: the
    service judges without it, and says so."""
    try:
        if settings.cache_backend == "sqlite":
            from .sqlite import SQLiteCache

            return SQLiteCache(
                settings.cache_path or settings.cache_dir / "verdicts.sqlite", settings.cache_max_entries
            )
        if settings.cache_backend == "redis":
            from .redis import RedisCache

            assert settings.redis_url is not None
            return RedisCache(settings.redis_url, settings.cache_ttl_s)
        if settings.cache_backend == "memory":
            from .memory import MemoryCache

            return MemoryCache(settings.cache_max_entries)
    except CacheUnavailable as exc:
        logger.warning("the verdict cache is unavailable, judging without it: %s", exc)
        return UnusableCache(str(exc))
    return None
