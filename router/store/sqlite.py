"""The embedded engine: one SQLite file in WAL mode, one writer thread.

SQLite allows one writer at a time, so one thread owns the connection and commits
batches of units (group commit, ``router.store.threaded``). With ``synchronous=FULL``
an answered webhook survives a crash of the process or the machine; batching keeps
that affordable under load.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from router.jobs import StoredJob
from router.store.migrations import migrations
from router.store.sql import SqlTx, epoch
from router.store.threaded import ThreadedStore


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


class SqliteStore(ThreadedStore[sqlite3.Connection]):
    name = "sqlite"
    database_errors = (sqlite3.Error,)

    def __init__(self, path: str, synchronous: str = "FULL") -> None:
        super().__init__(threads=1)
        self.path = path
        self._synchronous = synchronous

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        # sqlite:///relative/path, sqlite:////absolute/path, sqlite:///:memory:
        path = url.removeprefix("sqlite://")
        path = path[1:] if path.startswith("/") else path
        return cls(path or ":memory:")

    def connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def migrate(self, conn: sqlite3.Connection) -> None:
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

    def transaction(self, conn: sqlite3.Connection) -> SqlTx:
        return SqliteTx(conn)

    def begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def disconnect(self, conn: sqlite3.Connection) -> None:
        conn.close()
