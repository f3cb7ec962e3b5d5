"""What the app holds while it runs: settings, judges (each a family over its own engine), metrics, and the
engines' life: loading, ready, dead, or the service stopping."""

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
from .judge.admission import Admission
from .judge.deadlines import Deadlines
from .judge.judge import Judge
from .judge.panel import Panel
from .judges import JudgeSpec
from .metrics import Metrics
from .quality.health import JudgeHealth
from .quality.metrics import QualityMetrics
from .settings import Settings

logger = logging.getLogger(__name__)

# How often the watchdog looks at the engine.
_WATCH_INTERVAL_S = 1.0


class Services:
    def __init__(self, settings: Settings, judges: list[tuple[JudgeSpec, Engine]]) -> None:
        self.settings = settings
        self.metrics = Metrics()
        cache = build_cache(settings)
        admission = Admission(settings.max_items_in_flight, settings.max_items_waiting, self.metrics)
        deadlines = Deadlines(settings.item_timeout_s)
        built = []
        for spec, engine in judges:
            cached = CachedEngine(
                engine,
                cache,
                self.metrics,
                revision=spec.settings.revision,
                template_version=spec.family.template_version,
                per_key=settings.cache_scope == "per-key",
                namespace=settings.cache_namespace,
                judge=spec.name if spec.configured else "",
            )
            judge = Judge(cached, spec.settings, self.metrics, spec.family, spec.name,
                          admission=admission, deadlines=deadlines)  # fmt: skip
            built.append(judge)
        self.health = JudgeHealth(settings, QualityMetrics(self.metrics.registry), built)
        self.panel = Panel(built, observe=self.health.observe)
        # The default judge, and its engine: what /info's top level and the admin endpoints describe.
        self.judge = self.panel.default
        self.engine: CachedEngine = self.judge.engine  # type: ignore[assignment]
        self.ready = False
        self.failed = False  # an engine failed to start, or died
        self.stopping = False

    async def start_engine(self) -> None:
        """Load the judges' engines, one after the other, then watch them; the HTTP server answers /healthz and
        /readyz meanwhile. The service is ready when every judge is."""
        for judge in self.panel:
            try:
                await judge.engine.start()
                judge.configure(profile_of(judge.engine.model_name, judge.engine.tokenizer_source))
            except Exception:
                # Reported by /healthz and /readyz (and so restarted by an orchestrator); the details, which
                # may name hosts and paths, go to the log only.
                logger.exception("judge %r: the %s engine failed to start", judge.name, judge.engine.name)
                self.failed = True
                return
            judge.ready = True
            self.metrics.build_info.labels(
                version=__version__,
                model=judge.engine.model_name,
                engine=judge.engine.name,
                template_version=judge.family.template_version,
                judge=judge.name,
                family=judge.family.name,
            ).set(1)
        self.ready = True
        self.metrics.engine_ready.set(1)
        self.health.start()
        await self._watch()

    async def _watch(self) -> None:
        """Notice, once, an engine that died: liveness fails, and the process exits if so configured."""
        while not any(judge.engine.dead for judge in self.panel):
            await asyncio.sleep(_WATCH_INTERVAL_S)
        dead = next(judge for judge in self.panel if judge.engine.dead)
        self.ready = False
        self.failed = True
        self.metrics.engine_ready.set(0)
        if self.settings.exit_on_engine_death:
            logger.error(
                "judge %r: the %s engine died: stopping the service so that its supervisor restarts it",
                dead.name,
                dead.engine.name,
            )
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            logger.error("judge %r: the %s engine died: /healthz now fails", dead.name, dead.engine.name)

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
        await self.health.stop()
        for judge in self.panel:
            await judge.engine.stop()

    def dead_engine(self) -> bool:
        return any(judge.engine.dead for judge in self.panel)

    def require_alive(self) -> None:
        if self.failed:
            if self.dead_engine():
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
