"""Client and wire schemas of the PandaLM judging service."""

from pathlib import Path

from .models import (
    BatchRequest,
    BatchResult,
    BatchSummary,
    CompareRequest,
    CompareResult,
    ErrorBody,
    ErrorResponse,
    InfoResponse,
    InvalidItem,
    JudgeOptions,
    LabelProbabilities,
    OrderResult,
    ResultWarning,
    Usage,
)

# The one place the version is written: both distributions (pandalm-client, pandalm-serve) read it.
__version__ = (Path(__file__).parent / "VERSION").read_text().strip()

__all__ = [
    "BatchRequest",
    "BatchResult",
    "BatchSummary",
    "CompareRequest",
    "CompareResult",
    "ErrorBody",
    "ErrorResponse",
    "InfoResponse",
    "InvalidItem",
    "JudgeOptions",
    "LabelProbabilities",
    "OrderResult",
    "ResultWarning",
    "Usage",
    "__version__",
]
