"""The embedded engine: one SQLite file in WAL mode, its batches run on the event loop.

Why on the loop and not on a writer thread: a unit is a few short SQLite calls
wrapped in Python, and the GIL lets one thread run Python at a time. On a writer
thread every call gave the GIL back to the event loop and then waited to get it back,
and those waits cost more than the calls themselves: about 160 µs per INSERT under
load on the thread, against about 20 µs on the loop (``python -m bench.intake``).
The one slow step, the fsync, holds no GIL, so it runs on a thread of its own.

Durability is that of ``synchronous=FULL``:
- The connection commits with ``synchronous=NORMAL``: the commit writes the WAL but
  does not fsync it.
- The sync thread then fsyncs the WAL file. A caller is answered only after an fsync
  that began after its commit, so an answered webhook survives a crash of the
  process or of the machine.
- While an fsync runs, the loop goes on running and committing new units; they all
  wait for the next fsync (group commit). So the CPU work and the fsync overlap, and
  under load one fsync serves many webhooks.
- A unit that only read waits for that fsync too when anything it could have read
  is not durable yet: a job must never run on the strength of a row a power cut
  could take back. The store knows what it wrote itself (and fsyncs the WAL at open
  for what an earlier run left), so one router process owns a SQLite file; several
  replicas need PostgreSQL.
- If an fsync fails, nothing more is acknowledged (503, and ``/readyz`` fails): after
  a failed fsync the kernel may have dropped the dirty pages, so a later successful
  fsync proves nothing.

Checkpoints copy the WAL into the database file and fsync it. SQLite's automatic
checkpoint is off, since it would run inside a commit, on the loop. Instead a
checkpoint thread runs one after an fsync, at most every ``checkpoint_seconds``, with
a connection of its own, in two passes. The first copies the WAL while commits and
fsyncs go on (under load, megabytes and an fsync of the database file: tens of
milliseconds). The second copies what came meanwhile with commits held (a few
milliseconds), so that every frame is copied and the WAL starts over from its
beginning: the file stays small under any load.

A second writer on the same file (another store, a ``sqlite3`` shell) must not block
the loop. So BEGIN does not wait for the lock (``busy_timeout=0``); the batch is
tried again a few milliseconds later, for up to ``busy_seconds``, and then answered
with ``StoreError`` (503, so the sender retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from router.adapters.store import StoreError
from router.adapters.store.migrations import migrations
from router.adapters.store.sql import SqlTx, epoch
from router.adapters.store.threaded import GroupCommit, _Item, _Outcome, _settle_all
from router.app.ports import InboxStats
from router.core.jobs import StoredJob

T = TypeVar("T")

log = logging.getLogger(__name__)

_MAX_BATCH = 256
_BUSY_RETRY_SECONDS = 0.005
_FALLBACK_BUSY_SECONDS = 0.05
# An fsync, or a checkpoint's held pass, this long made webhooks wait as long: logged,
# since from the outside it looks like a router that stopped answering.
SLOW_SECONDS = 1.0


class SqliteTx(SqlTx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def inbox_stats(self, now: datetime) -> InboxStats:
        """Pending deliveries counted from the range of their ids, not row by row (the
        inbox has no index on status: each webhook would pay for it). SQLite gives a
        new row the next id, and deliveries leave the inbox oldest first, applied or
        set aside (dead, kept): so the pending ones are that range less the dead in it."""
        first = self._one(
            "SELECT id, received_at FROM inbox WHERE status = 'pending' ORDER BY id LIMIT 1"
        )
        [(dead,)] = self._rows("SELECT count(*) FROM inbox WHERE status = 'dead'")
        if first is None:
            return InboxStats(0, 0.0, int(dead))
        [(last,)] = self._rows(
            "SELECT id FROM inbox WHERE status = 'pending' ORDER BY id DESC LIMIT 1"
        )
        [(dead_within,)] = self._rows(
            "SELECT count(*) FROM inbox WHERE status = 'dead' AND id BETWEEN ? AND ?",
            (first[0], last),
        )
        pending = int(last) - int(first[0]) + 1 - int(dead_within)
        return InboxStats(pending, max(0.0, epoch(now) - first[1]), int(dead))

    def claim_jobs(
        self, worker: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[StoredJob]:
        # One connection commits at a time: no other claimer can interleave.
        ids = [
            row[0]
            for row in self._rows(
                self._claim_candidates_sql(), (epoch(now), epoch(now), epoch(now), limit)
            )
        ]
        return self._mark_claimed(ids, worker, now, lease_seconds)


class SqliteStore(GroupCommit[sqlite3.Connection]):
    name = "sqlite"
    database_errors = (sqlite3.Error,)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.checkpoint_seconds = 1.0
        self.busy_seconds = 5.0
        # fdatasync where there is one (Linux): it makes the data and the file's size
        # durable, which is all a WAL needs (SQLite syncs its own WAL that way), and it
        # skips the timestamps: about a third of an fsync's time on ext4.
        self.fsync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)  # tests swap it
        self.syncs = 0
        self.checkpoints = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: sqlite3.Connection | None = None
        self._wal = False  # False for :memory:, which has no file to sync
        self._wal_fd: int | None = None
        self._pending: list[_Item] = []
        self._committed: list[_Outcome] = []  # committed, waiting for the next fsync
        self._in_sync: list[_Outcome] = []  # answered when the running fsync ends
        self._writes = 0  # commits that wrote something
        self._in_sync_writes = 0  # ... of which the running fsync covers this many
        self._durable_writes = 0  # ... of which a finished fsync covered this many
        self._flush_scheduled = False
        self._syncing = False
        self._copying = False  # a checkpoint's first pass runs; commits go on
        self._checkpointing = False  # its second pass runs: commits wait (every frame copied)
        self._busy_since: float | None = None
        self._failed: str | None = None
        self._sync_thread: _Worker | None = None
        self._checkpoint_thread: _Worker | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._last_checkpoint = 0.0
        self._sync_began = self._held_since = 0.0  # monotonic times: the slow-disk log
        self._wal_path = ""
        self._closing = False

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        # sqlite:///relative/path, sqlite:////absolute/path, sqlite:///:memory:
        path = url.removeprefix("sqlite://")
        path = path[1:] if path.startswith("/") else path
        return cls(path or ":memory:")

    # -- connections ----------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._wal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        # NORMAL: commits write the WAL without an fsync; the sync thread does it. A
        # file system without WAL support gets FULL: SQLite then syncs in each commit.
        durable = self._wal or self.path == ":memory:"
        conn.execute(f"PRAGMA synchronous={'NORMAL' if durable else 'FULL'}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    def migrate(self, conn: sqlite3.Connection) -> None:
        # Once, before serving: waiting for another process's lock is fine here.
        conn.execute("PRAGMA busy_timeout=5000")
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
        conn.execute("PRAGMA busy_timeout=0")

    def transaction(self, conn: sqlite3.Connection) -> SqlTx:
        return SqliteTx(conn)

    def begin(self, conn: sqlite3.Connection) -> None:
        # Only the rare fallback (a unit of a batch failed; each runs alone) comes
        # here: should another writer have taken the lock in that gap, wait a little
        # rather than answer a healthy unit 503. Batches never wait (_flush).
        deadline = time.monotonic() + _FALLBACK_BUSY_SECONDS
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.001)

    def commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def disconnect(self, conn: sqlite3.Connection) -> None:
        conn.close()

    # -- the store contract -----------------------------------------------------

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            # On the loop: a moment at start-up, before anything is served.
            self._conn = self._connect_and_migrate()
        except Exception as exc:
            raise StoreError(f"cannot open the {self.name} store: {exc}") from exc
        self._sync_thread = _Worker("sqlite-sync", self._loop)
        self._checkpoint_thread = _Worker("sqlite-checkpoint", self._loop)
        self._last_checkpoint = time.monotonic()

    def _connect_and_migrate(self) -> sqlite3.Connection:
        conn = self.connect()
        self.migrate(conn)
        if self._wal:
            # Absolute, so that no change of directory can point it elsewhere.
            self._wal_path = os.path.abspath(self.path) + "-wal"
            # What a previous run committed may never have been fsynced (it crashed
            # waiting): make it durable before anything is read from it.
            self._fsync_wal()
            # The WAL file now exists: make its directory entry durable too.
            _fsync_directory(Path(self._wal_path).parent)
        return conn

    async def close(self) -> None:
        if self._conn is None or self._closing:
            return
        self._closing = True
        deadline = time.monotonic() + 10.0
        while (
            self._pending
            or self._committed
            or self._syncing
            or self._copying
            or self._checkpointing
            or self._flush_scheduled
        ):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        conn, self._conn = self._conn, None
        closed = StoreError(f"{self.name} store closed")
        pending, self._pending = self._pending, []
        committed, self._committed = self._committed, []  # never synced: not answered yes
        _settle_all([(future, None, closed) for _, future in pending])
        _settle_all([(future, None, closed) for future, _, _ in committed])
        for worker in (self._sync_thread, self._checkpoint_thread):
            if worker is not None:
                await asyncio.to_thread(worker.stop)
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        conn.close()  # the last connection checkpoints and removes the WAL
        self._closing = False

    async def run(self, unit: Callable[[SqlTx], T]) -> T:
        if self._conn is None or self._loop is None:
            raise StoreError("store is not open")
        if self._failed is not None:
            raise StoreError(self._failed)
        future: asyncio.Future[T] = self._loop.create_future()
        self._pending.append((unit, future))
        self._schedule()
        return await future

    async def ping(self) -> None:
        await self.run(lambda tx: tx._one("SELECT 1"))

    # -- group commit on the loop -------------------------------------------------

    def _schedule(self, delay: float = 0.0) -> None:
        # Units arriving in the same turn of the loop share one commit.
        if self._flush_scheduled or self._checkpointing or self._loop is None:
            return
        self._flush_scheduled = True
        if delay:
            self._loop.call_later(delay, self._flush)
        else:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        conn = self._conn
        if not self._pending or self._checkpointing or conn is None:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")  # never waits: busy_timeout is 0
        except sqlite3.Error as exc:
            self._begin_failed(exc)
            return
        self._busy_since = None
        batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
        changes = conn.total_changes
        try:
            outcomes = self._run_batch(conn, batch, begun=True)
        except BaseException as exc:
            # Not an Exception (KeyboardInterrupt, a stray CancelledError): answer the
            # batch and leave no transaction open, then let it go on up.
            with contextlib.suppress(Exception):
                self.rollback(conn)
            aborted = StoreError(f"{self.name}: batch aborted by {exc!r}")
            _settle_all([(future, None, aborted) for _, future in batch])
            raise
        finally:
            if self._pending:
                self._schedule()
        if not self._wal:  # :memory: has nothing to make durable
            _settle_all(outcomes)
            return
        if conn.total_changes != changes:
            self._writes += 1
        elif self._durable_writes == self._writes:
            _settle_all(outcomes)  # read only what is durable already
            return
        elif self._syncing and self._in_sync_writes == self._writes:
            self._in_sync.extend(outcomes)  # read only what the running fsync covers
            return
        self._committed.extend(outcomes)
        self._start_sync()

    def _start_sync(self) -> None:
        """Start an fsync for everything committed so far, unless one is running
        (the committed units then wait for the next, started when it ends)."""
        if self._syncing or not self._committed or self._loop is None:
            return
        outcomes, self._committed = self._committed, []
        self._in_sync, self._in_sync_writes = outcomes, self._writes
        self._syncing = True
        self._sync_began = time.monotonic()
        assert self._sync_thread is not None
        self._sync_thread.submit(self._fsync_wal, self._synced)

    def _begin_failed(self, exc: sqlite3.Error) -> None:
        now = time.monotonic()
        if _is_busy(exc):
            self._busy_since = self._busy_since or now
            if now - self._busy_since < self.busy_seconds:
                self._schedule(_BUSY_RETRY_SECONDS)  # another writer: try again soon
                return
            error = StoreError(
                f"{self.name}: the database stayed locked by another writer"
                f" for {self.busy_seconds:g}s"
            )
        else:
            error = StoreError(f"{self.name}: {exc}")
        self._busy_since = None
        pending, self._pending = self._pending, []
        _settle_all([(future, None, error) for _, future in pending])

    def _fsync_wal(self) -> None:
        """On the sync thread (and once at open): fsync the WAL file.

        Opened once, at open, and never looked up again: SQLite writes the WAL through a
        descriptor it keeps while the connection lives, and only the last connection's
        close removes the file, so the same file is there until ``close``. (Comparing
        inodes before each fsync cost two system calls, each giving the GIL back to
        the loop and waiting to take it again: about 4 % of the webhooks a second.)"""
        if self._wal_fd is None:
            self._wal_fd = os.open(self._wal_path, os.O_RDONLY)
        self.fsync(self._wal_fd)

    def _synced(self, error: BaseException | None) -> None:
        self._syncing = False
        outcomes, self._in_sync = self._in_sync, []  # reads may have joined the list
        took = time.monotonic() - self._sync_began
        if took >= SLOW_SECONDS:
            log.warning("%s: an fsync of the WAL took %.1fs; %d units waited for it"
                        " (a slow or overloaded disk)", self.name, took, len(outcomes))  # fmt: skip
        if error is not None:
            self._sync_failed(outcomes, error)
            return
        self.syncs += 1
        self._durable_writes = max(self._durable_writes, self._in_sync_writes)
        _settle_all(outcomes)
        due = time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds
        if due and not self._copying:
            self._start_checkpoint()
        self._start_sync()

    def _sync_failed(self, outcomes: list[_Outcome], error: BaseException) -> None:
        # After a failed fsync the kernel may have dropped the dirty pages; a later
        # fsync that succeeds proves nothing. Stop acknowledging until a restart.
        self._failed = (
            f"{self.name}: fsync of the WAL failed ({error}); nothing is acknowledged"
            " until the router restarts"
        )
        log.critical("%s", self._failed)
        failure = StoreError(self._failed)
        pending, self._pending = self._pending, []
        committed, self._committed = self._committed, []
        _settle_all([(future, None, failure) for future, _, _ in outcomes + committed])
        _settle_all([(future, None, failure) for _, future in pending])

    def _start_checkpoint(self) -> None:
        """Copy the WAL into the database file, in two passes, on a thread of its own.

        The first pass copies what the WAL holds while commits and fsyncs go on: under
        load that is megabytes, and the database file's fsync, tens of milliseconds.
        The second copies what was committed meanwhile, little, with commits held: so
        that it copies every frame and the next commit starts the WAL over from its
        beginning, and the file stops growing. Held for the first pass too, every
        webhook would wait out the whole copy once a second. Units committed during
        the second pass wait for it, then for their fsync. (At the first commit after
        it SQLite itself syncs the new WAL header, on the loop: one short sync per
        checkpoint, at most one a second.)"""
        assert self._loop is not None
        self._copying = True
        self._last_checkpoint = time.monotonic()  # a failing checkpoint waits its turn too
        assert self._checkpoint_thread is not None
        self._checkpoint_thread.submit(self._checkpoint, self._copied)

    def _copied(self, error: BaseException | None) -> None:
        if error is not None or self._checkpoint_thread is None:
            self._copying = False
            log.warning("%s: checkpoint failed, the next one will retry: %s", self.name, error)
            return
        self._checkpointing = True  # the second pass: commits wait
        self._held_since = time.monotonic()
        self._checkpoint_thread.submit(self._checkpoint, self._checkpointed)

    def _checkpoint(self) -> None:
        """On the checkpoint thread: a PASSIVE checkpoint (``synchronous=NORMAL`` makes
        it fsync the WAL before copying and the database file after)."""
        if self._checkpoint_conn is None:
            self._checkpoint_conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self._checkpoint_conn.execute("PRAGMA synchronous=NORMAL")
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _checkpointed(self, error: BaseException | None) -> None:
        self._checkpointing = self._copying = False
        held = time.monotonic() - self._held_since
        if held >= SLOW_SECONDS:
            log.warning("%s: commits waited %.1fs for a checkpoint's last pass"
                        " (a slow or overloaded disk)", self.name, held)  # fmt: skip
        if error is None:
            self.checkpoints += 1
        else:
            log.warning("%s: checkpoint failed, the next one will retry: %s", self.name, error)
        if self._pending:
            self._schedule()


class _Worker:
    """A thread of its own that runs jobs in order and tells the loop of each end.

    In place of ``run_in_executor``, whose futures, chained across the threads, cost
    the loop more than the fsync's own hand-off at an fsync every few webhooks."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None], done: Callable[[BaseException | None], None]) -> None:
        """Run ``job`` on the thread, then ``done`` on the loop with its error (or None)."""
        self._jobs.put((job, done))

    def stop(self) -> None:
        """After the jobs already submitted (blocks: call it from a thread)."""
        self._jobs.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, done = item
            error: BaseException | None = None
            try:
                job()
            except BaseException as exc:  # reported to the loop, which decides
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(done, error)


_Job = tuple[Callable[[], None], Callable[[BaseException | None], None]]


def _is_busy(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse; nothing to do then
            os.fsync(fd)
    finally:
        os.close(fd)
