"""What the sync and async clients share: requests, retries, batching and parsing. They only do the I/O."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ._exceptions import APIConnectionError, APITimeoutError, PandaLMError, status_error
from ._retry import DEFAULT_RETRY, RetryPolicy
from .models import (
    BatchSummary,
    CompareRequest,
    CompareResult,
    GradeRequest,
    GradeResult,
    InfoResponse,
    JudgeOptions,
)

DEFAULT_URL = "http://127.0.0.1:8000"
# A batch's results stream back as they finish; the read timeout is the longest wait for the next one.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=900.0, write=60.0, pool=60.0)
NDJSON = "application/x-ndjson"

M = TypeVar("M", bound=BaseModel)

# One batch item as callers give it: a compare request, or a mapping of its fields.
BatchInput = CompareRequest | Mapping[str, Any]
# A judge as callers name it: one name, or several (a jury, on the pairwise calls); None: the server's default.
JudgeChoice = str | Sequence[str] | None


class Progress(Protocol):
    def __call__(self, done: int, total: int | None) -> None:
        """Called after each result: results so far, and the number of items when it is known."""


class BaseClient:
    """Configuration and the I/O-free half of every call."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        batch_size: int = 64,
        max_in_flight: int = 4,
    ) -> None:
        if batch_size < 1 or max_in_flight < 1:
            raise ValueError("batch_size and max_in_flight must be at least 1")
        # As with other API clients, the environment gives the defaults.
        self.base_url = (base_url or os.environ.get("PANDALM_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("PANDALM_API_KEY")
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = retry
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    @staticmethod
    def _compare_body(
        instruction: str,
        response1: str,
        response2: str,
        input: str,
        id: str | None,
        options: dict[str, Any],
        *,
        judge: JudgeChoice,
        rubric: str | None,
        reference: str | None,
    ) -> dict[str, Any]:
        request = CompareRequest(
            instruction=instruction,
            input=input,
            response1=response1,
            response2=response2,
            id=id,
            options=_options(options),
            judge=_judge(judge),
            rubric=rubric,
            reference=reference,
        )
        return request.model_dump(mode="json", exclude_none=True)

    @staticmethod
    def _grade_body(
        instruction: str,
        response: str,
        rubric: str,
        *,
        input: str,
        reference: str | None,
        judge: str | None,
        id: str | None,
        options: JudgeOptions | Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        if options is not None and not isinstance(options, JudgeOptions):
            options = _options(options)
        request = GradeRequest(
            instruction=instruction,
            input=input,
            response=response,
            rubric=rubric,
            reference=reference,
            judge=judge,
            id=id,
            options=options,
        )
        return request.model_dump(mode="json", exclude_none=True)

    @staticmethod
    def _chunks(items: Iterable[BatchInput], size: int) -> Iterator[list[dict[str, Any]]]:
        """The items as /batch bodies' item lists, `size` at a time, read lazily."""
        chunk: list[dict[str, Any]] = []
        for item in items:
            chunk.append(
                item.model_dump(mode="json", exclude_none=True) if isinstance(item, CompareRequest) else dict(item)
            )
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @staticmethod
    def _batch_body(items: list[dict[str, Any]], options: dict[str, Any], judge: JudgeChoice) -> dict[str, Any]:
        body: dict[str, Any] = {"items": items}
        batch_options = _options(options)
        if batch_options is not None:
            body["options"] = batch_options.model_dump(exclude_none=True)
        if judge is not None:
            body["judge"] = _judge(judge)
        return body

    @staticmethod
    def _check_judge(judge: JudgeChoice) -> None:
        """A batch's judge (or jury) checked as a pair's is, before any item is read or sent."""
        if judge is not None:
            CompareRequest(instruction="", response1="", response2="", judge=_judge(judge))

    def _after_failure(self, attempt: int, response: httpx.Response | None, error: Exception | None) -> float:
        """After a failed attempt: the seconds to wait before the next one, or the exception for the caller."""
        if attempt < self.retry.max_retries:
            if response is not None and self.retry.retries(response.status_code):
                return self.retry.delay(attempt, response.headers.get("Retry-After"))
            # A read timeout is not retried: the service may still be judging, and a retry would judge again.
            if (
                response is None
                and isinstance(error, httpx.TransportError)
                and not isinstance(error, httpx.ReadTimeout)
            ):
                return self.retry.delay(attempt)
        if response is not None:
            raise status_error(response)
        if isinstance(error, httpx.TimeoutException):
            raise APITimeoutError(f"{self.base_url} did not answer in time ({type(error).__name__})") from error
        raise APIConnectionError(f"cannot reach the PandaLM service at {self.base_url}: {error}") from error

    def _take(self, state: ChunkState, line: str, counter: ProgressCounter) -> None:
        """One line of a streamed batch: a result for `state` (and the progress callback), or the summary."""
        parsed = self._parse_line(line)
        if isinstance(parsed, CompareResult):
            state.accept(parsed)
            counter.add()

    @staticmethod
    def _parse_result(data: Any) -> CompareResult:
        return _parse(CompareResult, data)

    @staticmethod
    def _parse_grade(data: Any) -> GradeResult:
        return _parse(GradeResult, data)

    @staticmethod
    def _parse_info(data: Any) -> InfoResponse:
        return _parse(InfoResponse, data)

    @staticmethod
    def _parse_line(line: str) -> CompareResult | BatchSummary | None:
        """One NDJSON line of a streamed batch: a result, the closing summary, or None for a blank line."""
        if not line.strip():
            return None
        data = json.loads(line)
        if isinstance(data, dict) and set(data) == {"summary"}:
            return BatchSummary.model_validate(data["summary"])
        return BaseClient._parse_result(data)


class ChunkState:
    """One /batch call's items and the results received so far; what is missing is sent again on a retry."""

    def __init__(self, start: int, items: list[dict[str, Any]]) -> None:
        self.start = start  # index of the first item among all the caller's items
        self.items = items
        self.results: dict[int, CompareResult] = {}
        self._sent: list[int] = []  # positions in `items` of the items of the current attempt

    def pending_items(self) -> list[dict[str, Any]]:
        self._sent = [i for i in range(len(self.items)) if i not in self.results]
        return [self.items[i] for i in self._sent]

    def accept(self, result: CompareResult) -> None:
        if result.index is None or not 0 <= result.index < len(self._sent):
            raise PandaLMError(f"the service sent a batch result without a valid index ({result.index})")
        position = self._sent[result.index]
        self.results[position] = result.model_copy(update={"index": self.start + position})

    @property
    def done(self) -> bool:
        return len(self.results) == len(self.items)

    def ordered(self) -> list[CompareResult]:
        return [self.results[i] for i in range(len(self.items))]


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PandaLMError(f"the service's answer is not a {model.__name__} this client understands: {exc}") from exc


def _judge(judge: JudgeChoice) -> str | list[str] | None:
    """A judge as the wire takes it: one name as a name, several (any sequence) as a list, a jury."""
    if judge is None or isinstance(judge, str):
        return judge
    return list(judge)


def _options(options: Mapping[str, Any]) -> JudgeOptions | None:
    """Keyword options as the wire's `JudgeOptions`: a misspelt option fails here, before any request."""
    given = {k: v for k, v in options.items() if v is not None}
    return JudgeOptions(**given) if given else None


class ProgressCounter:
    """Results received so far, reported to the caller's progress callback (from any thread)."""

    def __init__(self, progress: Progress | None, items: Iterable[Any]) -> None:
        self.progress = progress
        self.total = len(items) if isinstance(items, Sized) else None
        self.done = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        if self.progress is not None:
            self.progress(done, self.total)
