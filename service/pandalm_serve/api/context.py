"""Around every request: its id, the caller's API key, the judging endpoints' counts and times, and the
500 of a bug, written once in the error shape.

Plain ASGI, not Starlette's BaseHTTPMiddleware: it leaves `receive` alone, so the routes still see the
client's disconnect (BaseHTTPMiddleware broke that under 200 concurrent calls).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import ANONYMOUS, ApiKeys, Caller, current_caller
from ..hosts import host_name
from ..logs import request_id
from ..metrics import Metrics

logger = logging.getLogger(__name__)

JUDGING_PATHS = frozenset({"/compare", "/batch", "/grade"})
# Open whatever the keys: probes must work without secrets, and the page holds none (it asks for a key).
_OPEN_PATHS = frozenset({"/healthz", "/readyz", "/"})
KeyLabel = Literal["name", "hashed", "dropped"]
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        keys: ApiKeys | None,
        protect_metrics: bool,
        key_label: KeyLabel = "name",
        hosts: frozenset[str] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.keys = keys
        self.protect_metrics = protect_metrics
        self.key_label = key_label
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _CLIENT_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        path = scope["path"]
        counted = path in JUDGING_PATHS
        started = time.perf_counter()
        caller = ANONYMOUS
        status = 500
        responded = False

        async def wrapped_send(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        caller_token = None
        try:
            if self.hosts is not None and host_name(headers.get(b"host", b"").decode("latin-1")) not in self.hosts:
                await _error(wrapped_send, 403, "forbidden", _OTHER_HOST)
                return
            if self.keys is not None and self._protected(path):
                found = self._authenticate(headers.get(b"authorization", b"").decode("latin-1"))
                if found is None:
                    await _error(wrapped_send, 401, "unauthorized", _UNAUTHORIZED, {"www-authenticate": "Bearer"})
                    return
                caller = found
                caller_token = current_caller.set(caller)
            state = scope.setdefault("state", {})
            state["client"] = caller.name
            state["key_label"] = self._label(caller)  # how /metrics names the caller (--metrics-key-label)
            await self.app(scope, receive, wrapped_send)
        except Exception:  # a bug: logged once here, answered in the error shape, and counted
            logger.exception("internal error on %s %s", scope["method"], path)
            if not responded:
                await _error(wrapped_send, 500, "internal_error", "internal error; see the server log")
        finally:
            request_id.reset(token)
            if caller_token is not None:
                current_caller.reset(caller_token)
            if counted:
                self.metrics.requests.labels(endpoint=path, code=str(status), client=self._label(caller)).inc()
                self.metrics.request_duration.labels(endpoint=path).observe(time.perf_counter() - started)

    def _protected(self, path: str) -> bool:
        if path in _OPEN_PATHS:
            return False
        return self.protect_metrics or path != "/metrics"

    def _authenticate(self, authorization: str) -> Caller | None:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        assert self.keys is not None
        return self.keys.caller(presented.strip())

    def _label(self, caller: Caller) -> str:
        if self.key_label == "name":
            return caller.name
        return caller.pseudonym if self.key_label == "hashed" else "-"


_OTHER_HOST = "this server does not answer to that Host name: reach it by a name in --allowed-hosts"
_UNAUTHORIZED = "a valid API key is needed: send it as `Authorization: Bearer <key>`"


async def _error(send: Send, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": None}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
