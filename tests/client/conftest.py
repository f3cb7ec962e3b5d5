"""The `pandalm` command line run in process against the scripted service."""

from __future__ import annotations

import pytest

import pandalm_client.cli as cli
from pandalm_client import PandaLMClient, RetryPolicy
from tests.client.fake_service import FakeService, Run

FAST = RetryPolicy(max_retries=2, initial_backoff_s=0.001, max_backoff_s=0.01)


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def pandalm(service: FakeService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run `pandalm ARGS` in process against the scripted service; returns (exit code, stdout, stderr)."""

    def connect(url: str, *, api_key: str | None = None) -> PandaLMClient:
        service.connections.append((url, api_key))
        return PandaLMClient(url, api_key=api_key, transport=service.transport(), retry=FAST)

    monkeypatch.setattr(cli, "PandaLMClient", connect)

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(list(args))
        captured = capsys.readouterr()
        return int(exit_info.value.code or 0), captured.out, captured.err

    return run
