"""How many bytes of request bodies the router holds at once.

A big Alertmanager group is megabytes of JSON, and checking it takes a few times its
size in memory for a moment. Each body holds its size from this budget while it is
read, checked and stored; when the budget is spent, a request waits a little, then
gets 503 (which Alertmanager retries), so many big groups at once cannot take the
process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib


class BudgetSpent(Exception):
    """The bytes a request needs did not come free in time."""


class BodyBudget:
    def __init__(self, limit: int, wait_seconds: float = 2.0) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.held = 0
        self._waiters: list[asyncio.Future[None]] = []

    def take_now(self, size: int) -> int | None:
        """``take`` without waiting: what it holds, or None if the bytes are spent (the
        caller then awaits ``take``). On every webhook, where a coroutine costs more
        than the check."""
        size = max(0, min(size, self.limit))
        if self.held + size > self.limit:
            return None
        self.held += size
        return size

    async def take(self, size: int) -> int:
        """Hold ``size`` bytes (capped at the whole budget: one body alone always fits)
        until ``give_back``; waits while they are spent, then ``BudgetSpent``. Returns
        what it holds. Plain calls, not a context manager: this is on every webhook."""
        held = self.take_now(size)
        if held is None:
            size = max(0, min(size, self.limit))
            await self._wait_for(size)
            held = self.take_now(size)  # fits: nothing ran since the wait ended
            assert held is not None
        return held

    def give_back(self, size: int) -> None:
        self.held -= size
        if self._waiters:
            self._wake()

    async def _wait_for(self, size: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while self.held + size > self.limit:
            left = deadline - loop.time()
            if left <= 0:
                raise BudgetSpent(f"{self.held} of {self.limit} body bytes in flight")
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, left)
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
