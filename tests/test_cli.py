from __future__ import annotations

import subprocess
import sys

import pytest

from pandalm_serve.cli import load_settings


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANDALM_PORT", "9001")
    monkeypatch.setenv("PANDALM_MAX_NEW_TOKENS", "128")
    settings = load_settings(["--port", "9002", "--no-enable-prefix-caching", "--bos-token", ""])
    assert settings.port == 9002  # flag wins
    assert settings.max_new_tokens == 128  # environment, no flag
    assert settings.enable_prefix_caching is False
    assert settings.bos_token is None  # empty: the tokenizer's own


def test_remote_engine_without_url_is_refused_at_start() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pandalm_serve.cli", "--engine", "remote"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "--remote-url" in result.stderr


def test_invalid_value_is_refused_with_the_setting_named() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pandalm_serve.cli", "--preset", "nucleus"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "preset" in result.stderr


def test_beam_default_on_the_remote_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="no beam search"):
        load_settings(["--engine", "remote", "--remote-url", "http://127.0.0.1:1", "--preset", "beam"])


def test_misspelt_environment_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANDALM_MODLE", "/models/pandalm")
    with pytest.raises(ValueError, match="PANDALM_MODLE"):
        load_settings([])


def test_the_clients_variables_are_not_taken_for_misspelt_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANDALM_URL", "http://judge:8000")
    monkeypatch.setenv("PANDALM_API_KEY", "a key for the client")
    assert load_settings([]).port == 8000
