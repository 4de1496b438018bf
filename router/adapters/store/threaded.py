"""Group commit: the engine machinery both stores share.

Units of work are synchronous functions of a transaction (see ``router.adapters.store``).
``GroupCommit`` runs a batch of them in one transaction and commits once: under load
one commit (one fsync, one round trip) serves many webhooks. Units almost never fail;
when one does, the batch is rolled back and every unit runs again in a transaction of
its own, so a failing unit never undoes its neighbours. Running a unit again after a
rollback is safe: a unit is a function of the database state it reads.

``ThreadedStore`` feeds batches to worker threads that each own a connection: the
PostgreSQL engine, whose units wait on the network. SQLite runs its batches on the
event loop instead (``router.adapters.store.sqlite``).

Engines say how to connect, begin, commit and roll back, and which errors mean "a
racing replica got there first: run the unit again" (``retryable``).

When the database goes away, a thread whose connection broke reconnects with a
backoff (exponential, jittered, capped at ``RECONNECT_CAP`` seconds), one thread at a
time. While no thread holds a connection and the next attempt is not due, units fail
at once with ``StoreError`` (503, and ``/readyz`` false) instead of queueing behind a
dead database; the first unit after the pause tries again, so the store heals by
itself. A unit never waits longer than ``unit_timeout`` (below Alertmanager's 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from router.adapters.store import StoreError
from router.adapters.store.sql import SqlTx

T = TypeVar("T")
C = TypeVar("C")  # a connection

log = logging.getLogger(__name__)

_MAX_BATCH = 256
_ATTEMPTS = 3
_Item = tuple[Callable[[SqlTx], Any], "asyncio.Future[Any]"]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]
RECONNECT_BASE = 0.05  # seconds before the second attempt; doubles up to the cap
RECONNECT_CAP = 2.0


class GroupCommit(ABC, Generic[C]):
    """Batches of units, one transaction each, on a connection of type ``C``."""

    name = "store"
    retryable: tuple[type[BaseException], ...] = ()  # conflicts: run the unit again
    database_errors: tuple[type[BaseException], ...] = ()  # become StoreError (503)

    def __init__(self) -> None:
        self.batches = 0  # commits made; the benchmark prints units per commit

    # -- what an engine provides ----------------------------------------------

    @abstractmethod
    def connect(self) -> C: ...

    @abstractmethod
    def migrate(self, conn: C) -> None: ...

    @abstractmethod
    def transaction(self, conn: C) -> SqlTx: ...

    @abstractmethod
    def begin(self, conn: C) -> None: ...

    @abstractmethod
    def commit(self, conn: C) -> None: ...

    @abstractmethod
    def rollback(self, conn: C) -> None: ...

    @abstractmethod
    def disconnect(self, conn: C) -> None: ...

    def _run_batch(self, conn: C, batch: list[_Item], *, begun: bool = False) -> list[_Outcome]:
        """Run ``batch`` in one transaction (already open when ``begun``)."""
        tx = self.transaction(conn)
        try:
            if not begun:
                self.begin(conn)
            results = [unit(tx) for unit, _ in batch]
            self.commit(conn)
        except Exception:
            with contextlib.suppress(Exception):
                self.rollback(conn)
            if len(batch) == 1:
                return [self._run_alone(conn, *batch[0])]
            return [self._run_alone(conn, unit, future) for unit, future in batch]
        self.batches += 1
        return [(future, result, None) for (_, future), result in zip(batch, results, strict=True)]

    def _run_alone(
        self, conn: C, unit: Callable[[SqlTx], Any], future: asyncio.Future[Any]
    ) -> _Outcome:
        for attempt in range(_ATTEMPTS):
            tx = self.transaction(conn)
            try:
                self.begin(conn)
                result = unit(tx)
                self.commit(conn)
            except self.retryable:
                with contextlib.suppress(Exception):
                    self.rollback(conn)
                if attempt == _ATTEMPTS - 1:
                    return future, None, StoreError(f"{self.name}: conflict persisted")
                continue
            except Exception as exc:
                with contextlib.suppress(Exception):
                    self.rollback(conn)
                if isinstance(exc, self.database_errors):
                    return future, None, StoreError(f"{self.name}: {exc}")
                return future, None, exc  # a bug in the unit: the caller answers 500
            self.batches += 1
            return future, result, None
        raise AssertionError("unreachable")


class ThreadedStore(GroupCommit[C]):
    """Group commit on worker threads, each with a connection of its own."""

    unit_timeout = 8.0  # seconds; a webhook is answered 503 well before its sender gives up

    def __init__(self, threads: int) -> None:
        super().__init__()
        self._thread_count = threads
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        # The outage, shared by the threads (under the lock).
        self._lock = threading.Lock()
        self._live = 0  # threads holding a connection not known to be broken
        self._failures = 0  # reconnects failed in a row
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probing = False
        self._last_error = ""
        self.reconnects = 0  # attempts made, for tests and the fault benchmark

    def healthy(self, conn: C) -> bool:
        """False for a connection that broke (replaced before the next batch)."""
        return True

    # -- the store contract -----------------------------------------------------

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        for index in range(self._thread_count):
            ready: asyncio.Future[None] = self._loop.create_future()
            thread = threading.Thread(
                target=self._work,
                args=(ready, index == 0),
                name=f"{self.name}-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
            await ready  # the first thread migrates before the others connect

    async def close(self) -> None:
        if not self._threads:
            return
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            await asyncio.to_thread(thread.join)
        self._threads.clear()
        # Whatever arrived while closing is refused, not left waiting forever.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                _settle_one(item[1], None, StoreError(f"{self.name} store closed"))

    async def run(self, unit: Callable[[SqlTx], T]) -> T:
        if not self._threads or self._loop is None:
            raise StoreError("store is not open")
        if self._live == 0 and self._down_since is not None and time.monotonic() < self._retry_at:
            raise self._unavailable()  # known down: answer now, do not queue
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((unit, future))
        try:
            return await asyncio.wait_for(future, self.unit_timeout)
        except TimeoutError:
            raise StoreError(f"{self.name}: no answer within {self.unit_timeout:g}s") from None

    async def ping(self) -> None:
        await self.run(lambda tx: tx._one("SELECT 1"))

    @property
    def down_for(self) -> float | None:
        """Seconds since the store was found unreachable, or None while it answers."""
        since = self._down_since
        return None if since is None else time.monotonic() - since

    def _unavailable(self) -> StoreError:
        down = self.down_for or 0.0
        wait = max(0.0, self._retry_at - time.monotonic())
        return StoreError(
            f"{self.name}: unreachable for {down:.1f}s, next attempt in {wait:.1f}s:"
            f" {self._last_error}"
        )

    # -- worker threads ---------------------------------------------------------

    def _work(self, ready: asyncio.Future[None], first: bool) -> None:
        assert self._loop is not None
        conn: C | None
        try:
            conn = self.connect()
            if first:
                self.migrate(conn)
        except Exception as exc:  # report to open() instead of dying silently
            error = StoreError(f"cannot open the {self.name} store: {exc}")
            self._loop.call_soon_threadsafe(_settle_one, ready, None, error)
            return
        with self._lock:
            self._live += 1
        self._loop.call_soon_threadsafe(_settle_one, ready, None, None)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                batch = [item]
                while len(batch) < _MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._queue.put(None)  # for this thread's next turn
                        break
                    batch.append(more)
                # A caller that gave up (timed out, went away) is not run for nobody.
                batch = [entry for entry in batch if not entry[1].done()]
                if not batch:
                    continue
                if conn is None or not self.healthy(conn):
                    conn = self._replace(conn)
                if conn is None:
                    error = self._unavailable()
                    outcomes: list[_Outcome] = [(future, None, error) for _, future in batch]
                else:
                    outcomes = self._run_batch(conn, batch)
                # One wake-up of the event loop per batch, not one per unit.
                self._loop.call_soon_threadsafe(_settle_all, outcomes)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    self.disconnect(conn)

    def _replace(self, conn: C | None) -> C | None:
        """A fresh connection, or None while the database stays unreachable (then
        only one thread tries, and only once the backoff has passed)."""
        if conn is not None:
            with contextlib.suppress(Exception):
                self.disconnect(conn)
            with self._lock:
                self._live -= 1
        with self._lock:
            now = time.monotonic()
            if self._down_since is not None and (self._probing or now < self._retry_at):
                return None
            self._probing = True
            self.reconnects += 1
        try:
            fresh = self.connect()
        except Exception as exc:
            with self._lock:
                self._probing = False
                self._failures += 1
                self._down_since = self._down_since or now
                delay = min(RECONNECT_CAP, RECONNECT_BASE * 2.0 ** (self._failures - 1))
                delay = delay / 2 + random.random() * delay / 2
                self._retry_at = time.monotonic() + delay
                self._last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            log.error("%s: cannot reconnect, next attempt in %.1fs: %s", self.name, delay, exc)
            return None
        with self._lock:
            self._probing = False
            self._live += 1
            down, self._down_since, self._failures = self._down_since, None, 0
        if down is not None:
            log.warning("%s: reconnected after %.1fs", self.name, time.monotonic() - down)
        return fresh


def _settle_all(outcomes: list[_Outcome]) -> None:
    for future, result, error in outcomes:
        _settle_one(future, result, error)


def _settle_one(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled (client went away); nothing to tell
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
