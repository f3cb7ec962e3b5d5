"""Shared fixtures for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pandalm_data_dir() -> Path:
    """PandaLM's read-only data, shared beside the repo at `<repo root>/../shared/data/pandalm`.

    Missing data is an error, never a skip: the golden tests must not pass by not running.
    """
    path = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pandalm").resolve()
    assert path.is_dir(), f"PandaLM data directory is missing: {path}"
    return path
