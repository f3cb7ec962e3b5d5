"""`PandaLMClient` and `AsyncPandaLMClient`: the same calls, one blocking and one async; `BaseClient` holds the rest."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx

from ._base import NDJSON, BaseClient, BatchInput, ChunkState, JudgeChoice, Progress, ProgressCounter
from .models import CompareResult, GradeResult, InfoResponse, JudgeOptions


class PandaLMClient(BaseClient):
    """A blocking client. Use it as a context manager, or call `close()`.

    `transport` replaces the network (tests pass `httpx.MockTransport`); the other keywords are
    `BaseClient`'s: `api_key`, `timeout`, `retry`, `batch_size`, `max_in_flight`.
    """

    def __init__(self, base_url: str | None = None, *, transport: httpx.BaseTransport | None = None, **kwargs: Any):
        super().__init__(base_url, **kwargs)
        self._http = httpx.Client(
            base_url=self.base_url, headers=self._headers(), timeout=self.timeout, transport=transport
        )
        self._max_batch_items: int | None = None

    def __enter__(self) -> PandaLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def info(self) -> InfoResponse:
        """The served model, its decoding defaults, the template version and the service's limits."""
        return self._parse_info(self._request("GET", "/info").json())

    def compare(
        self,
        instruction: str,
        response1: str,
        response2: str,
        input: str = "",
        *,
        id: str | None = None,
        judge: JudgeChoice = None,
        rubric: str | None = None,
        reference: str | None = None,
        **options: Any,
    ) -> CompareResult:
        """Judge one pair. Options (`swap=True`, `mode="verdict"`...) are the wire's `JudgeOptions`.

        `judge` names a judge from `info().judges`, or several for a jury (their majority verdict);
        `rubric` and `reference` go to the families that take them. None: the server's default.
        """
        body = self._compare_body(
            instruction, response1, response2, input, id, options, judge=judge, rubric=rubric, reference=reference
        )
        return self._parse_result(self._request("POST", "/compare", body).json())

    def grade(
        self,
        instruction: str,
        response: str,
        rubric: str,
        *,
        input: str = "",
        reference: str | None = None,
        judge: str | None = None,
        id: str | None = None,
        options: JudgeOptions | Mapping[str, Any] | None = None,
    ) -> GradeResult:
        """Grade one response on the judge's absolute scale (`POST /grade`): its score and feedback.

        A judge that cannot grade is refused with `UnprocessableEntityError` (code `invalid_option`).
        """
        body = self._grade_body(
            instruction, response, rubric, input=input, reference=reference, judge=judge, id=id, options=options
        )
        return self._parse_grade(self._request("POST", "/grade", body).json())

    def batch(
        self,
        items: Iterable[BatchInput],
        *,
        progress: Progress | None = None,
        judge: JudgeChoice = None,
        **options: Any,
    ) -> list[CompareResult]:
        """Judge every item; the results in the order of `items`. See `iter_batch`."""
        return list(self.iter_batch(items, progress=progress, judge=judge, **options))

    def iter_batch(
        self,
        items: Iterable[BatchInput],
        *,
        progress: Progress | None = None,
        judge: JudgeChoice = None,
        **options: Any,
    ) -> Iterator[CompareResult]:
        """Judge any number of items, yielding results in their order as soon as they are known.

        `items` is read lazily, `batch_size` at a time, with at most `max_in_flight` /batch calls
        running; each streams its results, and a call cut short is retried for its missing items only.
        A result's `index` is its item's position in `items`. A failed item is a result with
        `status: "error"`, never an exception. `judge` (a name, or several for a jury) judges every
        item that names none of its own.
        """
        self._check_judge(judge)
        counter = ProgressCounter(progress, items)
        size = self._chunk_size()
        with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="pandalm-batch") as pool:
            running: deque[Future[list[CompareResult]]] = deque()
            start = 0
            for chunk in self._chunks(items, size):
                if len(running) == self.max_in_flight:
                    yield from running.popleft().result()
                running.append(pool.submit(self._run_chunk, ChunkState(start, chunk), options, judge, counter))
                start += len(chunk)
            while running:
                yield from running.popleft().result()

    def _chunk_size(self) -> int:
        if self._max_batch_items is None:
            self._max_batch_items = self.info().limits.max_batch_items
        return min(self.batch_size, self._max_batch_items)

    def _run_chunk(
        self, state: ChunkState, options: dict[str, Any], judge: JudgeChoice, counter: ProgressCounter
    ) -> list[CompareResult]:
        attempt = 0
        while not state.done:
            response: httpx.Response | None = None
            error: Exception | None = None
            body = self._batch_body(state.pending_items(), options, judge)
            try:
                with self._http.stream("POST", "/batch", json=body, headers={"Accept": NDJSON}) as streamed:
                    if streamed.status_code >= 400:
                        streamed.read()
                        response = streamed
                    else:
                        for line in streamed.iter_lines():
                            self._take(state, line, counter)
                        if not state.done:
                            error = httpx.RemoteProtocolError("the result stream ended early")
            except httpx.TransportError as exc:
                error = exc
            if not state.done:
                time.sleep(self._after_failure(attempt, response, error))
                attempt += 1
        return state.ordered()

    def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = self._http.request(method, path, json=body)
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.status_code < 400:
                return response
            time.sleep(self._after_failure(attempt, response, error))
            attempt += 1


class AsyncPandaLMClient(BaseClient):
    """The async twin of `PandaLMClient`: the same calls, awaited; `iter_batch` is an async iterator."""

    def __init__(
        self, base_url: str | None = None, *, transport: httpx.AsyncBaseTransport | None = None, **kwargs: Any
    ):
        super().__init__(base_url, **kwargs)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers(), timeout=self.timeout, transport=transport
        )
        self._max_batch_items: int | None = None

    async def __aenter__(self) -> AsyncPandaLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def info(self) -> InfoResponse:
        return self._parse_info((await self._request("GET", "/info")).json())

    async def compare(
        self,
        instruction: str,
        response1: str,
        response2: str,
        input: str = "",
        *,
        id: str | None = None,
        judge: JudgeChoice = None,
        rubric: str | None = None,
        reference: str | None = None,
        **options: Any,
    ) -> CompareResult:
        body = self._compare_body(
            instruction, response1, response2, input, id, options, judge=judge, rubric=rubric, reference=reference
        )
        return self._parse_result((await self._request("POST", "/compare", body)).json())

    async def grade(
        self,
        instruction: str,
        response: str,
        rubric: str,
        *,
        input: str = "",
        reference: str | None = None,
        judge: str | None = None,
        id: str | None = None,
        options: JudgeOptions | Mapping[str, Any] | None = None,
    ) -> GradeResult:
        body = self._grade_body(
            instruction, response, rubric, input=input, reference=reference, judge=judge, id=id, options=options
        )
        return self._parse_grade((await self._request("POST", "/grade", body)).json())

    async def batch(
        self,
        items: Iterable[BatchInput],
        *,
        progress: Progress | None = None,
        judge: JudgeChoice = None,
        **options: Any,
    ) -> list[CompareResult]:
        return [result async for result in self.iter_batch(items, progress=progress, judge=judge, **options)]

    async def iter_batch(
        self,
        items: Iterable[BatchInput],
        *,
        progress: Progress | None = None,
        judge: JudgeChoice = None,
        **options: Any,
    ) -> AsyncIterator[CompareResult]:
        self._check_judge(judge)
        counter = ProgressCounter(progress, items)
        size = await self._chunk_size()
        running: deque[asyncio.Task[list[CompareResult]]] = deque()
        try:
            start = 0
            for chunk in self._chunks(items, size):
                if len(running) == self.max_in_flight:
                    for result in await running.popleft():
                        yield result
                running.append(asyncio.create_task(self._run_chunk(ChunkState(start, chunk), options, judge, counter)))
                start += len(chunk)
            while running:
                for result in await running.popleft():
                    yield result
        finally:
            for task in running:  # the caller stopped early: stop judging what nobody will read
                task.cancel()

    async def _chunk_size(self) -> int:
        if self._max_batch_items is None:
            self._max_batch_items = (await self.info()).limits.max_batch_items
        return min(self.batch_size, self._max_batch_items)

    async def _run_chunk(
        self, state: ChunkState, options: dict[str, Any], judge: JudgeChoice, counter: ProgressCounter
    ) -> list[CompareResult]:
        attempt = 0
        while not state.done:
            response: httpx.Response | None = None
            error: Exception | None = None
            body = self._batch_body(state.pending_items(), options, judge)
            try:
                async with self._http.stream("POST", "/batch", json=body, headers={"Accept": NDJSON}) as streamed:
                    if streamed.status_code >= 400:
                        await streamed.aread()
                        response = streamed
                    else:
                        async for line in streamed.aiter_lines():
                            self._take(state, line, counter)
                        if not state.done:
                            error = httpx.RemoteProtocolError("the result stream ended early")
            except httpx.TransportError as exc:
                error = exc
            if not state.done:
                await asyncio.sleep(self._after_failure(attempt, response, error))
                attempt += 1
        return state.ordered()

    async def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = await self._http.request(method, path, json=body)
            except httpx.TransportError as exc:
                error = exc
            if response is not None and response.status_code < 400:
                return response
            await asyncio.sleep(self._after_failure(attempt, response, error))
            attempt += 1
