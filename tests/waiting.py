"""Waiting for an effect in a test: poll its condition until a deadline, never sleep a
guessed time. A loaded machine only makes the wait longer, not the test wrong."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    condition: Callable[[], T | Awaitable[T]],
    within: float = 10.0,
    what: str = "the condition",
    interval: float = 0.01,
) -> T:
    """The first truthy value of ``condition()`` (sync or async), polled until
    ``within`` seconds have passed; then AssertionError naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {within:.0f}s (last: {value!r})")
        await asyncio.sleep(interval)


def wait_until(
    condition: Callable[[], T], within: float = 10.0, what: str = "the condition",
    interval: float = 0.01,
) -> T:  # fmt: skip
    """``eventually`` for code outside an event loop (a process, a thread)."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within:.0f}s (last: {value!r})")
        time.sleep(interval)
