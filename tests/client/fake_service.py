"""A scripted PandaLM service behind httpx's MockTransport, for the client's unit tests, or over HTTP (`over_http`)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from pandalm_client.models import (
    CompareResult,
    DecodingInfo,
    GradeResult,
    InfoResponse,
    JudgeInfo,
    JudgeMode,
    JudgeOptions,
    LimitsInfo,
    Verdict,
)

# Every option's server default, as a real server's /info lists them (`JudgeOptions` unset means "the server's").
SERVER_DEFAULTS = JudgeOptions(
    preset="greedy", max_new_tokens=512, truncate=False, mode="full", swap=False, cache=True, neutralize_headers=False
)


def judge(name: str, *modes: JudgeMode, family: str = "pandalm", demo: bool = False) -> dict[str, Any]:
    """One judge as /info lists it (pairwise unless `modes` say otherwise)."""
    return JudgeInfo.model_validate(
        {
            "name": name,
            "family": family,
            "model": f"{name}-model",
            "demo": demo,
            "modes": list(modes or ["pairwise"]),
            "engine": "fake",
            "template_version": f"{family}-v1",
            "ready": True,
        }
    ).model_dump(mode="json")


def info(max_batch_items: int = 1000, demo: bool = False, judges: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """/info as a service on a token-id engine answers it, built from the wire schema so it cannot drift."""
    unset = [name for name, value in SERVER_DEFAULTS.model_dump().items() if value is None]
    assert not unset, f"the fake service's /info lacks the server default of {unset}"
    return InfoResponse(
        service_version="0.1.0",
        engine="fake",
        model="fake-judge",
        demo=demo,
        template_version="pandalm-v1",
        prompt_format="token_ids",
        tokenizer="fake",
        bos_token="</s>",
        data_parallel_size=None,
        decoding=DecodingInfo(options=SERVER_DEFAULTS, repetition_penalty=1.2, beam_width=4, batch_invariant=False),
        limits=LimitsInfo(context_length=2048, max_new_tokens=512, max_batch_items=max_batch_items),
        ready=True,
        judges=[JudgeInfo.model_validate(j) for j in judges or []],
    ).model_dump(mode="json")


# `pandalm ARGS` run in process: (exit code, stdout, stderr).
Run = Callable[..., tuple[int, str, str]]


def prefer_longer(item: dict[str, Any], index: int | None) -> dict[str, Any]:
    """A judge whose preference is known: the longer response wins; equal lengths tie."""
    one, two = len(item["response1"]), len(item["response2"])
    verdict: Verdict = "response1" if one > two else "response2" if two > one else "tie"
    return CompareResult(
        id=item.get("id"),
        index=index,
        verdict=verdict,
        status="ok",
        reason=f"{verdict} is longer" if verdict != "tie" else "the same length",
        model="fake-judge",
        template_version="pandalm-v1",
    ).model_dump(mode="json")


def grade_by_length(request: dict[str, Any]) -> dict[str, Any]:
    """A grader whose score is known: 1 plus a point per ten characters of the response, at most 5."""
    score = min(5, 1 + len(request["response"]) // 10)
    return GradeResult(
        id=request.get("id"),
        status="ok",
        score=score,
        scale=[1, 5],
        feedback=f"{len(request['response'])} characters",
        raw=f"{len(request['response'])} characters [RESULT] {score}",
        model="fake-grader",
    ).model_dump(mode="json")


def refused(message: str, judge: Any) -> httpx.Response:
    error = {"code": "invalid_option", "message": message, "details": {"option": "judge", "value": judge}}
    return httpx.Response(422, json={"error": error})


class CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that sends some lines, then loses the connection."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def __iter__(self) -> Iterator[bytes]:
        yield from self.lines
        raise httpx.ReadError("connection lost")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for line in self.lines:
            yield line
        raise httpx.ReadError("connection lost")


class FakeService:
    """Answers /info, /compare, /batch (JSON or NDJSON) and /grade; `failures` are answered first, one a request.

    With `judges` (as `judge()` makes them) set, /info lists them, a request naming another is refused
    (422 `invalid_option`, as the service refuses it), and every result names its judge (or jury).
    """

    def __init__(self, judge: Callable[[dict[str, Any], int | None], dict[str, Any]] = prefer_longer) -> None:
        self.judge = judge
        self.requests: list[httpx.Request] = []
        self.bodies: list[Any] = []
        # Each: an HTTP status, (status, headers), a whole response, "cut" (the stream breaks after half the
        # results) or an exception.
        self.failures: list[Any] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay_s = 0.0
        self.max_batch_items = 1000
        self.demo = False
        self.connections: list[tuple[str, str | None]] = []  # (URL, API key) of each client the CLI made
        self.api_key: str | None = None  # when set, a request without this bearer token is answered 401
        self.judges: list[dict[str, Any]] = []
        # /grade's answer to a request: a result, or a whole response (an error for that request alone).
        self.grader: Callable[[dict[str, Any]], dict[str, Any] | httpx.Response] = grade_by_length
        self._lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            body = json.loads(request.content) if request.content else None
            self.bodies.append(body)
            failure = self.failures.pop(0) if self.failures else None
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay_s)
            return self._answer(request, body, failure)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, request: httpx.Request, body: Any, failure: Any) -> httpx.Response:
        if isinstance(failure, Exception):
            raise failure
        if isinstance(failure, httpx.Response):
            return failure
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            error = {"code": "unauthorized", "message": "send Authorization: Bearer <key>", "details": None}
            return httpx.Response(401, json={"error": error}, headers={"www-authenticate": "Bearer"})
        if isinstance(failure, int | tuple):
            status, headers = failure if isinstance(failure, tuple) else (failure, {})
            error = {"code": "not_ready" if status == 503 else "internal_error", "message": "scripted", "details": None}
            return httpx.Response(status, json={"error": error}, headers=headers)
        if request.url.path == "/info":
            return httpx.Response(200, json=info(self.max_batch_items, self.demo, self.judges))
        if request.url.path == "/grade":
            return self._grade(body)
        if request.url.path == "/compare":
            unknown = self._unknown(body.get("judge"), "pairwise")
            return refused(unknown, body["judge"]) if unknown else httpx.Response(200, json=self._judged(body, None))
        assert request.url.path == "/batch"
        if len(body["items"]) > self.max_batch_items:
            error = {"code": "batch_too_large", "message": "split it", "details": None}
            return httpx.Response(413, json={"error": error})
        unknown = self._unknown(body.get("judge"), "pairwise")
        if unknown:
            return refused(unknown, body["judge"])
        default = {"judge": body["judge"]} if "judge" in body else {}
        results = [self._judged({**default, **item}, i) for i, item in enumerate(body["items"])]
        lines = [json.dumps(r).encode() + b"\n" for r in reversed(results)]  # as they finish: any order
        if failure == "cut":
            return httpx.Response(200, stream=CutStream(lines[: len(lines) // 2]))
        lines.append(json.dumps({"summary": {}}).encode() + b"\n")
        return httpx.Response(200, content=b"".join(lines), headers={"content-type": "application/x-ndjson"})

    def _unknown(self, named: Any, mode: JudgeMode) -> str | None:
        """Why the service refuses the judge(s) `named` for `mode`; None when it serves them (or lists none)."""
        served = {j["name"]: j for j in self.judges}
        for name in [named] if isinstance(named, str) else named or []:
            if served and name not in served:
                return f"no judge named {name!r}; this service serves {', '.join(served)}"
            if served and mode not in served[name]["modes"]:
                return f"the judge {name!r} cannot do {mode} judging"
        return None

    def _judged(self, item: dict[str, Any], index: int | None) -> dict[str, Any]:
        """The scripted judge's result, naming the judge (or jury) the item asked for; an unknown one fails it."""
        named = item.get("judge") or (self.judges[0]["name"] if self.judges else None)
        unknown = self._unknown(named, "pairwise")
        if unknown:
            error = {"code": "invalid_option", "message": unknown, "details": {"option": "judge"}}
            return {"id": item.get("id"), "index": index, "status": "error", "error": error, "judge": named}
        result = {**self.judge(item, index), "judge": named}
        if isinstance(named, list):  # a unanimous jury
            juror = {k: result.get(k) for k in ("verdict", "status", "reason")}
            result |= {"jury": [{**juror, "judge": name} for name in named], "agreement": 1.0}
        return result

    def _grade(self, body: dict[str, Any]) -> httpx.Response:
        named = body.get("judge") or next((j["name"] for j in self.judges if "absolute" in j["modes"]), None)
        unknown = self._unknown(named, "absolute")
        if unknown:
            return refused(unknown, named)
        answer = self.grader(body)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json={**answer, "judge": named})


@contextlib.contextmanager
def over_http(service: FakeService) -> Iterator[str]:
    """The scripted service on a real loopback port, for a command in another process; yields its URL.

    A scripted exception (a connection error) drops the connection without an answer.
    """

    class Handler(BaseHTTPRequestHandler):
        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            request = httpx.Request(self.command, f"http://fake{self.path}", headers=dict(self.headers), content=body)
            try:
                response = service.handle(request)
            except httpx.TransportError:
                self.close_connection = True
                return
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("connection", "close")  # the body ends when the connection does
            self.end_headers()
            with contextlib.suppress(httpx.ReadError):  # a "cut" stream: the connection drops mid-body
                for chunk in response.iter_bytes():
                    self.wfile.write(chunk)

        do_GET = do_POST = forward

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the tests read the service's records, not an access log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
