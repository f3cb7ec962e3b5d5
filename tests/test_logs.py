"""Logging: what reaches a log line of what a client sent."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from pandalm_serve.logs import configure_logging, redact_query
from pandalm_serve.settings import Settings


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(Settings())
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_a_key_sent_in_the_query_never_reaches_the_access_log(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = logging.getLogger("uvicorn.access")
    monkeypatch.setattr(access, "disabled", False)
    previous = access.level
    access.setLevel(logging.INFO)  # another test's uvicorn may have set it higher
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/info?api_key=s3cret&x=1", "1.1", 200)
    finally:
        access.setLevel(previous)
    line = captured.getvalue()
    assert "s3cret" not in line
    assert "/info?api_key=<redacted>&x=<redacted>" in line


@pytest.mark.parametrize(
    ("path", "logged"),
    [("/compare", "/compare"), ("/info?key=abc", "/info?key=<redacted>"), ("/?token", "/?token=<redacted>")],
)
def test_redact_query(path: str, logged: str) -> None:
    assert redact_query(path) == logged
