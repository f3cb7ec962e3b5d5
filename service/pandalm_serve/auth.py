"""API keys: a file of named keys (or of their SHA-256 hashes), reloaded when it changes.

    # name   key, or sha256:<hex digest of the key>   [admin]
    ci-bot   s3cr3t-t0ken
    team-a   sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    ops      0ps-t0ken   admin

Keys are compared by their SHA-256 digests in constant time. Only a key's name (or a pseudonym derived from
the key) is ever logged or used as a metric label, never the key. An `admin` key may also administer the
service (`DELETE /cache`).

The caller of the request being served is `current_caller`, a context variable set once authenticated, so
that what depends on who asks (the cache's per-key scope) needs no argument threaded through every layer,
as the request id's logging does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError

logger = logging.getLogger(__name__)

# How often, at most, the file is looked at for changes.
_RELOAD_CHECK_S = 1.0


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: a key's name, a stable pseudonym of the key, and whether it is an admin key."""

    name: str
    pseudonym: str
    admin: bool = False


# Without API keys everyone is this caller, an administrator as everyone is.
ANONYMOUS = Caller("-", "-", admin=True)
current_caller: ContextVar[Caller] = ContextVar("current_caller", default=ANONYMOUS)


@dataclass(frozen=True, slots=True)
class _Key:
    name: str
    digest: bytes
    admin: bool

    def caller(self) -> Caller:
        # From the key's digest, not its name: names are guessable, and a label must not reveal them.
        return Caller(self.name, hashlib.sha256(b"pandalm-label:" + self.digest).hexdigest()[:12], self.admin)


class ApiKeys:
    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._keys: list[_Key] = []
        self._stamp: tuple[float, int] | None = None
        self._checked = -_RELOAD_CHECK_S
        self._load()

    def _load(self) -> None:
        stat = self.path.stat()
        keys: list[_Key] = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) not in (2, 3) or fields[2:] not in ([], ["admin"]):
                raise ConfigurationError(
                    f"{self.path}:{number}: expected 'name key' (or 'name sha256:<hex>'), then 'admin' or nothing"
                )
            name, secret = fields[:2]
            if secret.startswith("sha256:"):
                try:
                    digest = bytes.fromhex(secret.removeprefix("sha256:"))
                except ValueError as exc:
                    raise ConfigurationError(f"{self.path}:{number}: the sha256 digest is not hexadecimal") from exc
                if len(digest) != 32:
                    raise ConfigurationError(f"{self.path}:{number}: a sha256 digest has 64 hexadecimal digits")
            else:
                digest = hashlib.sha256(secret.encode()).digest()
            keys.append(_Key(name, digest, admin=fields[2:] == ["admin"]))
        if not keys:
            raise ConfigurationError(f"{self.path}: no keys in it: every request would be refused")
        self._keys = keys
        self._stamp = (stat.st_mtime, stat.st_size)
        logger.info("API keys loaded: %s", ", ".join(k.name for k in keys))

    def _reload_if_changed(self) -> None:
        now = self._clock()
        if now - self._checked < _RELOAD_CHECK_S:
            return
        self._checked = now
        try:
            stat = self.path.stat()
            if (stat.st_mtime, stat.st_size) != self._stamp:
                self._load()
        except (OSError, ConfigurationError) as exc:
            logger.error("API keys not reloaded, the previous ones stay in force: %s", exc)

    def caller(self, presented: str) -> Caller | None:
        """Who the key presented belongs to, or None if it is not one of them."""
        self._reload_if_changed()
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for key in self._keys:  # no early exit: the time taken does not depend on which key matched
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found.caller() if found is not None else None

    def name_of(self, presented: str) -> str | None:
        """The name of the key presented, or None if it is not one of them."""
        caller = self.caller(presented)
        return caller.name if caller is not None else None
