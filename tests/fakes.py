"""Fakes for unit and API tests: a scripted engine, a character tokenizer, a fake OpenAI server.

The real engines are tested in tests/integration against real servers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from aiohttp import web

from pandalm_client.models import Preset, PromptFormat
from pandalm_serve.engines.base import EnginePrompt, FirstLogprobs, Generation, Sampling, token_key
from pandalm_serve.errors import EngineError
from pandalm_serve.judge.format import LABEL_TEXTS, render_output
from tests.support import PANDALM_OUTPUT


class CharTokenizer:
    """One token per character; ids 0-2 are `<unk>`, `<s>`, `</s>`, as in LLaMA's tokenizer."""

    unk_token = "<unk>"
    unk_token_id = 0
    _special: ClassVar[dict[str, int]] = {"<unk>": 0, "<s>": 1, "</s>": 2}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [ord(c) + 3 for c in text]
        return [1, *ids] if add_special_tokens else ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(i - 3) for i in ids if i > 2)

    def convert_tokens_to_ids(self, token: str) -> int:
        return self._special.get(token, self.unk_token_id)

    all_special_ids: ClassVar[list[int]] = [0, 1, 2]

    def get_vocab(self) -> dict[str, int]:
        return {**self._special, **{chr(c): c + 3 for c in range(32, 127)}, "\n": ord("\n") + 3}


Reply = Callable[[EnginePrompt, Sampling], "str | Generation | Exception"]
# The log-probabilities the fake judge gives the label it writes, and every other label.
_LIKELY, _UNLIKELY = -0.1, -3.0
_GATE_TIMEOUT_S = 10.0

# A response holding this makes `prefers_longer` write something that is not PandaLM's format.
UNJUDGEABLE = "UNJUDGEABLE"


def prefers_longer(prompt: EnginePrompt, sampling: Sampling) -> str:
    """A judge whose preference is known: the longer response wins, equal lengths tie.

    Not the demo judge, whose verdicts are random. A pair with `UNJUDGEABLE` in a response gets an output
    that does not parse, so a test can see what a judge failure does.
    """
    first = prompt.text.split("### Response 1:\n")[1].split("\n\n### Response 2:\n")[0]
    second = prompt.text.split("### Response 2:\n")[1].split("\n\n### Evaluation:")[0]
    if UNJUDGEABLE in first + second:
        return "I would rather not say."
    verdict = "response1" if len(first) > len(second) else "response2" if len(second) > len(first) else "tie"
    return render_output(verdict, "The longer one is better.", "A reference.")  # type: ignore[arg-type]


class FakeEngine:
    """An engine whose outputs a test scripts; it records every prompt it is given."""

    name = "fake"
    presets: frozenset[Preset] = frozenset({"greedy", "beam"})
    data_parallel_size: int | None = None

    def __init__(
        self,
        reply: Reply | str = PANDALM_OUTPUT,
        *,
        tokenizer: Any | None = None,
        context_length: int | None = None,
        delay_s: float = 0.0,
        start_error: Exception | None = None,
        release_at: int | None = None,
    ) -> None:
        self.model_name = "fake-judge"
        self._reply = reply
        self.tokenizer = tokenizer
        self.tokenizer_source: str | None = "fake-tokenizer" if tokenizer is not None else None
        self.prompt_format: PromptFormat = "token_ids" if tokenizer is not None else "text"
        self.context_length = context_length
        self.delay_s = delay_s
        self.start_error = start_error
        self.prompts: list[EnginePrompt] = []
        self.samplings: list[Sampling] = []
        self.cancelled = 0
        # Generations wait at this gate until it opens: a test opens it (`client.portal.call(engine.gate.set)`)
        # once it has seen what it waits for, or it opens when `release_at` generations are in progress at
        # once. Never opened, a generation fails after _GATE_TIMEOUT_S, so a test fails rather than hangs.
        self.gate = asyncio.Event() if release_at is not None else None
        self.release_at = release_at
        self.in_progress = 0
        self.dead = False
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def check_health(self) -> None:
        if not self.started:
            raise EngineError("not started", code="not_ready")

    async def generate(self, prompt: EnginePrompt, sampling: Sampling, request_id: str) -> Generation:
        self.prompts.append(prompt)
        self.samplings.append(sampling)
        self.in_progress += 1
        try:
            await asyncio.sleep(self.delay_s)
            if self.gate is not None:
                if self.release_at is not None and self.in_progress >= self.release_at:
                    self.gate.set()
                await asyncio.wait_for(self.gate.wait(), _GATE_TIMEOUT_S)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_progress -= 1
        reply = self._reply(prompt, sampling) if callable(self._reply) else self._reply
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Generation):
            return reply
        return Generation(
            text=reply,
            finish_reason="stop",
            prompt_tokens=len(prompt.text),
            completion_tokens=len(reply),
            first_logprobs=_likely_first(reply, sampling, self.tokenizer),
        )


def _likely_first(reply: str, sampling: Sampling, tokenizer: Any | None) -> FirstLogprobs | None:
    """Log-probabilities as a judge writing `reply` would give them: the tokens that start its reply the most
    likely, every other label's unlikely. A judge that reads them under the wrong label then fails a test."""
    if sampling.top_logprobs:
        return {label: _LIKELY if reply.startswith(label) else _UNLIKELY for label in LABEL_TEXTS}
    if sampling.logprob_token_ids:
        assert tokenizer is not None, "token-id log-probabilities need the engine's tokenizer"
        texts = {token_id: tokenizer.decode([token_id]).strip() for token_id in sampling.logprob_token_ids}
        return {token_key(i): _LIKELY if text and reply.startswith(text) else _UNLIKELY for i, text in texts.items()}
    return None


_GOOD_CHOICE: dict[str, Any] = {"index": 0, "text": PANDALM_OUTPUT, "finish_reason": "stop"}
_GOOD_USAGE = {"prompt_tokens": 300, "completion_tokens": 20}
# What a broken or hostile server has answered with a 200, by name: each must be the item's
# `remote_bad_response`, never a 500 (the second hostile probe's shapes).
MALFORMED_ANSWERS: dict[str, Any] = {
    "text_number": {"choices": [{**_GOOD_CHOICE, "text": 42}], "usage": _GOOD_USAGE},
    "text_null": {"choices": [{**_GOOD_CHOICE, "text": None}], "usage": _GOOD_USAGE},
    "text_list": {"choices": [{**_GOOD_CHOICE, "text": ["a"]}], "usage": _GOOD_USAGE},
    "no_choices": {"choices": [], "usage": _GOOD_USAGE},
    "choices_object": {"choices": {"0": _GOOD_CHOICE}},
    "usage_list": {"choices": [_GOOD_CHOICE], "usage": [300, 20]},
    "usage_strings": {"choices": [_GOOD_CHOICE], "usage": {"prompt_tokens": "300", "completion_tokens": "many"}},
    "usage_negative": {"choices": [_GOOD_CHOICE], "usage": {"prompt_tokens": 300, "completion_tokens": -5}},
    "usage_huge": {"choices": [_GOOD_CHOICE], "usage": {"prompt_tokens": 300, "completion_tokens": 10**26}},
    "logprobs_nan": {
        "choices": [{**_GOOD_CHOICE, "logprobs": {"top_logprobs": [{"1": float("nan")}]}}],
        "usage": _GOOD_USAGE,
    },
    "logprobs_strings": {
        "choices": [{**_GOOD_CHOICE, "logprobs": {"top_logprobs": [{"1": "likely", "2": "-0.5"}]}}],
        "usage": _GOOD_USAGE,
    },
    "token_id_not_a_number": {
        "choices": [{**_GOOD_CHOICE, "logprobs": {"top_logprobs": [{"token_id:abc": -0.1}]}}],
        "usage": _GOOD_USAGE,
    },
    "list_body": [_GOOD_CHOICE],
    "not_json": "<html>502 Bad Gateway</html>",
}


class FakeOpenAIServer:
    """An OpenAI-compatible server on loopback whose answers a test scripts, one status at a time."""

    def __init__(self, text: str = PANDALM_OUTPUT, *, models: bool = True) -> None:
        self.text = text
        self.models = models
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        # Statuses to answer before succeeding, e.g. [429, 503]; a (status, body) pair sets the body.
        self.failures: list[int | tuple[int, str]] = []
        # Top log-probabilities of the first position (keys as the server writes them: a token's text, or
        # `token_id:N`), returned when a request asks for logprobs.
        self.top_logprobs: dict[str, float] | None = None
        # Seconds to wait before answering a prompt (by its text), to play a slow or hung server.
        self.delay: Callable[[str], float] = lambda prompt: 0.0
        # The weights behind the served name, as vLLM reports them (`root`).
        self.model_root = "/weights/judge-v1"
        # The Retry-After header of scripted failures.
        self.retry_after = "0"
        # A name of MALFORMED_ANSWERS to answer with instead of a completion, for prompts `malformed` selects.
        self.malformed: Callable[[str], str | None] = lambda prompt: None
        # Bytes of an answer that never ends well (a 200, or the status given, streamed): a hostile server.
        self.huge_answer: tuple[int, int] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> FakeOpenAIServer:
        app = web.Application()
        app.router.add_post("/v1/completions", self._completions)
        if self.models:
            app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "served-judge", "root": self.model_root, "max_model_len": 2048}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        await asyncio.sleep(self.delay(str(body.get("prompt"))))
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.failures:
            failure = self.failures.pop(0)
            status, text = failure if isinstance(failure, tuple) else (failure, "scripted failure")
            headers = {"Retry-After": self.retry_after}
            return web.json_response({"error": {"message": text}}, status=status, headers=headers)
        if self.huge_answer is not None:
            return await _stream_huge(request, *self.huge_answer)
        shape = self.malformed(str(body.get("prompt")))
        if shape is not None:
            answer = MALFORMED_ANSWERS[shape]
            return web.Response(text=answer) if isinstance(answer, str) else web.json_response(answer)
        choice: dict[str, Any] = {"index": 0, "text": self.text, "finish_reason": "stop"}
        if body.get("logprobs") and self.top_logprobs is not None:
            choice["logprobs"] = {
                "tokens": [self.text[0]],
                "token_logprobs": [-0.1],
                "top_logprobs": [self.top_logprobs],
            }
        return web.json_response({"choices": [choice], "usage": {"prompt_tokens": 300, "completion_tokens": 20}})


async def _stream_huge(request: web.Request, status: int, size: int) -> web.StreamResponse:
    """A JSON completion whose text is `size` bytes, sent in chunks without a length (as a runaway model's)."""
    response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"choices": [{"index": 0, "finish_reason": "length", "text": "')
    chunk = b"x" * 2**20
    try:
        for _ in range(size // len(chunk)):
            await response.write(chunk)
        await response.write(b'"}]}')
    except ConnectionError:
        pass  # the engine stopped reading: what it should do
    return response


class ThreadedOpenAIServer:
    """A `FakeOpenAIServer` on its own event loop in a thread, for tests that run a service in a process."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
