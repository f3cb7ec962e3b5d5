"""The one retry policy: of the client calling the service, and of the service's remote engine calling vLLM.

Exponential backoff with full jitter (so that many callers' retries do not arrive together), or the server's
`Retry-After`, both capped. What is worth retrying differs by who answers, so each caller names its statuses.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# The PandaLM service's answers worth waiting out: too many requests, and a service loading its model or briefly
# down. Not its 500, 502 or 504: a bug, the engine's failure or a pair past its deadline, which a retry repeats.
SERVICE_RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of connection errors and of `retry_statuses`: exponential backoff with full jitter, or `Retry-After`."""

    max_retries: int = 4
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    retry_statuses: frozenset[int] = SERVICE_RETRY_STATUSES

    def retries(self, status: int) -> bool:
        """Whether an answer with this status is worth another attempt."""
        return status in self.retry_statuses

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (from 0), honouring a `Retry-After` in seconds."""
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except ValueError:
                seconds = math.nan  # an HTTP date: back off as usual
            if math.isfinite(seconds):  # `nan` or `inf` from a broken server: back off as usual too
                return min(max(seconds, 0.0), self.max_backoff_s)
        return random.uniform(0, min(self.max_backoff_s, self.initial_backoff_s * 2**attempt))


DEFAULT_RETRY = RetryPolicy()
