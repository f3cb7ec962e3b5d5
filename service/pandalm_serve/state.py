"""What the app holds while it runs: settings, engine, judge, metrics, and the engine's life: loading,
ready, dead, or the service stopping."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Annotated

from fastapi import Depends, Request

from . import __version__
from .cache import build_cache
from .cache.engine import CachedEngine
from .demo import profile_of
from .engines.base import Engine
from .errors import NotReadyError, ServiceError
from .judge.judge import Judge
from .judge.prompt import TEMPLATE_VERSION
from .metrics import Metrics
from .settings import Settings

logger = logging.getLogger(__name__)

# How often the watchdog looks at the engine.
_WATCH_INTERVAL_S = 1.0


class Services:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.engine = CachedEngine(
            engine,
            build_cache(settings),
            self.metrics,
            revision=settings.revision,
            template_version=TEMPLATE_VERSION,
            per_key=settings.cache_scope == "per-key",
            namespace=settings.cache_namespace,
        )
        self.judge = Judge(self.engine, settings, metrics=self.metrics)
        self.ready = False
        self.failed = False  # the engine failed to start, or died
        self.stopping = False

    async def start_engine(self) -> None:
        """Load the engine, then watch it; the HTTP server answers /healthz and /readyz meanwhile."""
        try:
            await self.engine.start()
            self.judge.configure(profile_of(self.engine.model_name, self.engine.tokenizer_source))
        except Exception:
            # Reported by /healthz and /readyz (and so restarted by an orchestrator); the details, which
            # may name hosts and paths, go to the log only.
            logger.exception("the %s engine failed to start", self.engine.name)
            self.failed = True
            return
        self.ready = True
        self.metrics.engine_ready.set(1)
        self.metrics.build_info.labels(
            version=__version__,
            model=self.engine.model_name,
            engine=self.engine.name,
            template_version=TEMPLATE_VERSION,
        ).set(1)
        await self._watch()

    async def _watch(self) -> None:
        """Notice, once, an engine that died: liveness fails, and the process exits if so configured."""
        while not self.engine.dead:
            await asyncio.sleep(_WATCH_INTERVAL_S)
        self.ready = False
        self.failed = True
        self.metrics.engine_ready.set(0)
        if self.settings.exit_on_engine_death:
            logger.error(
                "the %s engine died: stopping the service so that its supervisor restarts it", self.engine.name
            )
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            logger.error("the %s engine died: /healthz now fails", self.engine.name)

    def begin_shutdown(self) -> None:
        """SIGTERM: not ready at once, no new work, and the pairs in flight get the grace period to finish."""
        if self.stopping:
            return
        self.stopping = True
        self.ready = False
        self.judge.deadlines.stop(self.settings.shutdown_grace_s)
        logger.info("stopping: the pairs in flight have %g s to finish", self.settings.shutdown_grace_s)

    async def stop(self) -> None:
        self.ready = False
        self.metrics.engine_ready.set(0)
        await self.engine.stop()

    def require_alive(self) -> None:
        if self.failed:
            if self.engine.dead:
                raise ServiceError("the engine has died; the service is restarting", code="engine_dead")
            raise NotReadyError("the engine failed to start; see the server log", code="engine_failed")

    def require_ready(self) -> None:
        if self.stopping:
            raise ServiceError("the service is stopping; retry on another replica", code="shutting_down")
        self.require_alive()
        if not self.ready:
            raise NotReadyError("the judge model is still loading; retry when GET /readyz answers 200")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
