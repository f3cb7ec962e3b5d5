"""One error shape for every 4xx and 5xx, produced here and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pandalm_client.models import ErrorBody, ErrorResponse

from ..errors import ServiceError

logger = logging.getLogger(__name__)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The request cannot be judged, e.g. `prompt_too_long`."},
    413: {"model": ErrorResponse, "description": "Too many items in one batch (`batch_too_large`)."},
    422: {"model": ErrorResponse, "description": "Invalid body or option (`invalid_request`, `invalid_option`)."},
    500: {"model": ErrorResponse, "description": "Internal error."},
    502: {"model": ErrorResponse, "description": "The engine failed (`engine_error`)."},
    503: {"model": ErrorResponse, "description": "The model is still loading, or the engine is down."},
}

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable", 415: "unsupported_media_type"}


def error_response(status: int, body: ErrorBody) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=body).model_dump(mode="json"), status_code=status)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.status, exc.body())


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Without the echoed input: it may be large or confidential.
    details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return error_response(
        422, ErrorBody(code="invalid_request", message="the request body is not valid; see details", details=details)
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, ErrorBody(code=code, message=str(exc.detail)))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, ErrorBody(code="internal_error", message="internal error; see the server log"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
