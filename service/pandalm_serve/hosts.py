"""Which `Host` names the service answers to: against DNS rebinding, where a web page's own name is made to
resolve to 127.0.0.1 and the browser, trusting the name, lets the page read the loopback judge's answers.

A rebound request still carries the page's name in `Host`. So a service on loopback without API keys (the
one a browser could reach that way, and that nothing else protects) answers only to loopback names, unless
`--allowed-hosts` says otherwise.
"""

from __future__ import annotations

import ipaddress
import socket

from .settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})


def listens_on_loopback(host: str) -> bool:
    """Whether `host` (an address or a name to resolve) is a loopback address."""
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        address = socket.gethostbyname(host)
    return ipaddress.ip_address(address).is_loopback


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The `Host` names to answer to, without ports; None: any."""
    if settings.allowed_hosts == "*":
        return None
    if settings.allowed_hosts == "auto":
        open_on_loopback = settings.api_keys_file is None and listens_on_loopback(settings.host)
        return LOOPBACK_NAMES if open_on_loopback else None
    return frozenset(name.strip().lower() for name in settings.allowed_hosts.split(",") if name.strip())


def host_name(header: str) -> str:
    """A `Host` header's name, lowered, without its port (`[::1]:8000` is `[::1]`)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.partition(":")[0]
