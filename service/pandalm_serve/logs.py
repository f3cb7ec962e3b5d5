"""Logging: plain text or one JSON object a line, each line with the id of the request it belongs to.

Lines never carry what a client sent (pairs, keys): the code logs ids, counts, codes and statuses, and the
access log's paths lose their query values.
"""

from __future__ import annotations

import contextvars
import json
import logging
from typing import Any

from .settings import Settings

# The id of the request being served (also its X-Request-Id response header); "-" outside a request.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class _QueryRedactingFilter(logging.Filter):
    """The access log's path without its query's values: a client may send its API key as `?key=...`, and the
    service reads nothing from a query, so no value there is worth a line in a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            record.args = (*args[:2], redact_query(str(args[2])), *args[3:])
        return True


def redact_query(path: str) -> str:
    """`path` with every query value replaced by `<redacted>`."""
    base, mark, query = path.partition("?")
    if not mark:
        return path
    names = (part.partition("=")[0] for part in query.split("&"))
    return base + "?" + "&".join(f"{name}=<redacted>" for name in names)


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(_QueryRedactingFilter())
    if settings.log_format == "json":
        handler.setFormatter(_JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
