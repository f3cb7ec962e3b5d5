"""Loaded by every Python a test starts with this folder on PYTHONPATH: no connection may leave the host.

A lookup or connection to anything but loopback is written to $OFFLINE_LOG and refused, so a test can
assert that a tool it ran (with its telemetry switched off) sent nothing out.
"""

from __future__ import annotations

import os
import socket
from typing import Any

LOOPBACK = {"127.0.0.1", "::1", "localhost", "", None}
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _refuse(what: str, host: object) -> None:
    with open(os.environ["OFFLINE_LOG"], "a") as log:
        log.write(f"{what} {host} (pid {os.getpid()})\n")


def _host(address: Any) -> object:
    return address[0] if isinstance(address, tuple) else None  # a Unix socket's path is local


def connect(self: socket.socket, address: Any) -> None:
    if _host(address) not in LOOPBACK:
        _refuse("connect", _host(address))
        raise ConnectionRefusedError(f"the tests allow no connection beyond this host ({_host(address)})")
    _connect(self, address)


def connect_ex(self: socket.socket, address: Any) -> int:
    if _host(address) not in LOOPBACK:
        _refuse("connect", _host(address))
        return 111  # ECONNREFUSED
    return _connect_ex(self, address)


def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if (host.decode() if isinstance(host, bytes) else host) not in LOOPBACK:
        _refuse("lookup", host)
        raise socket.gaierror(socket.EAI_NONAME, "the tests allow no lookup beyond this host")
    return _getaddrinfo(host, *args, **kwargs)


if os.environ.get("OFFLINE_LOG"):
    socket.socket.connect = connect  # type: ignore[method-assign, assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign, assignment]
    socket.getaddrinfo = getaddrinfo
