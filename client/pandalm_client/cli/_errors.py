"""Exit codes, and what a failure means for the person running the command: their mistake (2) or the judge's (4).

CI retries 4 and never 2: a wrong key, option or URL fails the same way every time, so it must not
look like an outage; and 1 is kept for "the candidate is worse", so nothing unexpected may exit 1.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    PandaLMError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from ..models import CompareResult

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_INFRASTRUCTURE = 4

# Statuses the caller's request earns whatever the service's health: the same request fails again.
# 408 and 429 are the service's state, not the request's (429 is retried before it is raised).
_NOT_THE_CALLERS = frozenset({408, 429})
# Item error codes caused by the item itself (a prompt too long, say): fixing the input helps, a retry does not.
INPUT_ERROR_CODES = frozenset({"invalid_request", "invalid_option", "prompt_too_long", "payload_too_large"})
# How many failed items a command prints (all of them are in its output files).
SHOWN_ITEM_ERRORS = 5


class UsageError(Exception):
    """A mistake in the command's flags or inputs; the message says which and what to do (exit 2)."""


def exit_code_of(error: PandaLMError) -> int:
    """2 when the request itself is refused (4xx), 4 when the service is unreachable or failing."""
    if isinstance(error, APIStatusError) and 400 <= error.status_code < 500:
        return EXIT_INFRASTRUCTURE if error.status_code in _NOT_THE_CALLERS else EXIT_USAGE
    return EXIT_INFRASTRUCTURE


def explain(error: PandaLMError, key_source: str | None) -> str:
    """One line for the terminal: the client's message, and for a configuration mistake, what to change."""
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        if key_source is None:
            return f"{error}; no API key was sent: set PANDALM_API_KEY (or pass --api-key)"
        return f"{error}; the API key from {key_source} was refused: check it against the service's keys"
    if isinstance(error, UnprocessableEntityError) and error.code == "invalid_option":
        option = _detail(error, "option")
        if option:
            flag = "--" + str(option).replace("_", "-")
            return f"the service refused the option {option} ({flag}): {error.error.message if error.error else error}"
    if isinstance(error, APIConnectionError):
        return f"{error} (after the client's retries; exit 4: retry later)"
    return str(error)


def item_errors(results: list[tuple[str, CompareResult]]) -> str | None:
    """The first few items without a verdict, each after where it came from (`file:line`), for stderr."""
    failed = [(where, r) for where, r in results if r.status != "ok"]
    if not failed:
        return None
    lines = [f"{len(failed)} item(s) without a verdict; the first {min(len(failed), SHOWN_ITEM_ERRORS)}:"]
    for where, result in failed[:SHOWN_ITEM_ERRORS]:
        if result.error is not None:
            lines.append(f"  {where}: {result.error.code}: {result.error.message}")
        else:
            lines.append(f"  {where}: {result.status}: the judge's output is not in its format")
    return "\n".join(lines)


def _detail(error: APIStatusError, name: str) -> Any:
    details = error.error.details if error.error is not None else None
    return details.get(name) if isinstance(details, dict) else None
