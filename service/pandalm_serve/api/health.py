"""Liveness, readiness, service information and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from pandalm_client.models import DecodingInfo, InfoResponse, JudgeInfo, LimitsInfo

from .. import __version__
from ..errors import NotReadyError
from ..judge.options import server_defaults
from ..state import ServicesDep
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["operations"])

# A probe must answer quickly, whatever the engine does.
_HEALTH_TIMEOUT_S = 5.0


@router.get("/healthz", responses={503: ERROR_RESPONSES[503]}, summary="The process and its engine are alive")
async def healthz(services: ServicesDep) -> dict[str, str]:
    services.require_alive()  # an engine that failed to start or died makes the process unhealthy: restart it
    return {"status": "ok"}


@router.get("/readyz", responses={503: ERROR_RESPONSES[503]}, summary="The engine is loaded and answering")
async def readyz(services: ServicesDep) -> dict[str, str]:
    services.require_ready()
    try:
        async with asyncio.timeout(_HEALTH_TIMEOUT_S):
            for judge in services.panel:
                await judge.engine.check_health()
    except TimeoutError as exc:
        raise NotReadyError(f"the engine did not answer within {_HEALTH_TIMEOUT_S:g} s") from exc
    return {"status": "ready"}


@router.get("/info", response_model=InfoResponse, summary="Model, engine, decoding, template and limits")
async def info(services: ServicesDep) -> InfoResponse:
    # The top level describes the default judge (the first); `judges` lists them all.
    s = services.judge.settings
    engine = services.engine
    token_ids = engine.prompt_format == "token_ids"
    judges = [
        JudgeInfo(
            name=judge.name,
            family=judge.family.name,
            model=judge.engine.model_name,
            demo=judge.profile.demo,
            modes=sorted(judge.family.modes, key=("pairwise", "absolute").index),
            engine=judge.engine.name,
            template_version=judge.family.template_version,
            ready=judge.ready,
        )
        for judge in services.panel
    ]
    return InfoResponse(
        service_version=__version__,
        engine=engine.name,
        model=engine.model_name,
        demo=services.judge.profile.demo,
        template_version=services.judge.family.template_version,
        prompt_format=engine.prompt_format if services.ready else None,
        tokenizer=engine.tokenizer_source if token_ids else None,
        bos_token=s.bos_token if token_ids else None,
        data_parallel_size=engine.data_parallel_size,
        decoding=DecodingInfo(
            options=server_defaults(s),
            repetition_penalty=s.repetition_penalty,
            beam_width=s.beam_width,
            batch_invariant=s.batch_invariant,
        ),
        limits=LimitsInfo(
            context_length=engine.context_length,
            max_new_tokens=s.max_new_tokens,
            max_batch_items=s.max_batch_items,
        ),
        ready=services.ready,
        judges=judges,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
