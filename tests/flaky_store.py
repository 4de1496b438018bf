"""A store wrapper that fails units the way a killed database connection does.

``fail("finish_job")`` makes the next unit that calls ``tx.finish_job`` fail: rolled
back (``after_commit=False``: the connection died before COMMIT) or committed but
answered with an error all the same (``after_commit=True``: it died while COMMIT's
answer was on its way). ``down = True`` refuses every unit, as while the database
refuses connections.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from router.adapters.store import Store, StoreError

T = TypeVar("T")


@dataclass
class Fault:
    method: str
    after_commit: bool
    times: int


class _Injected(Exception):
    pass


class _Recording:
    """A transaction that notes which of its methods a unit called."""

    def __init__(self, tx: Any, called: list[str]) -> None:
        self._tx = tx
        self._called = called

    def __getattr__(self, name: str) -> Any:
        self._called.append(name)
        return getattr(self._tx, name)


class FlakyStore:
    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.faults: list[Fault] = []
        self.down = False
        self.injected: list[str] = []  # methods whose unit failed, in order

    def fail(self, method: str, *, after_commit: bool = False, times: int = 1) -> None:
        self.faults.append(Fault(method, after_commit, times))

    def _match(self, called: list[str]) -> Fault | None:
        for fault in self.faults:
            if fault.method in called:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                self.injected.append(fault.method)
                return fault
        return None

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> None:
        if self.down:
            raise StoreError("flaky: the database refuses connections")
        await self.inner.ping()

    async def run(self, unit: Callable[[Any], T]) -> T:
        if self.down:
            raise StoreError("flaky: the database refuses connections")
        hit: list[Fault] = []

        def wrapped(tx: Any) -> T:
            called: list[str] = []
            result = unit(_Recording(tx, called))
            if not hit:
                fault = self._match(called)
                if fault is not None:
                    hit.append(fault)
            if hit and not hit[0].after_commit:
                raise _Injected(hit[0].method)  # rolled back with its batch
            return result

        try:
            result = await self.inner.run(wrapped)
        except _Injected as exc:
            raise StoreError(f"flaky: connection lost before COMMIT ({exc})") from None
        if hit:
            raise StoreError(f"flaky: connection lost after COMMIT ({hit[0].method})")
        return result
