"""Judge quality: live-traffic quality metrics, the sampled swap and the canary (issue 26)."""

from .canary import Canary
from .metrics import QualityMetrics
from .swap_sample import SwapSampler

__all__ = ["Canary", "QualityMetrics", "SwapSampler"]
