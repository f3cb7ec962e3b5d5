"""The service's own exceptions. Each carries the HTTP status and error code the API reports."""

from __future__ import annotations

from typing import Any

from pandalm_client.models import ErrorBody


class ServiceError(Exception):
    """A failure the API reports as `{"error": {"code", "message", "details"}}` with `status`."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details

    def body(self) -> ErrorBody:
        return ErrorBody(code=self.code, message=self.message, details=self.details)


class InvalidOptionError(ServiceError):
    status = 422
    code = "invalid_option"


class PromptTooLongError(ServiceError):
    status = 400
    code = "prompt_too_long"


class NotReadyError(ServiceError):
    status = 503
    code = "not_ready"
