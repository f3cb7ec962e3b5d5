"""What can go wrong talking to the service, as exceptions a caller can catch by meaning.

    PandaLMError
    ├── APIConnectionError          the service could not be reached
    │   └── APITimeoutError         ... or did not answer in time
    └── APIStatusError              it answered 4xx or 5xx; `.error` is its error body
        ├── BadRequestError         400, e.g. prompt_too_long
        ├── AuthenticationError     401
        ├── PermissionDeniedError   403
        ├── NotFoundError           404
        ├── PayloadTooLargeError    413, e.g. batch_too_large
        ├── UnprocessableEntityError 422, invalid_request or invalid_option
        ├── RateLimitError          429
        ├── InternalServerError     500 and other 5xx
        └── ServiceUnavailableError 503, e.g. not_ready (retried before it is raised)

An item of a batch that fails is a result with `status: "error"`, never an exception.
"""

from __future__ import annotations

from typing import Any

import httpx

from .models import ErrorBody


class PandaLMError(Exception):
    """Any failure of the client."""


class APIConnectionError(PandaLMError):
    """The service could not be reached (after the retries)."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """The service did not answer within the timeout."""


class APIStatusError(PandaLMError):
    """The service answered with a 4xx or 5xx status; `error` is its error body when it sent one."""

    status_code: int

    def __init__(self, message: str, *, response: httpx.Response, error: ErrorBody | None) -> None:
        super().__init__(message)
        self.response = response
        self.status_code = response.status_code
        self.error = error

    @property
    def code(self) -> str | None:
        """The service's error code, e.g. `prompt_too_long`."""
        return self.error.code if self.error is not None else None


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class PayloadTooLargeError(APIStatusError):
    pass


class UnprocessableEntityError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


class ServiceUnavailableError(APIStatusError):
    pass


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def status_error(response: httpx.Response) -> APIStatusError:
    """The exception for a 4xx or 5xx response, carrying the service's error body when there is one."""
    error: ErrorBody | None = None
    try:
        raw = response.json()["error"]
        # Unchecked, so that a code newer than this client still reaches the caller.
        fields: dict[str, Any] = {
            "code": str(raw["code"]),
            "message": str(raw["message"]),
            "details": raw.get("details"),
        }
        error = ErrorBody.model_construct(**fields)
    except (ValueError, KeyError, TypeError):  # not the service's error shape (a proxy's page, say)
        pass
    cls = _BY_STATUS.get(response.status_code, InternalServerError if response.status_code >= 500 else APIStatusError)
    detail = f"{error.code}: {error.message}" if error is not None else response.text[:200]
    return cls(
        f"HTTP {response.status_code} from {response.request.url.path}: {detail}", response=response, error=error
    )
