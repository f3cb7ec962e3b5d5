"""Limits on a request's head, enforced by the HTTP protocol before any application or authentication work.

uvicorn's default parser (httptools) has no limit on header size: a single 100 MB header was read whole, and
eight at once doubled the process's memory. h11 bounds the bytes it buffers before a request's head is
complete (`max_incomplete_event_size`), so the service speaks HTTP/1.1 through h11 with that bound, plus
what h11 lacks: a limit on the number of header fields (checked before the application sees the request),
and a deadline for a head that arrives too slowly (a partial head held open would otherwise hold its
connection for ever). h11 is pure Python, but the service's own work dominates: through the remote
engine in front of a server that answers at once, 32 clients got 173-189 /compare a second with h11 and
166-232 with httptools, the same within the noise of a shared 2-core host; a real pair takes hundreds of
milliseconds of generation.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Settings

_TOO_LARGE = b"Request header fields too large."


class HeadLimits:
    """What a request's head may be: at most `max_bytes` bytes and `max_fields` fields, within `timeout_s`."""

    def __init__(self, max_bytes: int, max_fields: int, timeout_s: float) -> None:
        self.max_bytes = max_bytes
        self.max_fields = max_fields
        self.timeout_s = timeout_s

    @classmethod
    def of(cls, settings: Settings) -> HeadLimits:
        return cls(settings.max_header_bytes, settings.max_header_fields, settings.header_timeout_s)

    def protocol(self) -> type[H11Protocol]:
        """uvicorn's h11 protocol, bounded by these limits."""
        limits = self

        class LimitedH11Protocol(_LimitedH11Protocol):
            head_limits = limits

        return LimitedH11Protocol

    def uvicorn_options(self) -> dict[str, Any]:
        """The `uvicorn.Config` arguments that put these limits in force."""
        return {"http": self.protocol(), "h11_max_incomplete_event_size": self.max_bytes}


class _LimitedH11Protocol(H11Protocol):
    head_limits: HeadLimits

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.app = _check_head(self.app, self.head_limits)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_deadline()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        """While a request's head is incomplete, a deadline runs: set once per head, not reset by each byte."""
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            self._stop_head_deadline()
        elif self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.head_limits.timeout_s, self._head_too_slow)

    def _stop_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parse error 400; a head over the byte limit is 431, the status h11 hints at.
        if len(self.conn.trailing_data[0]) > self.head_limits.max_bytes:
            _send_431(self.transport)
        else:
            super().send_400_response(msg)


def _check_head(app: ASGI3Application, limits: HeadLimits) -> ASGI3Application:
    """`app`, behind a check of the head's fields and size that answers 431 before anything else runs.

    h11 bounds only a head still incomplete: one that arrives whole in a single read is parsed whatever its
    size, so the size is checked here too.
    """

    async def guarded(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "http" and _over(scope, limits):
            await send(
                {
                    "type": "http.response.start",
                    "status": 431,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": _TOO_LARGE})
            return
        await app(scope, receive, send)

    return guarded


def _over(scope: HTTPScope, limits: HeadLimits) -> bool:
    headers = list(scope["headers"])
    size = len(scope["raw_path"]) + len(scope["query_string"]) + sum(len(n) + len(v) + 4 for n, v in headers)
    return len(headers) > limits.max_fields or size > limits.max_bytes


def _send_431(transport: asyncio.Transport) -> None:
    transport.write(
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE)
    )
    transport.close()
