"""The embedded engine: one SQLite file in WAL mode, one writer thread.

Every unit of work runs on the writer thread. Units that arrive together share one
transaction (group commit); should one of them fail, the others are run again each in a
transaction of its own, so one failing unit never undoes its neighbours. Callers are
answered only after the COMMIT returns. With
``synchronous=FULL`` an answered webhook survives a crash of the process or machine,
and batching keeps that affordable under load.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from router.jobs import StoredJob
from router.store import StoreError
from router.store.migrations import migrations
from router.store.sql import SqlTx, epoch

T = TypeVar("T")

_MAX_BATCH = 256
_Item = tuple[Callable[[SqlTx], Any], "asyncio.Future[Any]"]


class SqliteTx(SqlTx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def claim_jobs(
        self, worker: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[StoredJob]:
        # One writer thread means no other claimer can interleave: select then mark.
        ids = [
            row[0]
            for row in self._rows(self._claim_candidates_sql(), (epoch(now), epoch(now), limit))
        ]
        return self._mark_claimed(ids, worker, now, lease_seconds)


class SqliteStore:
    def __init__(self, path: str, synchronous: str = "FULL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # commits made; exposed for the benchmark's group-commit figure

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        # sqlite:///relative/path, sqlite:////absolute/path, sqlite:///:memory:
        path = url.removeprefix("sqlite://")
        path = path[1:] if path.startswith("/") else path
        return cls(path or ":memory:")

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._writer, args=(ready,), name="sqlite-writer", daemon=True
        )
        self._thread.start()
        await ready

    async def close(self) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def run(self, unit: Callable[[SqlTx], T]) -> T:
        if self._thread is None or self._loop is None:
            raise StoreError("store is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((unit, future))
        return await future

    async def ping(self) -> None:
        await self.run(lambda tx: tx._one("SELECT 1"))

    # -- writer thread -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        self._migrate(conn)
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations("sqlite"):
            if version in applied:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in sql.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))",
                    (version, name),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _writer(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        try:
            conn = self._connect()
        except Exception as exc:  # report to open() instead of dying silently
            error = StoreError(f"cannot open sqlite store {self.path}: {exc}")
            self._loop.call_soon_threadsafe(_settle, ready, None, error)
            return
        self._conn = conn
        self._loop.call_soon_threadsafe(_settle, ready, None, None)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                batch = [item]
                stop = False
                while len(batch) < _MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._run_batch(conn, batch)
                if stop:
                    break
        finally:
            conn.close()
            self._fail_pending()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        """Run the batch in one transaction. Units almost never fail, so no savepoint
        per unit: if one fails, the batch is rolled back and each unit runs again in a
        transaction of its own (units are functions of the database state, so running
        one again after a rollback is the same as running it once)."""
        assert self._loop is not None
        tx = SqliteTx(conn)
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [(future, unit(tx), None) for unit, future in batch]
            except Exception:
                conn.execute("ROLLBACK")
                outcomes = [self._run_alone(conn, tx, unit, future) for unit, future in batch]
            else:
                conn.execute("COMMIT")
                self.batches += 1
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failed = StoreError(f"sqlite commit failed: {exc}")
            outcomes = [(future, None, failed) for _, future in batch]
        # One wake-up of the event loop per batch, not one per unit.
        self._loop.call_soon_threadsafe(_settle_all, outcomes)

    def _run_alone(
        self, conn: sqlite3.Connection, tx: SqliteTx, unit: Callable[[SqlTx], Any],
        future: asyncio.Future[Any],
    ) -> tuple[asyncio.Future[Any], Any, BaseException | None]:  # fmt: skip
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = unit(tx)
        except Exception as exc:
            conn.execute("ROLLBACK")
            return future, None, _as_store_error(exc)
        conn.execute("COMMIT")
        self.batches += 1
        return future, result, None

    def _fail_pending(self) -> None:
        assert self._loop is not None
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                error = StoreError("store closed")
                self._loop.call_soon_threadsafe(_settle, item[1], None, error)


def _as_store_error(exc: Exception) -> BaseException:
    # Database trouble becomes StoreError (503); a bug in a unit stays itself (500).
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"sqlite: {exc}")
    return exc


def _settle_all(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        _settle(future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled (client went away); nothing to tell
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
