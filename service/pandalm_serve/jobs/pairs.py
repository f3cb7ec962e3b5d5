"""PandaLM's judging cut into the steps of a batch job: a pair -> one vLLM request per order -> a `CompareResult`.

The steps are the service's own (judge/): the prompt as PandaLM's token ids with its BOS token, fitted
to the context; the labels' token ids for the probabilities; the parser; swap's reconciliation. They are
plain functions on rows (dicts) so that Ray Data can run them on its workers and the tests without Ray:

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
    LabelProbabilities,
    Mode,
    Order,
    OrderResult,
    ResultWarning,
    Usage,
    Verdict,
    error_details,
)

from ..demo import profile_of
from ..engines.base import FirstLogprobs, token_key
from ..engines.tokenizer import load_tokenizer
from ..errors import ServiceError
from ..judge.injection import screen
from ..judge.labels import token_labels
from ..judge.prompt import TEMPLATE_VERSION
from ..judge.reading import merged_warnings, read_order, total_tokens
from ..judge.swap import both_orders, order_result
from ..judge.tokens import PromptEncoder, fit_prompt

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
    def orders(self) -> tuple[Order, ...]:
        return _ORDERS if self.swap else _ORDERS[:1]


class OrderState(BaseModel):
    """One order of one pair, as it travels through the job: before vLLM, then with its judgement."""

    id: str | None = None
    order: Order = "original"
    orders: int = 1  # rows this pair has in the job: 2 with swap, 1 without, 1 for a pair that failed early
    warnings: list[ResultWarning] = []
    error: ErrorBody | None = None
    # Set by `PairJudging.read`.
    raw: str | None = None
    verdict: Verdict | None = None  # in the request's positions
    reason: str | None = None
    reference: str | None = None
    probabilities: LabelProbabilities | None = None  # in the request's positions
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class PairJudging:
    """The steps that need PandaLM's tokenizer: building each order's prompt, and reading vLLM's output."""

    def __init__(self, options: JobOptions, tokenizer: Any) -> None:
        self.options = options
        self.encoder = PromptEncoder(tokenizer, options.bos_token)
        self.labels = token_labels(self.encoder)
        self.eos_id: int | None = getattr(tokenizer, "eos_token_id", None)
        verdict_mode = options.mode == "verdict"
        # In verdict mode PandaLM stops after its label, as in the service (judge/judge.py).
        self.max_tokens = self.labels.max_length if verdict_mode else options.max_new_tokens
        self.stop = ["\n"] if verdict_mode else []
        self.sampling_params: dict[str, Any] = {
            "temperature": 0.0,
            "repetition_penalty": options.repetition_penalty,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            # Exactly these tokens' log-probabilities (the engine runs with processed_logprobs), as in process.
            "logprob_token_ids": list(self.labels.all_ids),
        }
        output_regex = profile_of(options.model, options.tokenizer).output_regex
        if output_regex is not None:  # the demo judge: constrained to PandaLM's format
            self.sampling_params["structured_outputs"] = {"regex": output_regex}

    def prepare(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows vLLM gets for one pair: one per order, or one that carries the pair's error.

        A pair that cannot be judged (not a valid request, too long for the context) still goes through
        vLLM, as a one-token prompt whose output is ignored: every pair then keeps its place in one stream
        of rows, which gives each result its index without a shuffle.
        """
        request_id = _request_id(row.get("id"))
        try:
            request = _request(row)
            first = screen("response1", request.response1, neutralize=self.options.neutralize_headers)
            second = screen("response2", request.response2, neutralize=self.options.neutralize_headers)
            rows = []
            for order in self.options.orders:
                names = ("response1", "response2") if order == "original" else ("response2", "response1")
                pair = (first.text, second.text) if order == "original" else (second.text, first.text)
                fitted = fit_prompt(
                    self.encoder,
                    request.instruction,
                    request.input,
                    *pair,
                    context_length=self.options.max_model_len,
                    max_new_tokens=self.max_tokens,
                    truncate=self.options.truncate,
                    names=names,
                )
                # The screening's warnings go with the original order, as in the service.
                screened = [*first.warnings, *second.warnings] if order == "original" else []
                warnings = [*screened, *fitted.warnings]
                state = OrderState(id=request_id, order=order, orders=len(self.options.orders), warnings=warnings)
                rows.append(self._row(fitted.token_ids, self.sampling_params, state))
            return rows
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
        `num_input_tokens`, `logprobs`): the same steps as the service's judge."""
        state = OrderState.model_validate_json(row[STATE_COLUMN])
        if state.error is not None:
            return {STATE_COLUMN: state.model_dump_json()}
        text = str(row["generated_text"])
        tokens = [int(t) for t in row["generated_tokens"]]
        finish = self._finish_reason(tokens)
        reading = read_order(
            text,
            finish,
            state.order,
            self.labels.read(_first_logprobs(row.get("logprobs"))),
            verdict_mode=self.options.mode == "verdict",
            max_new_tokens=self.max_tokens,
        )
        judged = state.model_copy(
            update={
                "raw": text,
                "verdict": reading.verdict,
                "reason": reading.parsed.reason,
                "reference": reading.parsed.reference,
                "probabilities": reading.probabilities,
                "finish_reason": finish,
                "prompt_tokens": int(row["num_input_tokens"]),
                "completion_tokens": len(tokens),
                "warnings": [*state.warnings, *reading.warnings],
            }
        )
        return {STATE_COLUMN: judged.model_dump_json()}

    def _finish_reason(self, tokens: list[int]) -> FinishReason:
        """vLLM's finish reason, which Ray Data's output rows do not carry: `length` when the generation
        reached `max_tokens` without ending on the end of sequence or on a stop string."""
        if len(tokens) < self.max_tokens or (tokens and tokens[-1] == self.eos_id):
            return "stop"
        if self.stop and any(stop in self.encoder.decode(tokens[-1:]) for stop in self.stop):
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
    first = orders[0]
    common: dict[str, Any] = {"id": first.id, "index": index, "model": options.model}
    common["template_version"] = TEMPLATE_VERSION
    failed = next((o for o in orders if o.error is not None), None)
    if failed is not None:
        return CompareResult(**common, status="error", error=failed.error)
    consistent: bool | None = None
    order_results: list[OrderResult] | None = None
    if options.swap:
        order_results = [
            order_result(o.order, o.verdict, o.raw or "", o.probabilities, o.finish_reason or "stop") for o in orders
        ]
        both = both_orders(order_results)
        verdict, consistent, probabilities = both.verdict, both.consistent, both.probabilities
    else:
        verdict, probabilities = first.verdict, first.probabilities
    return CompareResult(
        **common,
        verdict=verdict,
        status="ok" if verdict is not None else "unparsed",
        reason=first.reason,
        reference=first.reference,
        raw=first.raw,
        preset="greedy",
        mode=options.mode,
        probabilities=probabilities,
        consistent=consistent,
        orders=order_results,
        finish_reason=first.finish_reason,
        usage=Usage(
            prompt_tokens=total_tokens(o.prompt_tokens for o in orders),
            completion_tokens=total_tokens(o.completion_tokens for o in orders),
        ),
        warnings=merged_warnings(o.warnings for o in orders),
    )


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
