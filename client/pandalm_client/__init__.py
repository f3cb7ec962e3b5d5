"""Client and wire schemas of the PandaLM judging service."""

from .models import (
    BatchRequest,
    BatchResult,
    BatchSummary,
    CompareRequest,
    CompareResult,
    ErrorBody,
    ErrorResponse,
    InfoResponse,
    JudgeOptions,
    LabelProbabilities,
    OrderResult,
    ResultWarning,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "BatchRequest",
    "BatchResult",
    "BatchSummary",
    "CompareRequest",
    "CompareResult",
    "ErrorBody",
    "ErrorResponse",
    "InfoResponse",
    "JudgeOptions",
    "LabelProbabilities",
    "OrderResult",
    "ResultWarning",
    "Usage",
    "__version__",
]
