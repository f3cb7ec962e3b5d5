from __future__ import annotations

import pytest

from pandalm_serve.engines.vllm import VLLMEngine
from pandalm_serve.errors import ConfigurationError
from pandalm_serve.settings import Settings


async def test_batch_invariant_mode_is_refused_on_a_cpu() -> None:
    # vLLM 0.32's CPU build crashes while warming up in this mode: refuse it with a clear message.
    engine = VLLMEngine(Settings(model="/nonexistent", batch_invariant=True))
    with pytest.raises(ConfigurationError, match="batch_invariant needs a GPU"):
        await engine.start()
