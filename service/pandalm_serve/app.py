"""`create_app(settings)`: the whole service, built on demand; nothing heavy happens at import."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .api import health, judging
from .api.errors import install_error_handlers
from .engines.base import Engine
from .metrics import Metrics
from .settings import Settings
from .state import Services

_COUNTED_PATHS = frozenset({"/compare", "/batch"})


class _CountRequests:
    """Count and time judging requests, by status code. Plain ASGI: it leaves `receive` alone, so the
    routes still see the client's disconnect (Starlette's BaseHTTPMiddleware wraps it)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in _COUNTED_PATHS:
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(endpoint=scope["path"], code=str(message["status"])).inc()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.request_duration.labels(endpoint=scope["path"]).observe(time.perf_counter() - started)


def build_engine(settings: Settings) -> Engine:
    if settings.engine == "remote":
        from .engines.remote import RemoteEngine

        return RemoteEngine(settings)
    from .engines.vllm import VLLMEngine

    return VLLMEngine(settings)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the app. `engine` replaces the one the settings name (tests pass a fake)."""
    services = Services(settings, engine if engine is not None else build_engine(settings))

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
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(judging.router)
    app.include_router(health.router)

    app.add_middleware(_CountRequests, metrics=services.metrics)
    return app
