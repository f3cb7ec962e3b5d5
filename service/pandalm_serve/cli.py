"""`pandalm-serve`: flags -> Settings -> uvicorn. Every flag is also `PANDALM_<NAME>` in the environment."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from pydantic import ValidationError

from pandalm_client.canary import load_canary

from .dependencies import missing_dependency
from .hosts import listens_on_loopback
from .http_limits import HeadLimits
from .judges import JudgeConfigError, judge_specs
from .logs import configure_logging
from .settings import Settings

if TYPE_CHECKING:
    from .state import Services

# Seconds uvicorn waits, after the pairs' grace period, for their results to be written.
_SHUTDOWN_MARGIN_S = 10


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pandalm-serve",
        description="Serve the PandaLM judge over HTTP. Flags override PANDALM_<NAME> environment variables.",
    )
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} [env PANDALM_{name.upper()}; default: {field.default}]"
        if field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif field.annotation == list[str]:
            parser.add_argument(flag, action="append", default=None, metavar=name.upper(), help=help_text)
        else:
            parser.add_argument(flag, default=None, metavar=name.upper(), help=help_text)
    return parser


def load_settings(argv: list[str] | None = None) -> Settings:
    """Settings from the environment, overridden by the flags given in `argv`."""
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    return Settings(**overrides)


def main(argv: list[str] | None = None) -> None:
    try:
        settings = load_settings(argv)
    except ValidationError as exc:
        problems = "\n".join(
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        sys.exit(f"pandalm-serve: invalid settings:\n{problems}")
    try:
        specs = judge_specs(settings)  # every judge's problem found now, before anything starts
    except JudgeConfigError as exc:
        sys.exit(f"pandalm-serve: {exc}")
    if settings.canary is not None:
        try:
            load_canary(settings.canary)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.exit(f"pandalm-serve: --canary {settings.canary}: not a canary in PandaLM's test-set format ({exc})")
    for spec in specs:
        missing = missing_dependency(spec.settings, chat=spec.family.bos == "chat")
        if missing is not None:
            sys.exit(f"pandalm-serve: {missing}" + (f" (judge {spec.name!r})" if spec.configured else ""))
    configure_logging(settings)
    from .app import create_app

    app = create_app(settings)
    services: Services = app.state.services
    warn_if_open(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # ours, set above
        # The pairs in flight get shutdown_grace_s, then end as errors; uvicorn waits a little longer for
        # those last results to be written before it closes the connections.
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + _SHUTDOWN_MARGIN_S,
        **HeadLimits.of(settings).uvicorn_options(),
    )
    _Server(config, services).run()


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service at once when it is asked to stop (SIGTERM, SIGINT)."""

    def __init__(self, config: uvicorn.Config, services: Services) -> None:
        super().__init__(config)
        self._services = services

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(self._services.begin_shutdown)
        super().handle_exit(sig, frame)


def warn_if_open(settings: Settings) -> None:
    if settings.api_keys_file is not None:
        return
    if listens_on_loopback(settings.host):
        logging.getLogger("pandalm_serve").info("no API keys (--api-keys-file): open to anyone on this machine")
    else:
        logging.getLogger("pandalm_serve").warning(
            "no API keys (--api-keys-file) and listening on %s: ANYONE WHO CAN REACH THIS HOST CAN USE THE JUDGE",
            settings.host,
        )


if __name__ == "__main__":
    main()
