"""What every loopback fake shares: an aiohttp server on 127.0.0.1 with a random port,
``start``/``stop`` or ``async with``, and polling until the test's condition holds."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import web


class LoopbackServer:
    """Subclasses add their routes in ``routes`` and describe their state in ``summary``."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def summary(self) -> str:
        return ""

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def origin(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    async def wait_for(
        self,
        predicate: Callable[..., Any],
        timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
        interval: float = 0.01,
    ) -> Any:
        """Poll until ``predicate()`` (or ``predicate(fake)``) is truthy and return its value.

        Raises ``AssertionError`` with what the fake saw so far on timeout.
        """
        wants_arg = _takes_argument(predicate)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate(self) if wants_arg else predicate()
            if value:
                return value
            if asyncio.get_running_loop().time() >= deadline:
                raise AssertionError(
                    f"{type(self).__name__}.wait_for timed out after {timeout}s\n{self.summary()}"
                )
            await asyncio.sleep(interval)


def _takes_argument(predicate: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(predicate).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        and p.default is p.empty
        for p in params
    )
