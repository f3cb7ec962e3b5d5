"""Any OpenAI-compatible `/v1/completions` server (e.g. vLLM replicas behind a load balancer).

PandaLM is not a chat model: it gets its raw prompt. With PandaLM's tokenizer (`--tokenizer`, or the
served model's own when it loads), the prompt is PandaLM's exact token ids, and the label
log-probabilities are asked for by token id (vLLM's `logprob_token_ids` and
`return_tokens_as_token_ids`), exactly as in process. Without one, the prompt is text, and the BOS
token and the context checks are the server's.

One shared aiohttp session, with a bounded connection pool, timeouts and retries with backoff;
aiohttp because httpx's AsyncClient was several times slower under many concurrent requests
(benchmarks/remote_http_client.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import orjson
from pydantic import ValidationError

from pandalm_client import RetryPolicy
from pandalm_client.models import Preset, PromptFormat

from ..errors import CONTEXT_ERROR_HINTS, ConfigurationError, EngineError, PromptTooLongError
from ..settings import PANDALM_7B, Settings
from .base import EnginePrompt, FirstLogprobs, Generation, Sampling, token_key
from .openai_response import (
    ERROR_BODY_BYTES,
    MODELS_BYTES,
    TOKEN_ID_PREFIX,
    CompletionLogprobs,
    CompletionUsage,
    ModelList,
    completion_limit,
    parse_completion,
    read_limited,
    read_prefix,
)
from .tokenizer import load_tokenizer

logger = logging.getLogger(__name__)

# What vLLM and the routers in front of it answer when overloaded or briefly down: every 5xx of theirs is
# transient (a replica restarting, a router without a healthy replica). The policy is the client's own.
UPSTREAM_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A health probe must answer quickly, whatever the remote server does.
_HEALTH_TIMEOUT = aiohttp.ClientTimeout(total=5)
# The session header vLLM's router reads before any other (`vllm-router --policy sticky_least_loaded` or
# `consistent_hash`). Its value is the same for every prompt of one instruction and input, so that they reach
# the replica holding their prefix in its cache; README "Scaling out" has the measurement. Others ignore it.
AFFINITY_HEADER = "X-Session-ID"


class RemoteEngine:
    name = "remote"
    dead = False  # a remote server that does not answer is not this process's death: /readyz says so
    data_parallel_size: int | None = None
    # Beam search is not part of the OpenAI completions API.
    presets: frozenset[Preset] = frozenset({"greedy"})

    def __init__(self, settings: Settings) -> None:
        assert settings.remote_url is not None
        self._settings = settings
        self._retry = RetryPolicy(max_retries=settings.remote_max_retries, retry_statuses=UPSTREAM_RETRY_STATUSES)
        self.base_url = _base_url(settings.remote_url)
        self.model_name = settings.remote_model or settings.model or ""
        self.context_length: int | None = None
        self.tokenizer: Any | None = None
        self.tokenizer_source: str | None = None
        self.prompt_format: PromptFormat = "text"  # token ids once PandaLM's tokenizer loads (start)
        # What the server reports of the model behind the name, for the cache's identity of the model.
        self.served_identity = ""
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        s = self._settings
        headers = {"Content-Type": "application/json"}
        if s.remote_api_key is not None:
            headers["Authorization"] = f"Bearer {s.remote_api_key.get_secret_value()}"
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=s.remote_max_connections),
            timeout=aiohttp.ClientTimeout(total=s.remote_timeout_s),
            headers=headers,
        )
        models = await self._models()
        if not self.model_name:
            self.model_name = models[0]["id"] if models else PANDALM_7B
        served = next((m for m in models if m.get("id") == self.model_name), None)
        if served is not None and isinstance(served.get("max_model_len"), int):
            self.context_length = served["max_model_len"]
        if served is not None:
            # Other weights restarted under the same name, or two servers serving one name, are told apart.
            self.served_identity = f"root={served.get('root') or ''},max_model_len={served.get('max_model_len') or ''}"
        await self._load_tokenizer()
        logger.info(
            "remote engine: %s at %s, prompts as %s",
            self.model_name,
            self.base_url,
            self.prompt_format,
        )

    async def _load_tokenizer(self) -> None:
        """PandaLM's tokenizer for token-id prompts: `--tokenizer`, else the served model's own if it loads."""
        s = self._settings
        if s.remote_prompt_format == "text":
            return
        source = s.tokenizer or self.model_name
        try:
            revision = None if s.tokenizer else s.revision  # the revision is the model's
            self.tokenizer = await asyncio.to_thread(load_tokenizer, source, revision)
        except ConfigurationError as exc:
            if s.tokenizer or s.remote_prompt_format == "token_ids":
                raise
            logger.warning(
                "no tokenizer for %r (%s): sending prompts as TEXT, so the BOS token and the context checks are "
                "the remote server's, not PandaLM's. Pass --tokenizer (PandaLM's folder or hub name) for exact "
                "token ids.",
                source,
                exc,
            )
            return
        self.tokenizer_source = source
        self.prompt_format = "token_ids"
        if self.context_length is None:
            self.context_length = s.max_model_len

    async def _models(self) -> list[dict[str, Any]]:
        """The server's model list, or [] when it has none (not every compatible server lists models)."""
        assert self._session is not None
        for attempt in range(self._retry.max_retries + 1):
            try:
                async with self._session.get(f"{self.base_url}/v1/models") as response:
                    if response.status == 200:
                        return _model_list(await read_limited(response, MODELS_BYTES))
                    if not self._retry.retries(response.status):
                        return []
            except (TimeoutError, aiohttp.ClientError) as exc:
                logger.warning("remote server not answering yet (%s)", type(exc).__name__)
            await asyncio.sleep(self._retry.delay(attempt))
        raise EngineError("the remote server does not answer", code="remote_unavailable")

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check_health(self) -> None:
        if self._session is None:
            raise EngineError("the remote engine is not started", code="not_ready")
        try:
            async with self._session.get(f"{self.base_url}/v1/models", timeout=_HEALTH_TIMEOUT) as response:
                await read_prefix(response, ERROR_BODY_BYTES)  # any answer at all means the server is up
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise EngineError("the remote server does not answer", code="remote_unavailable") from exc

    async def generate(self, prompt: EnginePrompt, sampling: Sampling, request_id: str) -> Generation:
        if self._session is None:
            raise EngineError("the remote engine is not started", code="not_ready")
        body = _completion_body(self.model_name, prompt, sampling)
        completion = parse_completion(await self._post("/v1/completions", body, request_id, prompt.affinity_key))
        choice, usage = completion.choices[0], completion.usage or CompletionUsage()
        asked = sampling.logprob_token_ids is not None or sampling.top_logprobs is not None
        return Generation(
            text=choice.text,
            finish_reason="length" if choice.finish_reason == "length" else "stop",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            first_logprobs=_first_logprobs(choice.logprobs, self.prompt_format) if asked else None,
        )

    async def _post(self, path: str, body: dict[str, Any], request_id: str, affinity: str) -> bytes:
        """The body of the server's 200, read up to what `max_tokens` tokens can take, after the retries."""
        assert self._session is not None
        retries = self._retry.max_retries
        headers = {"X-Request-Id": request_id, "Content-Type": "application/json"}
        if affinity:
            headers[AFFINITY_HEADER] = affinity
        # orjson: the standard library's encoder was the remote engine's largest cost of its own.
        payload = orjson.dumps(body)
        for attempt in range(retries + 1):
            last_attempt = attempt == retries
            retry_after: str | None = None
            try:
                async with self._session.post(f"{self.base_url}{path}", data=payload, headers=headers) as response:
                    if response.status == 200:
                        return await read_limited(response, completion_limit(body["max_tokens"]))
                    # The server's error text can quote the prompt: it is read, never repeated.
                    text = (await read_prefix(response, ERROR_BODY_BYTES)).decode("utf-8", "replace")
                    if not self._retry.retries(response.status):
                        raise _rejected(response.status, text)
                    problem = f"HTTP {response.status}"
                    retry_after = response.headers.get("Retry-After")
            except (TimeoutError, aiohttp.ClientError) as exc:
                problem = type(exc).__name__
            if last_attempt:
                break
            delay = self._retry.delay(attempt, retry_after)
            logger.warning("remote %s failed (%s); retry %d/%d in %.1fs", path, problem, attempt + 1, retries, delay)
            await asyncio.sleep(delay)
        raise EngineError(
            f"the remote server failed after {retries + 1} attempts: {problem}", code="remote_unavailable"
        )


def _model_list(raw: bytes) -> list[dict[str, Any]]:
    try:
        return [model.model_dump() for model in ModelList.model_validate_json(raw).data]
    except ValidationError:
        logger.warning("the remote server's model list is not an OpenAI one: ignored")
        return []


def _completion_body(model: str, prompt: EnginePrompt, sampling: Sampling) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt.text if prompt.token_ids is None else prompt.token_ids,
        "max_tokens": sampling.max_new_tokens,
        "temperature": 0.0,
        "repetition_penalty": sampling.repetition_penalty,  # a vLLM extension; others ignore it
    }
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if sampling.ignore_eos:
        body["ignore_eos"] = True  # a vLLM extension
    if sampling.output_regex is not None:
        body["structured_outputs"] = {"regex": sampling.output_regex}  # a vLLM extension
    if sampling.logprob_token_ids is not None:
        # vLLM extensions: exactly these tokens' log-probabilities, named by id rather than by text.
        body["logprobs"] = len(sampling.logprob_token_ids)
        body["logprob_token_ids"] = list(sampling.logprob_token_ids)
        body["return_tokens_as_token_ids"] = True
    elif sampling.top_logprobs is not None:
        body["logprobs"] = sampling.top_logprobs
    return body


def _first_logprobs(logprobs: CompletionLogprobs | None, prompt_format: PromptFormat) -> FirstLogprobs | None:
    """The first position's log-probabilities of a completion (validated: parse_completion): by token id (which
    vLLM writes `token_id:N`) in the `token_ids` format, by text in `text`. A server that ignored the ask for
    ids gives none."""
    top = logprobs.top_logprobs[0] if logprobs is not None and logprobs.top_logprobs else None
    if top is None:
        return None
    if prompt_format == "text":
        return dict(top)
    if not all(k.startswith(TOKEN_ID_PREFIX) for k in top):
        return None
    return {token_key(int(k.removeprefix(TOKEN_ID_PREFIX))): v for k, v in top.items()}


def _rejected(status: int, text: str) -> Exception:
    """The error for a refusal, by its status and the server's error type: never its text, which can quote
    the prompt."""
    if status == 400 and any(hint in text.lower() for hint in CONTEXT_ERROR_HINTS):
        return PromptTooLongError(
            "the remote server rejected the prompt as too long for its context", details={"remote_status": status}
        )
    kind = _error_type(text)
    return EngineError(
        f"the remote server rejected the request (HTTP {status}{f', {kind}' if kind else ''})",
        code="remote_rejected",
        details={"remote_status": status, "remote_error_type": kind},
    )


def _error_type(text: str) -> str | None:
    """The `type` of an OpenAI-style error body, when it is a short identifier (`NotFoundError`)."""
    try:
        kind = json.loads(text)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        return None
    return kind if isinstance(kind, str) and len(kind) <= 64 and kind.replace("_", "").isalnum() else None


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url
