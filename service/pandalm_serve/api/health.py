"""Liveness, readiness, service information and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from pandalm_client.models import DecodingInfo, InfoResponse, LimitsInfo

from .. import __version__
from ..judge.options import server_defaults
from ..judge.prompt import TEMPLATE_VERSION
from ..state import ServicesDep
from .errors import ERROR_RESPONSES

router = APIRouter(tags=["operations"])


@router.get("/healthz", responses={503: ERROR_RESPONSES[503]}, summary="The process is alive")
async def healthz(services: ServicesDep) -> dict[str, str]:
    if services.start_error is not None:
        services.require_ready()  # raises: a process whose engine failed to start is not healthy
    return {"status": "ok"}


@router.get("/readyz", responses={503: ERROR_RESPONSES[503]}, summary="The engine is loaded and answering")
async def readyz(services: ServicesDep) -> dict[str, str]:
    services.require_ready()
    await services.engine.check_health()
    return {"status": "ready"}


@router.get("/info", response_model=InfoResponse, summary="Model, engine, decoding, template and limits")
async def info(services: ServicesDep) -> InfoResponse:
    s = services.settings
    engine = services.engine
    token_ids = engine.tokenizer is not None
    return InfoResponse(
        service_version=__version__,
        engine=engine.name,
        model=engine.model_name,
        demo=services.judge.profile.demo,
        template_version=TEMPLATE_VERSION,
        prompt_format=("token_ids" if token_ids else "text") if services.ready else None,
        tokenizer=engine.tokenizer_source if token_ids else None,
        bos_token=s.bos_token if token_ids else None,
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
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
