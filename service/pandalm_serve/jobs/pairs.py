"""PandaLM's judging cut into the steps of a batch job: a pair -> one vLLM request per order -> a `CompareResult`.

The steps are the service's own per-order pipeline (judge/pipeline.py): the prompt as PandaLM's token ids with
its BOS token, fitted to the context; the labels' token ids for the probabilities; the reading; swap's
reconciliation and the result. Only who runs the engine differs: here Ray Data's vLLM stage, between `prepare`
and `read`. They are plain functions on rows (dicts) so that Ray Data can run them on its workers and the tests
without Ray:

1. `prepare(options, row)`: the rows vLLM gets, one per order, each with `tokenized_prompt`,
   `sampling_params` and `pandalm`, the state of that order as JSON (`OrderState`).
2. `read(options, row)`: vLLM's output row back to the order's judgement (`pandalm` again).
3. `combine(rows, index, options)`, on the driver: the orders of one pair into the result `/batch` gives.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from pandalm_client.models import (
    CompareRequest,
    CompareResult,
    ErrorBody,
    FinishReason,
    Mode,
    Order,
    ResultWarning,
    error_details,
)

from ..demo import profile_of
from ..engines.base import FirstLogprobs, Generation, token_key
from ..engines.tokenizer import load_tokenizer
from ..engines.vllm import vllm_sampling_params
from ..errors import ServiceError
from ..families.pandalm import PANDALM
from ..judge.labels import token_labels
from ..judge.options import ResolvedOptions
from ..judge.pipeline import Decoding, OrderPipeline, assemble, error_result
from ..judge.reading import OrderJudgement
from ..judge.tokens import PromptEncoder, TokenPrompts

# The column carrying each order's state through the job, as JSON (one string: no schema for Arrow to infer).
STATE_COLUMN = "pandalm"
# What Ray Data's LLM processor sets on a row vLLM failed on (with `should_continue_on_error`).
INFERENCE_ERROR_COLUMN = "__inference_error__"
_REQUEST_FIELDS = ("instruction", "input", "response1", "response2")
_ORDERS: tuple[Order, ...] = ("original", "swapped")


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Everything that decides a job's verdicts: the model, its tokenizer, and one set of options for every pair.

    The options mean what they mean in the service (README, "Options"), with the greedy preset.
    """

    model: str
    tokenizer: str | None = None
    revision: str | None = None
    bos_token: str | None = "</s>"
    max_model_len: int = 2048
    mode: Mode = "full"
    max_new_tokens: int = 512
    repetition_penalty: float = 1.2
    truncate: bool = False
    swap: bool = False
    neutralize_headers: bool = False

    @property
    def resolved(self) -> ResolvedOptions:
        """The options as the service's judge resolves them: every pair's."""
        return ResolvedOptions(
            preset="greedy",
            max_new_tokens=self.max_new_tokens,
            truncate=self.truncate,
            mode=self.mode,
            swap=self.swap,
            cache=False,
            neutralize_headers=self.neutralize_headers,
        )


class OrderState(BaseModel):
    """One order of one pair as it travels through the job: its plan's warnings before vLLM, its judgement after
    (or the pair's error)."""

    id: str | None = None
    order: Order = "original"
    orders: int = 1  # rows this pair has in the job: 2 with swap, 1 without, 1 for a pair that failed early
    warnings: list[ResultWarning] = []
    error: ErrorBody | None = None
    judgement: OrderJudgement | None = None  # set by `PairJudging.read`


class PairJudging:
    """The service's per-order pipeline (judge/pipeline.py) with PandaLM's tokenizer, cut into the job's steps."""

    def __init__(self, options: JobOptions, tokenizer: Any) -> None:
        self.options = options
        self.resolved = options.resolved
        self.encoder = PromptEncoder(tokenizer, options.bos_token)
        self.labels = labels = token_labels(self.encoder)
        output_regex = profile_of(options.model, options.tokenizer).output_regex  # the demo judge's format
        decoding = Decoding(options.repetition_penalty, beam_width=1, output_regex=output_regex)
        self.pipeline = OrderPipeline(TokenPrompts(self.encoder, options.max_model_len), labels, decoding)
        self.sampling = self.pipeline.sampling(self.resolved)
        self.sampling_params = vllm_sampling_params(self.sampling)
        self.eos_id: int | None = getattr(tokenizer, "eos_token_id", None)

    def prepare(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows vLLM gets for one pair: one per order, or one that carries the pair's error.

        A pair that cannot be judged (not a valid request, too long for the context) still goes through
        vLLM, as a one-token prompt whose output is ignored: every pair then keeps its place in one stream
        of rows, which gives each result its index without a shuffle.
        """
        request_id = _request_id(row.get("id"))
        try:
            planned = self.pipeline.plan(_request(row), self.resolved)
            return [
                self._row(
                    p.prompt.token_ids or [],
                    self.sampling_params,
                    OrderState(id=request_id, order=p.order, orders=len(planned), warnings=p.warnings),
                )
                for p in planned
            ]
        except ServiceError as exc:
            error = exc.body()
        except ValidationError as exc:
            error = ErrorBody(
                code="invalid_request",
                message="this item is not a valid compare request; see details",
                details=error_details(exc.errors()),
            )
        placeholder = {**self.sampling_params, "max_tokens": 1}
        ids = self.encoder.encode("") or [self.eos_id or 0]
        return [self._row(ids, placeholder, OrderState(id=request_id, error=error))]

    @staticmethod
    def _row(token_ids: list[int], sampling_params: dict[str, Any], state: OrderState) -> dict[str, Any]:
        return {
            "tokenized_prompt": token_ids,
            "sampling_params": sampling_params,
            STATE_COLUMN: state.model_dump_json(),
        }

    def read(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One order's judgement from Ray Data's vLLM output row (`generated_text`, `generated_tokens`,
        `num_input_tokens`, `logprobs`): the same reading as the service's judge."""
        state = OrderState.model_validate_json(row[STATE_COLUMN])
        if state.error is not None:
            return {STATE_COLUMN: state.model_dump_json()}
        tokens = [int(t) for t in row["generated_tokens"]]
        generation = Generation(
            text=str(row["generated_text"]),
            finish_reason=self._finish_reason(tokens),
            prompt_tokens=int(row["num_input_tokens"]),
            completion_tokens=len(tokens),
            first_logprobs=_first_logprobs(row.get("logprobs")),
        )
        judgement = self.pipeline.read(self.resolved, state.order, state.warnings, generation)
        return {STATE_COLUMN: state.model_copy(update={"judgement": judgement}).model_dump_json()}

    def _finish_reason(self, tokens: list[int]) -> FinishReason:
        """vLLM's finish reason, which Ray Data's output rows do not carry: `length` when the generation
        reached `max_tokens` without ending on the end of sequence or on a stop string."""
        if len(tokens) < self.sampling.max_new_tokens or (tokens and tokens[-1] == self.eos_id):
            return "stop"
        if any(stop in self.encoder.decode(tokens[-1:]) for stop in self.sampling.stop):
            return "stop"
        return "length"


# Ray Data's workers run these, by reference to this module (never to `__main__`, which they cannot import).


@functools.lru_cache(maxsize=4)
def judging(options: JobOptions) -> PairJudging:
    """PandaLM's prompts and labels with its tokenizer, loaded once per worker process."""
    return PairJudging(options, load_tokenizer(options.tokenizer or options.model, options.revision))


def prepare(options: JobOptions, row: dict[str, Any]) -> list[dict[str, Any]]:
    return judging(options).prepare(row)


def read(options: JobOptions, row: dict[str, Any]) -> dict[str, Any]:
    return judging(options).read(row)


def failed_order(row: Mapping[str, Any]) -> dict[str, Any]:
    """The order of a row vLLM failed on (Ray Data's `__inference_error__`), as an `engine_error`."""
    state = OrderState.model_validate_json(row[STATE_COLUMN])
    error = ErrorBody(code="engine_error", message="vLLM failed to generate for this pair; see the job's log")
    return {STATE_COLUMN: state.model_copy(update={"error": error}).model_dump_json()}


def combine(rows: Sequence[Mapping[str, Any]], index: int, options: JobOptions) -> CompareResult:
    """The result of one pair from its orders' rows, shaped as the service's `/batch` gives it."""
    orders = [OrderState.model_validate_json(row[STATE_COLUMN]) for row in rows]
    error = next((o.error for o in orders if o.error is not None), None)
    if error is not None:
        return error_result(orders[0].id, index, error, options.model, judge=PANDALM.name)
    judged = [o.judgement for o in orders if o.judgement is not None]
    return assemble(orders[0].id, index, options.resolved, judged, options.model, judge=PANDALM.name)


def pair_rows(rows: Iterable[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    """Group a stream of order rows, in the job's order, into the rows of each pair."""
    pending: list[Mapping[str, Any]] = []
    expected: tuple[Order, ...] = ()
    for row in rows:
        state = OrderState.model_validate_json(row[STATE_COLUMN])
        if not pending:
            expected = _ORDERS[: state.orders]
        if state.order != expected[len(pending)]:
            raise RuntimeError("the job's rows came out of order: a pair's orders are not next to each other")
        pending.append(row)
        if len(pending) == len(expected):
            yield pending
            pending = []
    if pending:
        raise RuntimeError("the job's output ends in the middle of a pair: its rows came out of order")


def _request(row: Mapping[str, Any]) -> CompareRequest:
    if _present(row.get("options")):
        raise ServiceError(
            "the batch job takes one set of options for every pair, from its flags; this pair has its own",
            code="invalid_option",
        )
    fields = {name: row[name] for name in _REQUEST_FIELDS if _present(row.get(name))}
    return CompareRequest(**fields)


def _request_id(value: Any) -> str | None:
    return str(value) if _present(value) else None


def _present(value: Any) -> bool:
    """Whether a column has a value in this row: JSONL read through pandas fills a missing one with NaN."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _first_logprobs(logprobs: Any) -> FirstLogprobs | None:
    """The first generated position's log-probabilities by token id, from Ray Data's
    `[{token_id: {"logprob", "rank", "decoded_token"}}, ...]` (keys may come back as strings)."""
    if logprobs is None or len(logprobs) == 0 or not logprobs[0]:
        return None
    first: dict[str, float] = {}
    for token_id, entry in logprobs[0].items():
        if entry is not None:
            first[token_key(int(token_id))] = float(entry["logprob"] if isinstance(entry, Mapping) else entry)
    return first or None
