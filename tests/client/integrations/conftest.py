"""The real service for the adapters' tests: under uvicorn on loopback, with an API key, judging with a
scripted engine whose preference is known (the longer response wins, equal lengths tie)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pandalm_serve.app import create_app
from pandalm_serve.settings import Settings
from tests.fakes import FakeEngine, prefers_longer
from tests.support import serving
from tests.system_tools import ROOT

API_KEY = "integrations-test-key"
# Its sitecustomize.py refuses (and records) any connection a Python process makes beyond loopback.
OFFLINE = ROOT / "tests" / "offline"


@dataclass(frozen=True)
class Judge:
    url: str
    api_key: str

    def env(self) -> dict[str, str]:
        """What a tool's process needs to reach the service, as users would set it."""
        return {"PANDALM_URL": self.url, "PANDALM_API_KEY": self.api_key}

    def tool_env(self, tmp_path: Path) -> dict[str, str]:
        """The environment of a tool run: the service's address and key, this checkout's client, and the
        guard against connections beyond the host (see `assert_offline`)."""
        return {
            **os.environ,
            **self.env(),
            "PYTHONPATH": os.pathsep.join([str(OFFLINE), str(ROOT / "client"), str(ROOT / "service")]),
            "OFFLINE_LOG": str(tmp_path / "offline.log"),
        }


def assert_offline(tmp_path: Path, tool: str) -> None:
    """Nothing the tool ran (with `Judge.tool_env`) connected beyond the host."""
    log = tmp_path / "offline.log"
    assert not log.exists(), f"{tool} connected beyond the host: {log.read_text()}"


@pytest.fixture(scope="module")
def judge_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Judge]:
    keys: Path = tmp_path_factory.mktemp("keys") / "api_keys"
    keys.write_text(f"ci {API_KEY}\n")
    app = create_app(Settings(api_keys_file=keys), engine=FakeEngine(prefers_longer))
    with serving(app) as url:
        yield Judge(url, API_KEY)
