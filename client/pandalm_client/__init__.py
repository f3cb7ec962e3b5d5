"""Client, command line and wire schemas of the PandaLM judging service.

from pandalm_client import PandaLMClient

with PandaLMClient("http://judge:8000", api_key="...") as client:
    result = client.compare("Give the capital of France.", "Paris.", "Lyon.", swap=True)
    results = client.batch(pairs, mode="verdict")  # any number of pairs, results in order
    jury = client.compare("...", "...", "...", judge=["pandalm", "prometheus", "judgelm"])
    graded = client.grade("...", "a response", "Is it correct?", judge="prometheus")  # score and feedback
"""

from pathlib import Path

from ._base import DEFAULT_TIMEOUT, DEFAULT_URL, BatchInput, JudgeChoice, Progress
from ._client import AsyncPandaLMClient, PandaLMClient
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PandaLMError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from ._retry import RetryPolicy
from .models import (
    BatchRequest,
    BatchResult,
    BatchSummary,
    CompareRequest,
    CompareResult,
    ErrorBody,
    ErrorResponse,
    GradeRequest,
    GradeResult,
    InfoResponse,
    InvalidItem,
    JudgeInfo,
    JudgeOptions,
    JurorResult,
    LabelProbabilities,
    OrderResult,
    ResultWarning,
    ScoreProbabilities,
    Usage,
)

# The one place the version is written: both distributions (pandalm-client, pandalm-serve) read it.
__version__ = (Path(__file__).parent / "VERSION").read_text().strip()

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncPandaLMClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchInput",
    "BatchRequest",
    "BatchResult",
    "BatchSummary",
    "CompareRequest",
    "CompareResult",
    "ErrorBody",
    "ErrorResponse",
    "GradeRequest",
    "GradeResult",
    "InfoResponse",
    "InternalServerError",
    "InvalidItem",
    "JudgeChoice",
    "JudgeInfo",
    "JudgeOptions",
    "JurorResult",
    "LabelProbabilities",
    "NotFoundError",
    "OrderResult",
    "PandaLMClient",
    "PandaLMError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Progress",
    "RateLimitError",
    "ResultWarning",
    "RetryPolicy",
    "ScoreProbabilities",
    "ServiceUnavailableError",
    "UnprocessableEntityError",
    "Usage",
    "__version__",
]
