"""Servers the tests and benchmarks start on loopback: the service itself, and recording proxies.

A proxy goes in front of each worker, to see what a router sent where: the router tests and
`benchmarks/router_balance.py` put one before each replica; a subclass says what `_forward` records. The
proxies run on an event loop in a background thread, so synchronous code (a test, a benchmark) can start,
read and stop them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from aiohttp import ClientSession, web

from pandalm_serve.tools.processes import ServerProcess, free_port, service_command


def start_service(log: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, ServerProcess]:
    """Start `pandalm-serve` with these flags and wait until /readyz answers; returns its URL and process."""
    port = free_port()
    process = ServerProcess(service_command(port, *args), log, env)
    url = f"http://127.0.0.1:{port}"
    process.wait_until_ok(f"{url}/readyz")
    return url, process


class Proxy:
    """Forwards every request to `upstream`; `_forward` handles one request."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = ClientSession()
        app = web.Application(client_max_size=2**26)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self._session.close()
        await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        raise NotImplementedError


P = TypeVar("P", bound=Proxy)


@contextmanager
def proxies(make: Callable[[str], P], upstreams: list[str]) -> Iterator[list[P]]:
    """One started proxy per upstream, on an event loop in a background thread; all stopped on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started = [make(url) for url in upstreams]
    try:
        for proxy in started:
            asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(10)
        yield started
    finally:
        for proxy in started:
            asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(10)
        asyncio.run_coroutine_threadsafe(_cancel_the_rest(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _cancel_the_rest() -> None:
    """End the handlers of connections the router still holds open, so that no task outlives the loop."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
