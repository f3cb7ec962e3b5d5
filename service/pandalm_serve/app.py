"""`create_app(settings)`: the whole service, built on demand; nothing heavy happens at import."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from pandalm_client.models import MAX_JURY

from . import __version__
from .api import admin, health, judging, ui
from .api.body import BodyLimit
from .api.context import RequestContext
from .api.docs import install_docs
from .api.errors import install_error_handlers
from .auth import ApiKeys
from .demo import ensure_demo_model
from .engines.base import Engine
from .hosts import allowed_hosts
from .judges import JudgeSpec, judge_specs
from .settings import Settings
from .state import Services


def build_engine(settings: Settings, spec: JudgeSpec | None = None) -> Engine:
    """The engine of one judge (the default PandaLM judge without `spec`)."""
    settings = spec.settings if spec is not None else settings
    if settings.engine == "remote":
        from .engines.remote import RemoteEngine

        return RemoteEngine(settings)
    from .engines.vllm import VLLMEngine
    from .model import resolve_model

    # Resolved here, above the engine: the engine loads a model, and knows nothing of the demo judges.
    if spec is not None and spec.demo:
        resolve = functools.partial(ensure_demo_model, settings.cache_dir, spec.family)
        return VLLMEngine(settings, model=lambda: str(resolve()))
    return VLLMEngine(settings, model=functools.partial(resolve_model, settings))


def create_app(
    settings: Settings, engine: Engine | None = None, engines: Mapping[str, Engine] | None = None
) -> FastAPI:
    """Build the app. `engine` replaces the default judge's engine, `engines` the judges' by name (tests pass
    fakes)."""
    specs = judge_specs(settings)
    given = dict(engines or {})
    if engine is not None:
        given[specs[0].name] = engine
    services = Services(settings, [(spec, given.get(spec.name) or build_engine(settings, spec)) for spec in specs])

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(services.start_engine())
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            await services.stop()

    app = FastAPI(
        title="PandaLM judging service",
        version=__version__,
        description="Compare two responses to an instruction with the PandaLM judge, on your own hardware.",
        lifespan=lifespan,
        docs_url=None,  # install_docs: served without a CDN
        redoc_url=None,
    )
    app.state.services = services
    app.openapi = lambda: _openapi_with_limits(app, settings, services)  # type: ignore[method-assign]
    install_error_handlers(app)
    app.include_router(judging.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    install_docs(app)
    if settings.ui:
        app.include_router(ui.router)

    keys = ApiKeys(settings.api_keys_file) if settings.api_keys_file is not None else None
    app.add_middleware(
        RequestContext,
        metrics=services.metrics,
        keys=keys,
        protect_metrics=settings.protect_metrics,
        key_label=settings.metrics_key_label,
        hosts=allowed_hosts(settings),
    )
    # Outermost: before anything reads.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    return app


def _openapi_with_limits(app: FastAPI, settings: Settings, services: Services) -> dict[str, Any]:
    """The OpenAPI document, stating this server's limits and judges in the schemas: what it declares valid, it
    accepts."""
    engine = services.engine
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema["components"]["schemas"]
        options = components["JudgeOptions"]["properties"]
        options["max_new_tokens"]["anyOf"][0]["maximum"] = settings.max_new_tokens
        options["preset"]["anyOf"][0]["enum"] = sorted(engine.presets)
        for name in ("instruction", "input", "response1", "response2"):
            components["CompareRequest"]["properties"][name]["maxLength"] = settings.max_field_chars
        components["BatchRequest"]["properties"]["items"]["maxItems"] = settings.max_batch_items
        names = [judge.name for judge in services.panel]
        graders = [judge.name for judge in services.panel if "absolute" in judge.family.modes]
        for model in ("CompareRequest", "BatchRequest"):
            _name_judges(components[model]["properties"]["judge"], names)
        _name_judges(components["GradeRequest"]["properties"]["judge"], graders)
        app.openapi_schema = schema
    return app.openapi_schema


def _name_judges(field: dict[str, Any], names: list[str]) -> None:
    """A `judge` field's schema naming this server's judges: one name, or a jury of distinct names."""
    variants = []
    for variant in field["anyOf"]:
        if variant.get("type") == "string":
            if not names:
                continue  # no judge can be named (no judge grades): only the default, which answers 422
            variant["enum"] = names
        elif variant.get("type") == "array":
            variant["items"]["enum"] = names
            variant.update(minItems=1, maxItems=min(MAX_JURY, len(names)), uniqueItems=True)
        variants.append(variant)
    field["anyOf"] = variants
