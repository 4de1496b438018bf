"""The PostgreSQL engine, for several replicas on one database.

Units of work are synchronous (see ``router.store``), so this engine runs each one on a
worker thread with its own pooled psycopg 3 connection, in one transaction. Replicas
never coordinate in memory: unique constraints deduplicate, and the outbox is claimed
with ``FOR UPDATE SKIP LOCKED`` so two workers never take the same job.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from router.jobs import StoredJob
from router.store import StoreError
from router.store.migrations import migrations
from router.store.sql import SqlTx, StaleState, _stored_job, epoch

T = TypeVar("T")

# Conflicts between replicas that a retry of the whole unit resolves.
_RETRYABLE = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.UniqueViolation,
    StaleState,
)
_MIGRATION_LOCK = 727_274_101  # any constant: serialises migrations across replicas


class PostgresTx(SqlTx):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description is not None else []

    def claim_jobs(
        self, worker: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[StoredJob]:
        rows = self._rows(
            "UPDATE jobs SET status = 'running', claimed_by = ?, claimed_until = ?,"
            " attempts = attempts + 1, updated_at = ? WHERE id IN ("
            + self._claim_candidates_sql()
            + " FOR UPDATE SKIP LOCKED)"
            " RETURNING id, kind, key, payload, due_at, attempts, status, last_error",
            (worker, epoch(now) + lease_seconds, epoch(now), epoch(now), epoch(now), limit),
        )
        return sorted((_stored_job(row) for row in rows), key=lambda job: job.due_at)


class PostgresStore:
    def __init__(self, conninfo: str, pool_size: int = 4) -> None:
        self.conninfo = conninfo
        self._pool_size = pool_size
        self._pool: queue.SimpleQueue[psycopg.Connection[Any]] = queue.SimpleQueue()
        self._connections: list[psycopg.Connection[Any]] = []
        self._slots: asyncio.Semaphore | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(url.replace("postgres://", "postgresql://", 1))

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self._open_sync)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open postgresql store: {exc}") from exc
        self._slots = asyncio.Semaphore(self._pool_size)

    def _open_sync(self) -> None:
        first = psycopg.connect(self.conninfo, autocommit=False)
        self._migrate(first)
        self._connections.append(first)
        self._pool.put(first)
        for _ in range(self._pool_size - 1):
            conn = psycopg.connect(self.conninfo, autocommit=False)
            self._connections.append(conn)
            self._pool.put(conn)

    @staticmethod
    def _migrate(conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migrations("postgres"):
                if version not in applied:
                    conn.execute(sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (%s, %s, now()::text)",
                        (version, name),
                    )
        conn.commit()

    async def close(self) -> None:
        for conn in self._connections:
            await asyncio.to_thread(conn.close)
        self._connections.clear()

    async def run(self, unit: Callable[[SqlTx], T]) -> T:
        if self._slots is None:
            raise StoreError("store is not open")
        async with self._slots:
            return await asyncio.to_thread(self._run_sync, unit)

    def _run_sync(self, unit: Callable[[SqlTx], T]) -> T:
        conn = self._pool.get()
        try:
            for attempt in range(3):
                try:
                    with conn.transaction():
                        return unit(PostgresTx(conn))
                except _RETRYABLE:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")
        except psycopg.OperationalError as exc:
            conn = self._reconnect(conn)
            raise StoreError(f"postgresql: {exc}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"postgresql: {exc}") from exc
        finally:
            self._pool.put(conn)

    def _reconnect(self, broken: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        # A dropped connection is replaced so the pool heals after a database restart.
        try:
            fresh = psycopg.connect(self.conninfo, autocommit=False)
        except psycopg.Error:
            return broken
        self._connections[self._connections.index(broken)] = fresh
        broken.close()
        return fresh

    async def ping(self) -> None:
        await self.run(lambda tx: tx._one("SELECT 1"))
