"""The wire schemas of the PandaLM judging API: the one definition both the server and the client use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

Verdict = Literal["response1", "response2", "tie"]
Status = Literal["ok", "unparsed", "error"]
Preset = Literal["greedy", "beam"]
FinishReason = Literal["stop", "length"]
Mode = Literal["full", "verdict"]
# What a judge can do: compare two responses (/compare, /batch) or grade one on a scale (/grade).
JudgeMode = Literal["pairwise", "absolute"]
# The judge families the service knows.
Family = Literal["pandalm", "prometheus2", "judgelm", "mtbench"]
# The longest judge name, and how many judges a jury may have.
MAX_JUDGE_NAME_CHARS = 64
MAX_JURY = 9
JudgeName = Annotated[str, Field(min_length=1, max_length=MAX_JUDGE_NAME_CHARS, pattern=r"^[A-Za-z0-9_.-]+$")]
Order = Literal["original", "swapped"]
# How prompts reach the engine: PandaLM's exact token ids, or text the engine tokenizes itself.
PromptFormat = Literal["token_ids", "text"]

# Every error code the service answers with. Each has one HTTP status: see the README's error table
# (checked against the server's table by a test).
ErrorCode = Literal[
    "invalid_request",
    "invalid_option",
    "prompt_too_long",
    "batch_too_large",
    "payload_too_large",
    "request_timeout",
    "unsupported_media_type",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "overloaded",
    "deadline_exceeded",
    "shutting_down",
    "not_ready",
    "engine_failed",
    "engine_dead",
    "engine_error",
    "remote_rejected",
    "remote_bad_response",
    "remote_unavailable",
    "cache_unavailable",
    "internal_error",
]

WarningCode = Literal[
    "section_header",
    "judge_directive",
    "headers_neutralized",
    "input_truncated",
    "output_cut_off",
    "no_probabilities",
    "mode_unavailable",
    "field_unused",
    "juror_failed",
]


class _Strict(BaseModel):
    # Unknown fields are an error, not silently dropped: a misspelt option must not be ignored.
    model_config = ConfigDict(extra="forbid")


class JudgeOptions(_Strict):
    """How to judge. Unset fields fall back to the batch's options, then to the server's settings."""

    preset: Preset | None = Field(
        None,
        description="Decoding preset: `greedy` (deterministic, repetition penalty 1.2) or `beam` "
        "(vLLM beam search, as PandaLM's reference decoded; no repetition penalty).",
    )
    max_new_tokens: int | None = Field(
        None, ge=1, description="Most tokens the judge may generate; at most the server's limit."
    )
    truncate: StrictBool | None = Field(
        None,
        description="When the prompt is too long for the model, shorten the two responses to fit "
        "(and say so in `warnings`) instead of failing the item.",
    )
    mode: Mode | None = Field(
        None,
        description="`full`: label, reason and reference; `verdict`: the label alone, generating as few "
        "tokens as possible (PandaLM writes its label first).",
    )
    swap: StrictBool | None = Field(
        None,
        description="Judge both orders, (1, 2) and (2, 1), concurrently and reconcile them: agreeing orders "
        "give the verdict, disagreeing ones a tie marked inconsistent. Cancels PandaLM's position bias.",
    )
    cache: StrictBool | None = Field(
        None,
        description="Give a verdict remembered from an identical earlier judgement (same judge, prompt and "
        "settings) instead of judging again; `false` always judges.",
    )
    neutralize_headers: StrictBool | None = Field(
        None,
        description="Defuse PandaLM's own section headers (`### Evaluation:` and the like) found inside the "
        "responses before judging. Changes the prompt PandaLM was trained on, so it is off by default.",
    )


# The longest `id` a pair may carry: every result echoes it.
MAX_ID_CHARS = 256


class CompareRequest(_Strict):
    """One pair of responses to one instruction."""

    instruction: str = Field(description="The task both responses answer, used exactly as given.")
    input: str = Field("", description="Optional context for the task; empty when there is none.")
    response1: str = Field(description="The first response; may be empty.")
    response2: str = Field(description="The second response; may be empty.")
    id: str | None = Field(
        None, max_length=MAX_ID_CHARS, description="Your identifier for this pair, echoed in the result."
    )
    options: JudgeOptions | None = None
    judge: JudgeName | list[JudgeName] | None = Field(
        None,
        description="The judge (a name from /info's `judges`), or a list of 1 to 9 distinct names for a jury "
        "that returns their majority verdict; default: the batch's judge, else the server's first.",
    )
    rubric: str | None = Field(
        None, description="The criterion to judge by, for families that take one (prometheus2); else a warning."
    )
    reference: str | None = Field(
        None,
        description="A reference answer, for families that take one (prometheus2, judgelm, mtbench); else a warning.",
    )

    @field_validator("judge")
    @classmethod
    def _jury_size(cls, judge: str | list[str] | None) -> str | list[str] | None:
        if isinstance(judge, list) and not (1 <= len(judge) <= MAX_JURY and len(set(judge)) == len(judge)):
            raise ValueError(f"a jury is 1 to {MAX_JURY} distinct judge names")
        return judge


def error_details(errors: Sequence[ErrorDetails]) -> list[dict[str, Any]]:
    """Pydantic's validation errors as the API reports them: locations and messages, never the input,
    which may be large or confidential."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


class InvalidItem(BaseModel):
    """A batch item that is not a valid compare request: it becomes that item's error result."""

    id: str | None = Field(None, description="The item's `id`, when it has a valid one.")
    details: list[dict[str, Any]]


def _batch_item(value: Any) -> CompareRequest | InvalidItem:
    # Each item is validated on its own, so one bad item fails alone instead of failing the batch.
    if isinstance(value, CompareRequest | InvalidItem):
        return value
    try:
        return CompareRequest.model_validate(value)
    except ValidationError as exc:
        item_id = value.get("id") if isinstance(value, dict) else None
        valid_id = isinstance(item_id, str) and len(item_id) <= MAX_ID_CHARS  # an id is echoed: never a huge one
        return InvalidItem(id=item_id if valid_id else None, details=error_details(exc.errors()))


BatchItem = Annotated[
    CompareRequest | InvalidItem,
    PlainValidator(_batch_item, json_schema_input_type=CompareRequest),
    PlainSerializer(lambda item: item.model_dump(mode="json", exclude_none=True), return_type=Any),
]


class BatchRequest(_Strict):
    """Many pairs judged concurrently. Batch `options` are the defaults of every item's own.

    The server parses its body with this model: an item that is not a valid `CompareRequest` does not
    fail the request; it becomes an `InvalidItem`, judged as that item's error result.
    """

    items: list[BatchItem] = Field(min_length=1)
    options: JudgeOptions | None = None
    judge: JudgeName | list[JudgeName] | None = Field(
        None, description="The judge (or jury) of every item that names none; default: the server's first."
    )


class Usage(BaseModel):
    prompt_tokens: int | None = Field(None, description="Tokens in the prompt, where the engine reports them.")
    completion_tokens: int | None = Field(None, description="Tokens the judge generated.")


class LabelProbabilities(BaseModel):
    """Probability of each label at the label position, normalised over the three labels."""

    response1: float
    response2: float
    tie: float


class ResultWarning(BaseModel):
    code: WarningCode = Field(description="What the warning is about; see the README's list of warnings.")
    message: str


class OrderResult(BaseModel):
    """One of the two orders judged with `swap`, its labels mapped back to the request's positions."""

    order: Order = Field(description="`original`: (response1, response2); `swapped`: (response2, response1).")
    verdict: Verdict | None = Field(description="This order's verdict, in the request's positions.")
    status: Literal["ok", "unparsed"]
    raw: str
    probabilities: LabelProbabilities | None = None
    finish_reason: FinishReason


class ErrorBody(BaseModel):
    code: ErrorCode = Field(description="Stable, machine-readable error code, for example `prompt_too_long`.")
    message: str = Field(description="What went wrong and what to do about it.")
    details: Any = Field(None, description="Structured context: validation errors, token counts, ...")


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response."""

    error: ErrorBody


class JurorResult(BaseModel):
    """One jury member's judgement of a pair."""

    judge: str
    verdict: Verdict | None = None
    status: Status
    reason: str | None = None
    consistent: bool | None = None
    error: ErrorBody | None = None


class CompareResult(BaseModel):
    """The judgement of one pair."""

    id: str | None = Field(None, description="The request's `id`, echoed.")
    index: int | None = Field(None, description="Position of the item in its batch (batch results only).")
    verdict: Verdict | None = Field(None, description="The better response, or `tie`; null unless `status` is `ok`.")
    status: Status = Field(
        description="`ok`: the output parsed; `unparsed`: the judge wrote something that is not "
        "PandaLM's format (see `raw`); `error`: the item was not judged (see `error`)."
    )
    reason: str | None = Field(None, description="The judge's explanation (`### Reason:`).")
    reference: str | None = Field(None, description="The judge's reference answer (`### Reference:`).")
    raw: str | None = Field(None, description="The judge's output, unmodified.")
    model: str | None = Field(None, description="The model that judged.")
    template_version: str | None = Field(None, description="Version of the prompt template used.")
    preset: Preset | None = Field(None, description="The decoding preset used.")
    mode: Mode | None = Field(None, description="`full` or `verdict`.")
    probabilities: LabelProbabilities | None = Field(
        None,
        description="Probability of each label from the judge's log-probabilities (averaged over both orders "
        "with `swap`); null when the engine cannot give them (see `warnings`).",
    )
    consistent: bool | None = Field(
        None, description="With `swap`: whether both orders agreed; null without `swap` or when unparsed."
    )
    orders: list[OrderResult] | None = Field(None, description="With `swap`: the two orders, each on its own.")
    finish_reason: FinishReason | None = Field(
        None, description="`length` when the generation was cut off at `max_new_tokens`."
    )
    usage: Usage = Field(default_factory=Usage)
    cached: bool = Field(False, description="True when every order came from the verdict cache: no engine call.")
    latency_ms: float | None = Field(None, description="Time spent judging this item.")
    warnings: list[ResultWarning] = Field(default_factory=list, description="Anything the caller should know.")
    error: ErrorBody | None = Field(None, description="Why the item was not judged, when `status` is `error`.")
    judge: str | list[str] | None = Field(
        None, description="The judge that judged (its name), or the jury's names in the request's order."
    )
    scores: list[float] | None = Field(
        None, description="The two scores a scoring judge (judgelm) gave, response1's first."
    )
    jury: list[JurorResult] | None = Field(None, description="With a jury: each judge's own result, in order.")
    agreement: float | None = Field(
        None,
        description="With a jury: the share of its judges whose verdict is the majority's (null without one).",
    )

    @property
    def outcome(self) -> str:
        """The verdict when the item was judged, else its status: the key the batch summary counts under."""
        return self.verdict if self.status == "ok" and self.verdict else self.status


class GradeRequest(_Strict):
    """One response to grade on the judge's absolute scale."""

    instruction: str = Field(description="The task the response answers, used exactly as given.")
    input: str = Field("", description="Optional context for the task; empty when there is none.")
    response: str = Field(description="The response to grade; may be empty.")
    rubric: str = Field(min_length=1, description="The criterion and what each score means.")
    reference: str | None = Field(None, description="A reference answer that would get the top score.")
    id: str | None = Field(None, max_length=MAX_ID_CHARS, description="Your identifier, echoed in the result.")
    judge: JudgeName | None = Field(None, description="The judge; default: the server's first that grades.")
    options: JudgeOptions | None = None


class ScoreProbabilities(BaseModel):
    """Probability of each score on the scale, where the judge's log-probabilities give them."""

    scores: dict[str, float]


class GradeResult(BaseModel):
    """The grade of one response."""

    id: str | None = None
    status: Status = Field(description="`ok`, `unparsed` (no score on the scale: see `raw`) or `error`.")
    score: int | None = Field(None, description="The score on the judge's scale; null unless `status` is `ok`.")
    scale: list[int] | None = Field(None, description="The scale's lowest and highest score.")
    feedback: str | None = Field(None, description="The judge's feedback.")
    raw: str | None = None
    judge: str | None = None
    model: str | None = None
    template_version: str | None = None
    finish_reason: FinishReason | None = None
    usage: Usage = Field(default_factory=Usage)
    cached: bool = False
    latency_ms: float | None = None
    warnings: list[ResultWarning] = Field(default_factory=list)
    error: ErrorBody | None = None


class BatchSummary(BaseModel):
    response1: int = 0
    response2: int = 0
    tie: int = 0
    unparsed: int = 0
    error: int = 0
    inconsistent: int = Field(0, description="Items judged with `swap` whose two orders disagreed (counted as ties).")
    interrupted: int = Field(
        0, description="Items not judged because the service was stopping (counted as errors): retry them."
    )


class BatchResult(BaseModel):
    results: list[CompareResult] = Field(description="One result per item, in the order of `items`.")
    summary: BatchSummary


class StreamSummary(BaseModel):
    """Last line of an NDJSON batch stream; every line before it is a `CompareResult` with its `index`."""

    summary: BatchSummary


class DecodingInfo(BaseModel):
    options: JudgeOptions = Field(description="The server's default for every option.")
    repetition_penalty: float
    beam_width: int
    batch_invariant: bool


class LimitsInfo(BaseModel):
    context_length: int | None = Field(description="Prompt plus generated tokens the model can take.")
    max_new_tokens: int = Field(description="Largest `max_new_tokens` a request may ask for.")
    max_batch_items: int = Field(description="Largest number of items in one /batch.")


class JudgeInfo(BaseModel):
    """One judge this service serves."""

    name: str
    family: Family
    model: str
    demo: bool = Field(description="True for a random-weight demo judge: its verdicts mean nothing.")
    modes: list[JudgeMode] = Field(description="`pairwise` (/compare, /batch) and/or `absolute` (/grade).")
    engine: str
    template_version: str
    ready: bool


class InfoResponse(BaseModel):
    service_version: str
    engine: str
    model: str
    demo: bool = Field(description="True when serving the random-weight demo judge: its verdicts mean nothing.")
    template_version: str
    prompt_format: PromptFormat | None = Field(
        description="`token_ids`: the service tokenizes PandaLM's prompt itself (its BOS token, context checks "
        "and truncation); `text`: the remote server tokenizes it; null until the engine has started."
    )
    tokenizer: str | None = Field(description="Where the service's tokenizer came from; null in `text` format.")
    bos_token: str | None = Field(
        description="Token the prompt starts with (PandaLM was trained with `</s>`); null: the tokenizer's own, "
        "or the remote server's in `text` format."
    )
    data_parallel_size: int | None = Field(
        description="vLLM engines judging in this process (one per GPU); null with the remote engine."
    )
    decoding: DecodingInfo
    limits: LimitsInfo
    ready: bool
    judges: list[JudgeInfo] = Field(
        default_factory=list,
        description="Every judge served, the default (the first) first; `engine`, `model` "
        "and the fields above describe the first.",
    )
