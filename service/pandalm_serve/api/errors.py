"""One error shape for every 4xx and 5xx, produced here and nowhere else."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pandalm_client.models import ErrorBody, ErrorCode, ErrorResponse, error_details

from ..errors import ERRORS, ServiceError
from .body import BodyError


def _responses() -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of the judging routes: each status with the codes it carries."""
    codes: dict[int, list[str]] = defaultdict(list)
    for code, spec in ERRORS.items():
        if code not in _FRAMEWORK_CODES.values():
            codes[spec.status].append(f"`{code}`")
    return {
        status: {"model": ErrorResponse, "description": ", ".join(names)} for status, names in sorted(codes.items())
    }


# The framework's own HTTP errors; any other it raises (a body it cannot parse) is an invalid request.
_FRAMEWORK_CODES: dict[int, ErrorCode] = {404: "not_found", 405: "method_not_allowed"}

ERROR_RESPONSES = _responses()


def error_response(body: ErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        ErrorResponse(error=body).model_dump(mode="json"), status_code=ERRORS[body.code].status, headers=headers
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc.body(), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(
        ErrorBody(
            code="invalid_request",
            message="the request body is not valid; see details",
            details=error_details(exc.errors()),
        )
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, BodyError):
        return error_response(ErrorBody(code=exc.code, message=exc.message))
    code = _FRAMEWORK_CODES.get(exc.status_code, "invalid_request")
    return error_response(ErrorBody(code=code, message=str(exc.detail)), exc.headers)  # 405 keeps its Allow


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # A bug (any other exception) is answered, logged and counted once, by api/context.py.
