"""Administration: clearing the verdict cache."""

from __future__ import annotations

from fastapi import APIRouter

from ..auth import current_caller
from ..cache.base import CacheUnavailable
from ..errors import ServiceError
from ..state import ServicesDep
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["administration"])


@router.delete(
    "/cache",
    responses={403: ERROR_RESPONSES[403], 503: ERROR_RESPONSES[503]},
    summary="Forget every remembered verdict (an admin key's request)",
)
async def clear_cache(services: ServicesDep) -> dict[str, int]:
    if not current_caller.get().admin:
        raise ServiceError("clearing the cache needs an admin key (marked `admin` in the keys file)", code="forbidden")
    try:
        cleared = await services.engine.clear()
    except CacheUnavailable as exc:
        raise ServiceError("the verdict cache is unavailable; nothing was cleared", code="cache_unavailable") from exc
    return {"cleared": cleared}
