"""The SQLite engine's own promises, beyond the shared contract (test_store_contract).

Units run on the event loop; the WAL is fsynced on a thread. These tests hold that
fsync in place (``store.fsync`` is injectable) to check the order of events: when a
caller is answered, what may run meanwhile, and what happens when the disk fails or
another process holds the database.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from router.adapters.store import StoreError
from router.adapters.store.sql import SqlTx
from router.adapters.store.sqlite import SqliteStore
from tests.waiting import eventually

T = TypeVar("T")


class HeldFsync:
    """An fsync that blocks until released, counting the calls that began."""

    def __init__(self) -> None:
        self.began = 0
        self._gate = threading.Semaphore(0)
        self._started = threading.Semaphore(0)

    def __call__(self, fd: int) -> None:
        self.began += 1
        self._started.release()
        self._gate.acquire()

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self._started.acquire, True, 5.0), "no fsync began"

    def release(self, times: int = 1) -> None:
        self._gate.release(times)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    engine = SqliteStore(str(tmp_path / "engine.db"))
    await engine.open()
    engine.checkpoint_seconds = 3600.0  # no checkpoint unless a test asks for one
    yield engine
    await engine.close()


@pytest.fixture
async def held(store: SqliteStore) -> AsyncIterator[HeldFsync]:
    fsync = HeldFsync()
    store.fsync = fsync
    yield fsync
    fsync.release(1000)  # a failed test must not leave the store's close waiting


def insert(value: str) -> Callable[[SqlTx], None]:
    def unit(tx: SqlTx) -> None:
        tx._rows(
            "INSERT INTO deliveries (source, delivery_id, received_at) VALUES (?, ?, 0)",
            ("t", value),
        )

    return unit


def count(tx: SqlTx) -> int:
    row = tx._one("SELECT count(*) FROM deliveries")
    assert row is not None
    return int(row[0])


async def test_a_slow_fsync_is_logged(
    store: SqliteStore, held: HeldFsync, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from router.adapters.store import sqlite

    monkeypatch.setattr(sqlite, "SLOW_SECONDS", 0.05)
    write = asyncio.create_task(store.run(insert("a")))
    await held.wait_started()
    await asyncio.sleep(0.1)
    held.release()
    await asyncio.wait_for(write, 5)
    [record] = [r for r in caplog.records if "fsync of the WAL took" in r.getMessage()]
    assert record.levelname == "WARNING"
    assert "1 units waited" in record.getMessage()


async def a_moment() -> None:
    """Only before asserting that something has *not* happened (an answer held back):
    give the loop and the store's threads a chance to do what they must not. An effect
    that must happen is waited for with ``eventually``."""
    for _ in range(20):
        await asyncio.sleep(0.005)


def recorded(unit: Callable[[SqlTx], T], seen: list[T]) -> Callable[[SqlTx], T]:
    """``unit``, noting in ``seen`` what it returned once it ran (before its answer)."""

    def run(tx: SqlTx) -> T:
        result = unit(tx)
        seen.append(result)
        return result

    return run


async def test_a_write_is_answered_only_after_its_fsync(
    store: SqliteStore, held: HeldFsync
) -> None:
    write = asyncio.create_task(store.run(insert("a")))
    await held.wait_started()
    await a_moment()
    assert not write.done()  # committed, but not durable yet: no answer
    held.release()
    await asyncio.wait_for(write, 5)
    assert await store.run(count) == 1


@pytest.mark.parametrize("checkpoint_due", [False, True])
async def test_commits_go_on_during_an_fsync_and_wait_for_the_next(
    store: SqliteStore, held: HeldFsync, checkpoint_due: bool
) -> None:
    if checkpoint_due:  # a checkpoint follows this fsync: commits still go on during it
        store.checkpoint_seconds = 0.0
    first = asyncio.create_task(store.run(insert("a")))
    await held.wait_started()
    ran: list[str] = []

    def second_unit(tx: SqlTx) -> None:
        insert("b")(tx)
        ran.append("b")

    second = asyncio.create_task(store.run(second_unit))
    # the loop did not wait for the disk to run it
    await eventually(lambda: ran == ["b"], within=5, what='"b" committing during the fsync')
    assert held.began == 1  # one fsync at a time
    held.release()
    await asyncio.wait_for(first, 5)
    # The running fsync began before "b" committed, so it does not cover "b".
    await held.wait_started()
    await a_moment()
    assert not second.done()
    assert held.began == 2
    held.release()
    await asyncio.wait_for(second, 5)


async def test_a_read_waits_until_what_it_saw_is_durable(
    store: SqliteStore, held: HeldFsync
) -> None:
    write_a = asyncio.create_task(store.run(insert("a")))
    await held.wait_started()  # "a" committed, its fsync running
    seen: list[int] = []
    read_a = asyncio.create_task(store.run(recorded(count, seen)))  # sees "a"
    await eventually(lambda: seen == [1], within=5, what='the read of "a"')
    wrote: list[None] = []
    write_b = asyncio.create_task(store.run(recorded(insert("b"), wrote)))  # during the fsync
    await eventually(lambda: wrote, within=5, what='"b" committing')
    read_b = asyncio.create_task(store.run(recorded(count, seen)))  # sees "b": not covered
    await eventually(lambda: seen == [1, 2], within=5, what='the read of "b"')
    await a_moment()
    assert not read_a.done() and not read_b.done()
    held.release()
    assert await asyncio.wait_for(read_a, 5) == 1  # answered with the fsync of "a"
    await write_a
    await held.wait_started()  # the next fsync, for "b" and what read it
    await a_moment()
    assert not read_b.done()
    held.release()
    assert await asyncio.wait_for(read_b, 5) == 2
    await write_b
    # With everything durable, a read is answered without an fsync.
    began = held.began
    assert await asyncio.wait_for(store.run(count), 5) == 2
    assert held.began == began == 2


async def test_a_failed_fsync_stops_all_acknowledgements(store: SqliteStore) -> None:
    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    store.fsync = broken
    with pytest.raises(StoreError, match="fsync of the WAL failed"):
        await store.run(insert("a"))
    # Even with the disk back, nothing is acknowledged until a restart: after a failed
    # fsync the kernel may have dropped the pages, so a later fsync proves nothing.
    store.fsync = lambda fd: None
    with pytest.raises(StoreError, match="fsync of the WAL failed"):
        await store.run(insert("b"))
    with pytest.raises(StoreError):
        await store.ping()


async def test_another_writer_does_not_block_the_loop(store: SqliteStore) -> None:
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write lock, held by another connection
    try:
        write = asyncio.create_task(store.run(insert("a")))
        ticks = 0
        for _ in range(10):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 10  # the loop kept turning
        assert not write.done()
    finally:
        other.execute("COMMIT")
        other.close()
    await asyncio.wait_for(write, 5)
    assert await store.run(count) == 1


async def test_a_lock_held_too_long_answers_store_error(store: SqliteStore) -> None:
    store.busy_seconds = 0.1
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked by another writer"):
            await asyncio.wait_for(store.run(insert("a")), 5)
    finally:
        other.execute("ROLLBACK")
        other.close()
    await store.run(insert("b"))  # the lock gone, the store works again


async def test_checkpoints_keep_the_wal_small(store: SqliteStore) -> None:
    store.checkpoint_seconds = 0.0  # after every fsync
    for i in range(300):
        await store.run(insert(f"{i:04d}-" + "x" * 200))
    # A checkpoint's first pass overlaps the next commits: not one a commit, but many.
    assert store.checkpoints >= 100
    wal = await asyncio.to_thread(os.path.getsize, store.path + "-wal")
    # Each checkpoint copies every frame, so the WAL starts over instead of growing:
    # without checkpoints these 300 commits leave a WAL of about 3.6 MB.
    assert wal < 512 * 1024
    # What was checkpointed is in the database file, readable without the WAL.
    check = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        assert check.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 300
    finally:
        check.close()


class HeldCheckpoint:
    """The store's checkpoint, each pass held until released; counts passes begun."""

    def __init__(self, store: SqliteStore) -> None:
        self.began = 0
        self._real = store._checkpoint
        self._gate = threading.Semaphore(0)
        self._started = threading.Semaphore(0)

    def __call__(self) -> None:
        self.began += 1
        self._started.release()
        self._gate.acquire()
        self._real()

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self._started.acquire, True, 5.0), "no pass began"

    def release(self) -> None:
        self._gate.release()


async def test_commits_wait_only_for_a_checkpoints_last_pass(store: SqliteStore) -> None:
    checkpoint = HeldCheckpoint(store)
    store._checkpoint = checkpoint  # type: ignore[method-assign]
    store.checkpoint_seconds = 0.0
    try:
        await store.run(insert("a"))  # its fsync ends: a checkpoint begins
        await checkpoint.wait_started()
        # The first pass copies the bulk of the WAL: commits and fsyncs go on.
        await asyncio.wait_for(store.run(insert("b")), 5)
        assert checkpoint.began == 1
        checkpoint.release()
        await checkpoint.wait_started()  # the second pass, for what came meanwhile
        held_back = asyncio.create_task(store.run(insert("c")))
        await a_moment()
        assert not held_back.done()  # commits wait, so that every frame is copied
        checkpoint.release()
        await asyncio.wait_for(held_back, 5)
        assert store.checkpoints == 1  # (c's own fsync may begin the next one)
    finally:
        for _ in range(10):
            checkpoint.release()
    assert await store.run(count) == 3


async def test_close_answers_work_still_waiting(tmp_path: Path) -> None:
    engine = SqliteStore(str(tmp_path / "closing.db"))
    await engine.open()
    held = HeldFsync()
    engine.fsync = held
    write = asyncio.create_task(engine.run(insert("a")))
    await held.wait_started()
    closing = asyncio.create_task(engine.close())
    await a_moment()
    assert not closing.done()  # close waits for the fsync under way
    held.release()
    await asyncio.wait_for(closing, 5)
    await write  # answered, not abandoned
    with pytest.raises(StoreError, match="not open"):
        await engine.run(count)


async def test_each_fsync_reaches_the_wal_sqlite_writes(store: SqliteStore) -> None:
    synced: list[int] = []
    store.fsync = lambda fd: synced.append(os.fstat(fd).st_ino)
    for value in ("a", "b", "c"):
        await store.run(insert(value))
    wal = await asyncio.to_thread(os.stat, store.path + "-wal")
    assert len(synced) == 3  # one a write, each answered after its own
    assert set(synced) == {wal.st_ino}


async def test_open_makes_what_an_earlier_run_left_durable(tmp_path: Path) -> None:
    # A run that crashed while waiting for its fsync leaves committed, unsynced frames
    # in the WAL. Reads must not be answered from them before they are made durable.
    engine = SqliteStore(str(tmp_path / "reopened.db"))
    synced: list[int] = []
    engine.fsync = synced.append
    await engine.open()
    try:
        assert len(synced) == 1  # at open, before anything could be read
        assert await engine.run(count) == 0
        assert len(synced) == 1  # nothing written since: reads need no other fsync
    finally:
        await engine.close()


class Abort(BaseException):
    """Not an Exception: what KeyboardInterrupt or a stray cancellation looks like."""


async def test_a_unit_raising_a_base_exception_leaves_the_store_working(
    store: SqliteStore,
) -> None:
    def aborting(tx: SqlTx) -> None:
        insert("lost")(tx)
        raise Abort

    loop = asyncio.get_running_loop()
    seen: list[BaseException] = []
    loop.set_exception_handler(lambda _, context: seen.append(context["exception"]))
    try:
        neighbour = asyncio.create_task(store.run(insert("neighbour")))
        aborted = asyncio.create_task(store.run(aborting))
        results = await asyncio.wait_for(
            asyncio.gather(neighbour, aborted, return_exceptions=True), 5
        )
    finally:
        loop.set_exception_handler(None)
    assert all(isinstance(r, StoreError) for r in results)  # both answered, not left
    assert any(isinstance(e, Abort) for e in seen)  # and the Abort went on up
    await store.run(insert("after"))  # no transaction left open
    assert await store.run(count) == 1


async def test_the_fallback_waits_briefly_for_another_writer(store: SqliteStore) -> None:
    # A batch fails, so each unit runs alone; another process takes the write lock in
    # that gap and holds it for 10 ms. The healthy unit must still be committed.
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    rollback = store.rollback

    def rollback_then_lock(conn: sqlite3.Connection) -> None:
        rollback(conn)
        if not other.in_transaction:
            other.execute("BEGIN IMMEDIATE")
            threading.Timer(0.01, lambda: other.execute("COMMIT")).start()

    store.rollback = rollback_then_lock  # type: ignore[method-assign]

    def failing(tx: SqlTx) -> None:
        raise ValueError("a bug in this unit")

    try:
        healthy = asyncio.create_task(store.run(insert("healthy")))
        broken = asyncio.create_task(store.run(failing))
        results = await asyncio.wait_for(asyncio.gather(healthy, broken, return_exceptions=True), 5)
    finally:
        store.rollback = rollback  # type: ignore[method-assign]
        # the other writer's COMMIT (on its timer thread) before its connection closes
        await eventually(lambda: not other.in_transaction, within=5, what="the other COMMIT")
        other.close()
    assert results[0] is None
    assert isinstance(results[1], ValueError)
    assert await store.run(count) == 1
