"""Administration: clearing the verdict cache."""

from __future__ import annotations

from fastapi import APIRouter

from ..cache.base import CacheUnavailable
from ..errors import ServiceError
from ..state import ServicesDep
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["administration"])


@router.delete("/cache", responses={503: ERROR_RESPONSES[503]}, summary="Forget every remembered verdict")
async def clear_cache(services: ServicesDep) -> dict[str, int]:
    try:
        cleared = await services.engine.clear()
    except CacheUnavailable as exc:
        raise ServiceError("the verdict cache is unavailable; nothing was cleared", code="cache_unavailable") from exc
    return {"cleared": cleared}
