"""Flag values checked when they are parsed, so that a typo fails in a second (exit 2), not after the judging."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from urllib.parse import urlsplit

from .._base import DEFAULT_URL
from ._errors import UsageError


def bounded_float(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """An argparse type: a number between `low` and `high`, each included unless said open."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text!r}") from None
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text}")
        return value

    return parse


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def add_connection_flags(parser: argparse.ArgumentParser, *, on_subcommand: bool) -> None:
    """`--url`, `--api-key` and `--debug`, before the subcommand or after it.

    On a subcommand they default to SUPPRESS, so that a value given before the subcommand is kept.
    """
    default = argparse.SUPPRESS if on_subcommand else None
    parser.add_argument("--url", default=default, help=f"the PandaLM service (env PANDALM_URL; default {DEFAULT_URL})")
    parser.add_argument(
        "--api-key",
        default=default,
        help="sent as a bearer token (env PANDALM_API_KEY; prefer the variable: flags show in `ps`)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if on_subcommand else False,
        help="print the traceback of an unexpected error",
    )


def service_url(flag: str | None) -> str:
    """The service's URL from `--url` or PANDALM_URL, refused unless it is http(s)://host[:port][/path]."""
    url, source = (flag, "--url") if flag is not None else (os.environ.get("PANDALM_URL"), "PANDALM_URL")
    if not url:
        return DEFAULT_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{source} {url!r} is not an http:// or https:// URL (such as {DEFAULT_URL})")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise UsageError(f"{source} {url!r} has an invalid port") from None
    return url


def api_key(flag: str | None) -> tuple[str | None, str | None]:
    """The API key from `--api-key` or PANDALM_API_KEY, and which of the two it came from (None: no key)."""
    if flag is not None:
        return flag, "--api-key"
    key = os.environ.get("PANDALM_API_KEY")
    return (key, "PANDALM_API_KEY") if key else (None, None)
