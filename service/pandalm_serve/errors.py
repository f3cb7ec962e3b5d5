"""Every error the API reports, each code with its one HTTP status, and the exceptions that carry them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pandalm_client.models import ErrorBody, ErrorCode


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    status: int
    meaning: str


# The closed list of error codes (the wire schema's `ErrorCode`), documented in the README's error
# table; tests/test_readme.py checks the two agree.
ERRORS: dict[ErrorCode, ErrorSpec] = {
    "invalid_request": ErrorSpec(422, "The body is not valid JSON or not a valid request; `details` lists where."),
    "invalid_option": ErrorSpec(422, "An option this server cannot honour (over its limit, a preset it lacks)."),
    "prompt_too_long": ErrorSpec(400, "The prompt does not fit the context; `details` gives the token counts."),
    "batch_too_large": ErrorSpec(413, "More items than `max_batch_items`; split the batch."),
    "payload_too_large": ErrorSpec(413, "The body is larger than `max_body_bytes`."),
    "request_timeout": ErrorSpec(408, "The body did not arrive within `body_timeout_s` of the request's head."),
    "unsupported_media_type": ErrorSpec(415, "The body is not sent as `Content-Type: application/json`."),
    "unauthorized": ErrorSpec(401, "No API key, or not a valid one: send `Authorization: Bearer <key>`."),
    "forbidden": ErrorSpec(403, "Not allowed: `DELETE /cache` without an admin key, or a `Host` not allowed."),
    "not_found": ErrorSpec(404, "No such path."),
    "method_not_allowed": ErrorSpec(405, "The path exists, with another method (see the `Allow` header)."),
    "overloaded": ErrorSpec(429, "Too much work is waiting; retry after `Retry-After` seconds."),
    "deadline_exceeded": ErrorSpec(504, "The pair was not judged within `item_timeout_s`."),
    "shutting_down": ErrorSpec(503, "The service is stopping; retry on another replica or after its restart."),
    "not_ready": ErrorSpec(503, "The model is still loading; retry when `/readyz` answers 200."),
    "engine_failed": ErrorSpec(503, "The engine failed to start; the message says why."),
    "engine_dead": ErrorSpec(503, "The engine stopped answering."),
    "engine_error": ErrorSpec(502, "The engine failed while judging."),
    "remote_rejected": ErrorSpec(502, "The remote server refused the request (a 4xx other than a context error)."),
    "remote_bad_response": ErrorSpec(502, "The remote server's answer is not an OpenAI completion, or is too large."),
    "remote_unavailable": ErrorSpec(503, "The remote server does not answer, or is overloaded, after the retries."),
    "cache_unavailable": ErrorSpec(503, "The verdict cache does not answer (only `DELETE /cache` reports it)."),
    "internal_error": ErrorSpec(500, "A bug: the server log has the details; the response has none."),
}

# Phrases of a server's "prompt longer than the context" error, vLLM's included.
CONTEXT_ERROR_HINTS = ("context length", "maximum context", "too long", "max_model_len")


class ServiceError(Exception):
    """A failure the API reports as `{"error": {"code", "message", "details"}}`, with its code's status."""

    code: ErrorCode = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers  # e.g. Retry-After on a 429, WWW-Authenticate on a 401

    @property
    def status(self) -> int:
        return ERRORS[self.code].status

    def body(self) -> ErrorBody:
        return ErrorBody(code=self.code, message=self.message, details=self.details)


class InvalidOptionError(ServiceError):
    code: ErrorCode = "invalid_option"


class PromptTooLongError(ServiceError):
    code: ErrorCode = "prompt_too_long"


class NotReadyError(ServiceError):
    code: ErrorCode = "not_ready"


class EngineError(ServiceError):
    """Generation failed; by default a 502, since the fault is the engine's, not the caller's."""

    code: ErrorCode = "engine_error"


class ConfigurationError(Exception):
    """The settings and the model do not fit together; found at start-up, reported as `engine_failed`."""
