"""The served judge as the command line sees it: /info, with a warning when it is the random-weight demo."""

from __future__ import annotations

import sys

from .._client import PandaLMClient
from ..models import InfoResponse


def judge_info(client: PandaLMClient) -> InfoResponse:
    """The service's /info; every command that judges calls it first, so that a demo judge never goes unnoticed."""
    info = client.info()
    if info.demo:
        print(
            f"pandalm: warning: {client.base_url} serves the random-weight demo judge ({info.model}): "
            "its verdicts are noise, not judgements",
            file=sys.stderr,
        )
    return info
