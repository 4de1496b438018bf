"""The PostgreSQL engine, for several replicas on one database.

A few worker threads, each with its own psycopg 3 connection, commit batches of units
(group commit, ``router.adapters.store.threaded``). Replicas never coordinate in memory: unique
constraints deduplicate (a unit that loses a race runs again and sees the winner's
row), the outbox is claimed with ``FOR UPDATE SKIP LOCKED`` so two workers never take
the same job, and storm control counts a person's pages under an advisory lock.

psycopg's synchronous API on threads, rather than its async one: units are plain
synchronous code (the lifecycle has no awaits), and the same machinery serves SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from router.adapters.store.migrations import migrations
from router.adapters.store.sql import JOB_COLUMNS, SqlTx, StaleState, _stored_job, epoch
from router.adapters.store.threaded import ThreadedStore
from router.core.jobs import StoredJob

_MIGRATION_LOCK = 727_274_101  # any constant: serialises migrations across replicas

# Unless the URL says otherwise: a name to find the router's sessions by in
# pg_stat_activity, a connect that gives up well before a webhook's sender does, and
# keepalives so that a connection to a vanished server is noticed, not waited on.
CONNECTION_DEFAULTS = {
    "application_name": "incident-router",
    "connect_timeout": "3",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}


class PostgresTx(SqlTx):
    _DAY_OF = "floor({} / 86400)"  # CAST rounds in PostgreSQL

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._conn.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description is not None else []

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        # psycopg pipelines the rows: one round trip, not one per row.
        with self._conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    # Advisory locks belong to the whole database, not to a schema: the lock's key carries
    # the schema, so two routers on one database (staging and production, say, each in its
    # own schema) never hold each other's inbox or storm lock.
    _LOCK_KEY = "hashtext(current_schema() || '/' || {})"

    def lock(self, name: str) -> None:
        # Held to the end of the transaction; other replicas wait for it.
        self._conn.execute(f"SELECT pg_advisory_xact_lock({self._LOCK_KEY.format('%s')})", (name,))

    def try_lock(self, name: str) -> bool:
        row = self._one(f"SELECT pg_try_advisory_xact_lock({self._LOCK_KEY.format('?')})", (name,))
        return bool(row and row[0])

    def claim_jobs(
        self, worker: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[StoredJob]:
        rows = self._rows(
            "UPDATE jobs SET status = 'running', claimed_by = ?, claimed_until = ?,"
            " attempts = attempts + 1, updated_at = ? WHERE id IN ("
            + self._claim_candidates_sql()
            + " FOR UPDATE SKIP LOCKED)"
            " RETURNING " + JOB_COLUMNS,
            (
                worker,
                epoch(now) + lease_seconds,
                epoch(now),
                epoch(now),
                epoch(now),
                epoch(now),
                limit,
            ),
        )
        return sorted((_stored_job(row) for row in rows), key=lambda job: (job.due_at, job.id))


class PostgresStore(ThreadedStore[psycopg.Connection[Any]]):
    name = "postgresql"
    # Conflicts with a racing replica: the unit runs again on a fresh read.
    retryable = (
        pg_errors.SerializationFailure,
        pg_errors.DeadlockDetected,
        pg_errors.UniqueViolation,
        StaleState,
    )
    database_errors = (psycopg.Error,)

    def __init__(self, conninfo: str, pool_size: int = 4) -> None:
        super().__init__(threads=pool_size)
        given = conninfo_to_dict(conninfo)
        defaults = {k: v for k, v in CONNECTION_DEFAULTS.items() if k not in given}
        self.conninfo = make_conninfo(conninfo, **defaults)

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """``postgresql://…[?pool_size=N&…]``: ``pool_size`` is ours, the rest psycopg's."""
        parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
        query = parse_qsl(parts.query, keep_blank_values=True)
        pool = [int(v) for k, v in query if k == "pool_size"]
        rest = urlencode([(k, v) for k, v in query if k != "pool_size"])
        return cls(urlunsplit(parts._replace(query=rest)), pool[-1] if pool else 4)

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=False)

    def migrate(self, conn: psycopg.Connection[Any]) -> None:
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

    def transaction(self, conn: psycopg.Connection[Any]) -> SqlTx:
        return PostgresTx(conn)

    def begin(self, conn: psycopg.Connection[Any]) -> None:
        pass  # psycopg opens a transaction at the first statement

    def commit(self, conn: psycopg.Connection[Any]) -> None:
        conn.commit()

    def rollback(self, conn: psycopg.Connection[Any]) -> None:
        conn.rollback()

    def disconnect(self, conn: psycopg.Connection[Any]) -> None:
        conn.close()

    def healthy(self, conn: psycopg.Connection[Any]) -> bool:
        # A dropped connection is replaced, so the store heals after a database restart.
        return not conn.closed and not conn.broken
