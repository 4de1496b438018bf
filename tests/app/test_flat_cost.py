"""Flat cost: the work a step does depends on what it carries, not on how big its
alert group or its storm digest already is. Counted in SQL statements and rows read,
on the real SQLite engine, through the same use cases the router runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from router.adapters.alertmanager import webhook as alertmanager
from router.adapters.store.sqlite import SqliteStore, SqliteTx
from router.app import incidents, paging, timers
from router.bootstrap import build_policy
from router.config import Secrets
from router.core.alerts import Alert
from router.core.commands import Command
from router.core.digest import PART_SIZE
from router.core.jobs import JobKind
from router.core.page import Decision
from router.core.policy import Policy
from tests.conftest import T0, am_alert, am_payload
from tests.harness import PRIMARY, router_config


@dataclass
class Counted:
    statements: int = 0
    rows: int = 0  # rows the store handed back (SELECT and RETURNING)


class CountingTx(SqliteTx):
    def __init__(self, conn: Any, counted: Counted) -> None:
        super().__init__(conn)
        self.counted = counted

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        rows = super()._rows(sql, params)
        self.counted.statements += 1
        self.counted.rows += len(rows)
        return rows

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        super()._many(sql, rows)
        self.counted.statements += 1


class Store:
    def __init__(self, inner: SqliteStore, policy: Policy) -> None:
        self.inner = inner
        self.policy = policy

    async def counted(self, unit: Any) -> tuple[Counted, Any]:
        """Run ``unit`` and count what it asked of the store."""
        counted = Counted()
        self.inner.transaction = lambda conn: CountingTx(conn, counted)  # type: ignore[method-assign]
        try:
            result = await self.inner.run(unit)
        finally:
            del self.inner.transaction
        return counted, result

    async def deliver(self, alerts: list[Alert], at: timedelta = timedelta()) -> Counted:
        now = T0 + at
        counted, _ = await self.counted(
            lambda tx: paging.record_deliveries(tx, [alerts], now, self.policy)
        )
        return counted


@pytest.fixture
async def make_store(tmp_path: Path) -> AsyncIterator[Any]:
    opened: list[SqliteStore] = []

    async def make(name: str, **config: Any) -> Store:
        inner = SqliteStore(str(tmp_path / f"{name}.db"))
        await inner.open()
        opened.append(inner)
        document = router_config(tmp_path, "http://127.0.0.1:1/api/", extra=config)
        secrets = Secrets(GITHUB_TOKEN="ghp_x" if "github" in config else None)
        policy = build_policy(document, secrets)
        assert policy is not None
        return Store(inner, policy)

    yield make
    for inner in opened:
        await inner.close()


def alerts(group: str, names: range, **labels: str) -> list[Alert]:
    payload = am_payload(
        groupKey=group, alerts=[am_alert(f"{group}-{i}", instance=f"h{i}", **labels) for i in names]
    )
    return alertmanager.parse(payload)


async def one_more_after(store: Store, size: int) -> Counted:
    """Rows a one-alert delivery reads once its group holds ``size`` alerts."""
    await store.deliver(alerts("g", range(size)))
    return await store.deliver(alerts("g", range(size, size + 1)), timedelta(seconds=1))


async def test_a_delivery_into_a_big_group_reads_what_the_page_shows_not_the_group(
    make_store: Any,
) -> None:
    small = await one_more_after(await make_store("small"), 30)
    big = await one_more_after(await make_store("big"), 3000)
    shown = 10  # paging.max_alerts_shown
    assert big.rows <= 2 * shown + 10, big
    assert (big.rows, big.statements) == (small.rows, small.statements)


async def decision_costs(store: Store, size: int) -> tuple[int, int, int]:
    """Rows read by an escalation, a declaration (with its tracking issue) and an
    announcement refresh, on a page of ``size`` critical alerts."""
    await store.deliver(alerts("g", range(size), severity="critical"))
    [page] = await store.inner.run(lambda tx: tx.pages())
    now = T0 + timedelta(seconds=301)  # the page's ack timeout is due
    claimed = await store.inner.run(lambda tx: tx.claim_jobs("w", now, 100, 60))
    [timer] = [j for j in claimed if j.kind is JobKind.TIMER]
    policy = store.policy
    escalate, _ = await store.counted(lambda tx: timers.fire_timer(tx, timer, "w", now, policy))
    declare, result = await store.counted(
        lambda tx: paging.decide(tx, page.key, Decision.DECLARE, PRIMARY, now, policy)
    )
    assert result.outcome.incident is not None
    issue = [j for j in result.outcome.jobs if j.kind is JobKind.GITHUB_ISSUE]
    assert len(issue) == 1 and f"{size} firing" in issue[0].payload["body"]
    command = Command("update", 1, text="rolling back")
    update, _ = await store.counted(
        lambda tx: incidents.incident_command(tx, command, PRIMARY, now, policy)
    )
    return escalate.rows, declare.rows, update.rows


async def test_declaring_escalating_and_the_announcement_read_a_bounded_view(
    make_store: Any,
) -> None:
    github = {"github": {"repo": "acme/incidents"}}
    small = await decision_costs(await make_store("small", **github), 30)
    big = await decision_costs(await make_store("big", **github), 3000)
    assert big == small
    assert max(big) <= 60, big


async def test_folding_the_thousandth_page_costs_what_the_two_hundredth_did(
    make_store: Any,
) -> None:
    """A fold renders its own part and the first (which counts the digest): at most two
    parts of lines, however many parts the digest already has."""
    store = await make_store("storm")
    folds = []
    for i in range(1000):
        counted = await store.deliver(alerts(f"g{i}", range(1)))
        folds.append(counted)
    [(folded,)] = await store.inner.run(
        lambda tx: tx._rows("SELECT count(*) FROM pages WHERE digest_key IS NOT NULL")
    )
    assert folded == 995
    # (line 995, 495 and 295: each the 95th of its part)
    assert folds[999] == folds[499] == folds[299], (folds[299], folds[499], folds[999])
    assert folds[999].rows <= 2 * PART_SIZE + 10


async def test_a_new_part_of_a_digest_does_not_reread_the_earlier_parts(
    make_store: Any,
) -> None:
    store = await make_store("parts")
    for i in range(206):
        counted = await store.deliver(alerts(f"g{i}", range(1)))
    # the 206th page is line 201 of the digest, the first of its third part: that part
    # (1 line) and the first (100 lines: it counts the digest) are rendered, no other
    assert PART_SIZE < counted.rows < PART_SIZE + 20, counted
    jobs = await store.inner.run(lambda tx: tx.jobs())
    parts = [j for j in jobs if j.kind is JobKind.SLACK_DM and j.key.startswith("digest:")]
    assert [j.payload.get("after") for j in parts] == [None, parts[0].key, parts[1].key]


async def test_a_page_stored_before_counts_were_kept_is_counted_once(make_store: Any) -> None:
    """Upgrading: a page from before migration 004 has no counts and its alerts no
    severity order. The first delivery counts and ranks it, once; then it is kept."""
    store = await make_store("old")
    await store.deliver(alerts("g", range(3), severity="warning"))
    await store.deliver(alerts("g", range(3, 4), severity="critical"), timedelta(seconds=1))
    [page] = await store.inner.run(lambda tx: tx.pages())
    old = page.model_copy(update={"counts": None, "version": page.version + 1})
    await store.inner.run(lambda tx: tx.save_page(old))
    await store.inner.run(lambda tx: tx._rows("UPDATE alerts SET severity_order = 0"))
    first = await store.deliver(alerts("g", range(4, 5), severity="info"), timedelta(seconds=2))
    [page] = await store.inner.run(lambda tx: tx.pages())
    assert page.counts is not None and (page.counts.firing, page.counts.resolved) == (5, 0)
    assert page.suggestion.severity.value == "critical"  # ranked again, the worst found
    again = await store.deliver(alerts("g", range(5, 6), severity="info"), timedelta(seconds=3))
    assert again.rows < first.rows  # the second delivery no longer counts the page
