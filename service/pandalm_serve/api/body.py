"""Request bodies within limits, before any work: size, JSON content type, nesting, numbers, valid Unicode.

A body larger than `max_body_bytes` is refused as it arrives (413), never read whole. JSON that Python's
parser would choke on (10,000-deep nesting, a 5,000-digit number) or that cannot be encoded back (a lone
UTF-16 surrogate) is a 422 naming what is wrong, never a 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pandalm_client.models import ErrorCode

from ..errors import ERRORS

# Longest integer literal accepted: far more than any count in the API, far less than Python's limit.
_MAX_INT_DIGITS = 20


class BodyError(HTTPException):
    """A body refused before any work; raised from body parsing, where FastAPI passes HTTPExceptions on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(ERRORS[code].status, message)
        self.code = code
        self.message = message


class BodyLimit:
    """Refuse bodies over `max_bytes`: by their Content-Length at once, else as their bytes arrive; and
    bodies not whole within `timeout_s` of the request's head (a body trickled in would hold its
    connection and its task for ever: 408 `request_timeout`).

    Plain ASGI, so the routes still see the client's disconnect.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 60.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, self._too_large())
            return
        received = 0
        whole = False
        deadline = asyncio.get_running_loop().time() + self.timeout_s

        async def counting_receive() -> Message:
            nonlocal received, whole
            if whole:  # after the body, the next message is the disconnect, which may come whenever it comes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyError(
                    "request_timeout", f"the body did not arrive within {self.timeout_s:g} s; send it again"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
                whole = not message.get("more_body", False)
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self) -> BodyError:
        return BodyError(
            "payload_too_large",
            f"the body is larger than this server's limit of {self.max_bytes} bytes; split the batch",
        )


async def _refuse(send: Send, error: BodyError) -> None:
    body = json.dumps({"error": {"code": error.code, "message": error.message, "details": None}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SafeJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


def parse_json(body: bytes) -> Any:
    """The body as JSON, or a `BodyError` saying what is wrong with it."""
    try:
        value = json.loads(body, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError as exc:
        raise BodyError("invalid_request", "the JSON is nested too deeply") from exc
    except UnicodeDecodeError as exc:
        raise BodyError("invalid_request", "the body is not valid UTF-8") from exc
    except json.JSONDecodeError:
        raise  # FastAPI reports it as an invalid request, with the position
    except ValueError as exc:
        raise BodyError("invalid_request", str(exc)) from exc
    _check_unicode(value)
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"a number in the JSON has more than {_MAX_INT_DIGITS} digits")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _check_unicode(value: Any) -> None:
    """Refuse strings that cannot be encoded as UTF-8 (lone surrogates from `\\ud800` escapes)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise BodyError(
                    "invalid_request", "a string in the JSON is not valid Unicode (a lone surrogate)"
                ) from exc
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class JSONRoute(APIRoute):
    """A route whose body must be declared as JSON and is parsed within the limits above."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if content_type != "application/json" and not content_type.endswith("+json"):
                    raise BodyError("unsupported_media_type", "send the body as JSON: Content-Type: application/json")
            return await handler(SafeJSONRequest(request.scope, request.receive))

        return route_handler
