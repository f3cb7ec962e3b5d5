"""API keys reloaded when their file changes, looked at once a second at most (an injected clock)."""

from __future__ import annotations

import os
from pathlib import Path

from pandalm_serve.auth import ApiKeys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def touch(path: Path, stamp: float) -> None:
    os.utime(path, (stamp, stamp))


def test_keys_reload_at_most_once_a_second_and_a_broken_file_keeps_the_old_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("ci-bot old-key-1234\n")
    touch(path, 1)
    clock = Clock()
    keys = ApiKeys(path, clock=clock)
    assert keys.name_of("old-key-1234") == "ci-bot"

    path.write_text("ci-bot old-key-1234\nnew-team new-key-5678\n")
    touch(path, 2)
    clock.now += 0.9
    assert keys.name_of("new-key-5678") is None  # not looked at yet
    clock.now += 0.1
    assert keys.name_of("new-key-5678") == "new-team"

    path.write_text("this is not a key file at all\n")
    touch(path, 3)
    clock.now += 1.0
    assert keys.name_of("new-key-5678") == "new-team"  # the previous keys stay in force
    assert keys.name_of("this") is None
