"""What the app holds while it runs: settings, engine, judge, metrics and the engine's start-up state."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request

from . import __version__
from .engines.base import Engine
from .errors import NotReadyError
from .judge.judge import Judge
from .judge.prompt import TEMPLATE_VERSION
from .metrics import Metrics
from .model import profile_of
from .settings import Settings

logger = logging.getLogger(__name__)


class Services:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = Metrics()
        self.judge = Judge(engine, settings, self.metrics)
        self.ready = False
        self.start_error: str | None = None

    async def start_engine(self) -> None:
        """Load the engine; the HTTP server answers /healthz and /readyz meanwhile."""
        try:
            await self.engine.start()
            self.judge.configure(profile_of(self.engine.model_name, self.engine.tokenizer_source))
        except Exception as exc:
            # Reported by /healthz and /readyz (and so restarted by an orchestrator), not swallowed.
            logger.exception("the %s engine failed to start", self.engine.name)
            self.start_error = f"{type(exc).__name__}: {exc}"
            return
        self.ready = True
        self.metrics.engine_ready.set(1)
        self.metrics.build_info.labels(
            version=__version__,
            model=self.engine.model_name,
            engine=self.engine.name,
            template_version=TEMPLATE_VERSION,
        ).set(1)

    async def stop(self) -> None:
        self.ready = False
        self.metrics.engine_ready.set(0)
        await self.engine.stop()

    def require_ready(self) -> None:
        if self.start_error is not None:
            raise NotReadyError(f"the engine failed to start: {self.start_error}", code="engine_failed")
        if not self.ready:
            raise NotReadyError("the judge model is still loading; retry when GET /readyz answers 200")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
