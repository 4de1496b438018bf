"""The console's reads (router.adapters.store.reads) on both engines: bounded, filtered by the
columns migration 007 adds, and those columns filled for what was stored before it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from router.adapters.store import Store, open_store
from router.adapters.store.migrations import migrations
from router.core.incident import Incident
from router.core.page import Page, PageStatus
from router.core.severity import Severity, Suggestion
from tests.conftest import T0, _postgres_available, postgres_url, skip_unless_ci

LOW = Suggestion(severity=Severity.LOW, clause="no current or known customer impact")
HIGH = Suggestion(
    severity=Severity.HIGH,
    clause="partial outage of some production functionality or in some regions",
)


def page(key: str, *, minutes: int = 0, **fields: Any) -> Page:
    return Page(key=key, group_key=f"g-{key}", source="alertmanager", title=f"{key} on web-1",
                opened_at=T0 + timedelta(minutes=minutes), suggestion=LOW,
                **fields)  # fmt: skip


def incident(number: int, **fields: Any) -> Incident:
    values: dict[str, Any] = {
        "title": f"incident {number}", "commander": "U0ONE", "severity": Severity.HIGH,
        "severity_reason": HIGH.clause, "suggestion": HIGH, "declared_at": T0,
        "declared_by": "U0ONE", "announce_job": f"incident:{number}:announce",
    } | fields  # fmt: skip
    return Incident(number=number, **values)


async def test_reads_filter_and_bound(engine: Store) -> None:
    decided = page("DiskFull", status=PageStatus.DISMISSED, active=False, alert_name="DiskFull",
                   decided_by="U0ONE", decided_at=T0 + timedelta(minutes=7),
                   reason="false positive")  # fmt: skip
    opened = [page(f"Storm{i}", minutes=i, alert_name=f"Storm{i}") for i in range(5)]

    def write(tx: Any) -> None:
        for p in (decided, *opened):
            tx.insert_page(p)
        tx.insert_incident(incident(1))
        tx.insert_incident(incident(2, commander="U0TWO", severity=Severity.LOW,
                                    confidential=True))  # fmt: skip

    await engine.run(write)
    shown = await engine.run(lambda tx: tx.open_pages(limit=3))
    assert [p.key for p in shown] == ["Storm4", "Storm3", "Storm2"]
    assert await engine.run(lambda tx: tx.open_page_count()) == 5
    hour = (T0.timestamp(), (T0 + timedelta(hours=1)).timestamp())
    counts = await engine.run(lambda tx: tx.page_counts(*hour))
    assert sorted(counts) == [("DiskFull", "dismissed", 1)] + [
        (f"Storm{i}", "open", 1) for i in range(5)
    ]
    reasons = await engine.run(lambda tx: tx.dismiss_reasons(*hour))
    assert reasons == [("DiskFull", "false positive", 1)]
    [disk] = await engine.run(lambda tx: tx.decided_pages(*hour))
    assert (disk.alert_name, disk.status, disk.decided_at - disk.opened_at) == (
        "DiskFull", "dismissed", 420,
    )  # fmt: skip
    day = int(T0.timestamp() // 86400)
    days = await engine.run(lambda tx: tx.page_days(*hour))
    assert sorted(days) == [(day, "dismissed", 1), (day, "open", 5)]
    one = await engine.run(lambda tx: tx.page_days(*hour, "Storm2"))
    assert one == [(day, "open", 1)]
    # a page opened a second before midnight is on that day, on both engines
    late = page("Late", minutes=14 * 60 - 1, alert_name="Late")  # T0 is 10:00
    await engine.run(lambda tx: tx.insert_page(late.model_copy(
        update={"opened_at": late.opened_at + timedelta(seconds=59)})))  # fmt: skip
    late_days = await engine.run(lambda tx: tx.page_days(*hour[:1], 2e9, "Late"))
    assert late_days == [(day, "open", 1)]

    async def listed(**query: Any) -> list[int]:
        args = {"statuses": None, "severity": None, "commander": None, "since": None} | query
        found = await engine.run(lambda tx: tx.console_incidents(**args))
        return [item.incident.number for item in found]

    assert await listed() == [2, 1]
    assert await listed(severity="low") == [2]
    assert await listed(commander="U0ONE") == [1]
    assert await listed(statuses=("resolved",)) == []
    assert await listed(limit=1) == [2]
    # a change of severity or commander is what the list filters on next time
    moved = incident(1, commander="U0TWO", severity=Severity.CRITICAL, version=1)
    await engine.run(lambda tx: tx.save_incident(moved))
    assert await listed(commander="U0TWO") == [2, 1]
    assert await listed(severity="critical") == [1]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A database from before migration 007 and a way to run SQL in it: (url, execute)."""
    old = [m for m in migrations(request.param) if m[0] < 7]
    if request.param == "sqlite":
        import sqlite3

        conn = sqlite3.connect(tmp_path / "old.db")
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                     " name TEXT NOT NULL, applied_at TEXT NOT NULL)")  # fmt: skip
        for version, file, sql in old:
            conn.executescript(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'x')", (version, file))

        def run(sql: str, params: tuple[Any, ...]) -> None:
            conn.execute(sql, params)
            conn.commit()

        yield f"sqlite:///{tmp_path}/old.db", run
        conn.close()
        return
    if not _postgres_available():
        skip_unless_ci(f"no PostgreSQL at {postgres_url()}")
    schema = "router_test_" + uuid.uuid4().hex[:12]
    url = f"{postgres_url()}{'&' if '?' in postgres_url() else '?'}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    pg = psycopg.connect(url, autocommit=True)
    pg.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
               " name TEXT NOT NULL, applied_at TEXT NOT NULL)")  # fmt: skip
    for version, file, sql in old:
        pg.execute(sql.encode())
        pg.execute("INSERT INTO schema_migrations VALUES (%s, %s, 'x')", (version, file))
    try:
        yield url, lambda sql, params: pg.execute(sql.replace("?", "%s"), params)
    finally:
        pg.close()
        with psycopg.connect(postgres_url(), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_migration_007_fills_the_console_columns(old_database: tuple[str, Any]) -> None:
    url, execute = old_database
    dismissed = page(
        "DiskFull",
        status=PageStatus.DISMISSED,
        active=False,
        decided_by="U0ONE",
        decided_at=T0 + timedelta(minutes=7),
        reason="planned maintenance",
    )
    execute(
        "INSERT INTO pages (key, group_key, status, active, opened_at, state, version)"
        " VALUES (?, ?, 'dismissed', 0, ?, ?, 0)",
        (dismissed.key, dismissed.group_key, T0.timestamp(),
         dismissed.model_dump_json(exclude={"alert_name"})),
    )  # fmt: skip
    old = incident(1, commander="U0OLD", severity=Severity.CRITICAL)
    execute(
        "INSERT INTO incidents (number, status, declared_at, state, version)"
        " VALUES (1, 'active', ?, ?, 0)",
        (T0.timestamp(), old.model_dump_json(exclude={"confidential"})),
    )
    store = open_store(url)
    await store.open()
    try:
        window = (T0.timestamp(), 2e9)
        counts = await store.run(lambda tx: tx.page_counts(*window))
        assert counts == [("DiskFull", "dismissed", 1)]  # named from its title
        reasons = await store.run(lambda tx: tx.dismiss_reasons(*window))
        assert reasons == [("DiskFull", "planned maintenance", 1)]
        [decision] = await store.run(lambda tx: tx.decided_pages(*window))
        assert round(decision.decided_at - decision.opened_at) == 420
        found = await store.run(
            lambda tx: tx.console_incidents(
                statuses=None, severity="critical", commander="U0OLD", since=None
            )
        )
        assert [i.incident.number for i in found] == [1]
        assert found[0].incident.confidential is False
    finally:
        await store.close()


async def test_migration_007_upgrades_a_database_holding_a_nul_in_a_title(
    old_database: tuple[str, Any],
) -> None:
    """A label may carry a NUL; its page's stored state keeps it as the escape \\u0000,
    which PostgreSQL's jsonb refuses. The upgrade must still go through."""
    url, execute = old_database
    odd = page("DiskNul", decided_at=T0 + timedelta(minutes=1), reason="x\x00y").model_copy(
        update={"title": "Disk\x00Full on web-1"}
    )
    assert "\\u0000" in odd.model_dump_json()
    execute(
        "INSERT INTO pages (key, group_key, status, active, opened_at, state, version)"
        " VALUES (?, ?, 'open', 1, ?, ?, 0)",
        (odd.key, odd.group_key, T0.timestamp(), odd.model_dump_json(exclude={"alert_name"})),
    )
    clean = page("DiskFull")
    execute(
        "INSERT INTO pages (key, group_key, status, active, opened_at, state, version)"
        " VALUES (?, ?, 'open', 1, ?, ?, 0)",
        (clean.key, clean.group_key, T0.timestamp(), clean.model_dump_json(exclude={"alert_name"})),
    )
    titled = incident(1, commander="U0OLD", severity=Severity.HIGH).model_copy(
        update={"title": "Disk\x00Full on db-1"}
    )
    execute(
        "INSERT INTO incidents (number, status, declared_at, state, version)"
        " VALUES (1, 'active', ?, ?, 0)",
        (T0.timestamp(), titled.model_dump_json(exclude={"confidential"})),
    )
    store = open_store(url)
    await store.open()  # migration 007 runs here
    try:
        counts = await store.run(lambda tx: tx.page_counts(T0.timestamp(), 2e9))
        assert ("DiskFull", "open", 1) in counts  # the clean row is filled as before
        stored = await store.run(lambda tx: tx.incident(1))
        assert stored is not None and stored.title == "Disk\x00Full on db-1"
    finally:
        await store.close()


async def test_every_console_read_is_an_index_read_on_sqlite(tmp_path: Path) -> None:
    """No console read walks a whole table: each statement's plan uses an index."""
    store = open_store(f"sqlite:///{tmp_path}/plans.db")
    await store.open()
    statements: list[tuple[str, tuple[Any, ...]]] = []

    def unit(tx: Any) -> list[list[str]]:
        original = tx._rows

        def recording(sql: str, params: Any = ()) -> Any:
            statements.append((sql, tuple(params)))
            return original(sql, params)

        tx._rows = recording
        try:
            tx.page_counts(0, 1)
            tx.dismiss_reasons(0, 1)
            tx.page_days(0, 1)
            tx.page_days(0, 1, "DiskFull")
            tx.decided_pages(0, 1)
            tx.open_pages(5)
            tx.open_page_count()
            tx.incident_times(0, 1)
            tx.console_incidents(statuses=None, severity=None, commander=None, since=None)
            tx.job_results(["a", "b"])
            tx.incident_actors([1, 2])
            tx.pages_by_key(["p1"])
        finally:
            tx._rows = original
        return [
            [row[3] for row in original("EXPLAIN QUERY PLAN " + sql, params)]
            for sql, params in statements
        ]

    try:
        plans = await store.run(unit)
    finally:
        await store.close()
    assert len(plans) == 12
    for (sql, _), plan in zip(statements, plans, strict=True):
        walks = [step for step in plan if step.startswith("SCAN") and "INDEX" not in step]
        assert not walks, f"{sql}: {plan}"
