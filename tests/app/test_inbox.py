"""The inbox: an accepted delivery is durable, and applied exactly once, in order.

Run on both engines (the ``engine`` fixture): the inbox processor of one router, of
two routers on one database, and one that fails half-way through a batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from router.adapters.alertmanager import webhook as alertmanager
from router.adapters.store import Store
from router.adapters.store.postgres import PostgresStore
from router.app.clock import FrozenClock
from router.app.inbox import InboxProcessor
from router.app.intake import Intake
from router.bootstrap import INBOX_PARSERS, build_policy
from router.config import Secrets
from router.metrics import Metrics
from tests.conftest import T0, am_alert, am_payload
from tests.harness import OPS, router_config


def delivery(group: str, *alerts: tuple[str, str]) -> bytes:
    """An Alertmanager body for ``group`` with (fingerprint, status) alerts."""
    payload = am_payload(
        groupKey=group, alerts=[am_alert(fp, status, instance=fp) for fp, status in alerts]
    )
    return json.dumps(payload).encode()


def processor(store: Store, tmp_path: Path, metrics: Metrics | None = None) -> InboxProcessor:
    config = router_config(tmp_path, "http://127.0.0.1:1/api/")
    policy = build_policy(config, Secrets())
    metrics = metrics or Metrics()
    intake = Intake(store, metrics, FrozenClock(T0), config.triage, policy)
    return InboxProcessor(store, intake, metrics, FrozenClock(T0), parsers=INBOX_PARSERS,
                          batch=8, operator_channel=OPS)  # fmt: skip


async def enqueue(inbox: InboxProcessor, *bodies: bytes) -> None:
    for body in bodies:
        checked = alertmanager.check_body(body)
        assert checked is not None
        await inbox._intake.enqueue("alertmanager", body, checked.statuses)


async def drain(*inboxes: InboxProcessor) -> int:
    applied = 0
    for _ in range(100):
        rounds = [await inbox.run_once() for inbox in inboxes]
        applied += sum(b.deliveries for b in rounds if not b.locked)
        if all(b.deliveries == 0 for b in rounds):
            return applied
    raise AssertionError("the inbox did not drain")


async def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = await store.run(lambda tx: tx._rows(sql))
    return found


async def test_deliveries_are_applied_once_in_the_order_they_came(
    engine: Store, tmp_path: Path
) -> None:
    inbox = processor(engine, tmp_path)
    await enqueue(
        inbox,
        delivery("g1", ("a", "firing")),
        delivery("g1", ("a", "resolved")),  # a status flip: a step of its own
        delivery("g1", ("a", "resolved"), ("b", "firing")),
        delivery("g2", ("c", "firing")),
    )
    assert await drain(inbox) == 4
    alerts = await rows(engine, "SELECT fingerprint, status, seen_count FROM alerts ORDER BY 1")
    assert alerts == [("a", "resolved", 3), ("b", "firing", 1), ("c", "firing", 1)]
    assert (await engine.run(lambda tx: tx.inbox_stats(T0))).pending == 0
    # g1: paged when a fired, then the page said so when it resolved, then b
    pages = await engine.run(lambda tx: tx.pages())
    assert sorted(p.group_key for p in pages) == ["g1", "g2"]
    [g1] = [p for p in pages if p.group_key == "g1"]
    assert g1.counts is not None and (g1.counts.firing, g1.counts.resolved) == (1, 1)
    assert await drain(inbox) == 0  # nothing again


async def test_a_batch_that_fails_half_way_is_applied_once_after(
    engine: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash this guards against: alerts recorded, then the transaction dies before
    it commits. Nothing of it stays; the deliveries wait and are applied once."""
    inbox = processor(engine, tmp_path)
    await enqueue(inbox, *(delivery(f"g{i}", (f"a{i}", "firing")) for i in range(5)))
    real = inbox._intake.process
    failures = iter([True, True])  # the batch, and its run alone (SQLite's fallback)

    def crashing(tx: Any, deliveries: Any, now: Any, **kw: Any) -> Any:
        result = real(tx, deliveries, now, **kw)  # everything written...
        if next(failures, False):
            raise RuntimeError("killed before the commit")  # ...and then lost
        return result

    monkeypatch.setattr(inbox._intake, "process", crashing)
    await inbox.run_once()
    assert await rows(engine, "SELECT count(*) FROM alerts") == [(0,)]
    assert (await engine.run(lambda tx: tx.inbox_stats(T0))).pending == 5
    assert await drain(inbox) == 5
    assert await rows(engine, "SELECT count(*), sum(seen_count) FROM alerts") == [(5, 5)]
    assert len(await engine.run(lambda tx: tx.pages())) == 5
    dms = [j for j in await engine.run(lambda tx: tx.jobs()) if j.kind.value == "slack.dm"]
    assert len(dms) == 5  # one page each: nothing twice


@pytest.fixture
def second_engine(engine: Store) -> Iterator[Store]:
    """Another router on the same database: a second store on PostgreSQL; on SQLite,
    whose file one process owns, a second processor on the same store."""
    if isinstance(engine, PostgresStore):
        yield PostgresStore(engine.conninfo, pool_size=2)
    else:
        yield engine


async def test_two_processors_on_one_database_apply_each_delivery_once(
    engine: Store, second_engine: Store, tmp_path: Path
) -> None:
    if second_engine is not engine:
        await second_engine.open()
    try:
        one, two = processor(engine, tmp_path), processor(second_engine, tmp_path)
        bodies = [delivery(f"g{i % 4}", (f"a{i}", "firing")) for i in range(40)]
        await enqueue(one, *bodies[::2])
        await enqueue(two, *bodies[1::2])
        assert await drain(one, two) == 40
        assert await rows(engine, "SELECT count(*), sum(seen_count) FROM alerts") == [(40, 40)]
        pages = await engine.run(lambda tx: tx.pages())
        assert sorted(p.group_key for p in pages) == ["g0", "g1", "g2", "g3"]
        assert all(p.counts is not None and p.counts.firing == 10 for p in pages)
    finally:
        if second_engine is not engine:
            await second_engine.close()


async def test_a_delivery_that_cannot_be_applied_is_set_aside_and_told(
    engine: Store, tmp_path: Path
) -> None:
    metrics = Metrics()
    inbox = processor(engine, tmp_path, metrics)
    await enqueue(inbox, delivery("g1", ("a", "firing")))
    await engine.run(lambda tx: tx.append_inbox("alertmanager", b"{not json", T0))
    await enqueue(inbox, delivery("g2", ("b", "firing")))
    await drain(inbox)
    await inbox.refresh_gauges()
    stats = await engine.run(lambda tx: tx.inbox_stats(T0))
    assert (stats.pending, stats.dead) == (0, 1)
    assert metrics.registry.get_sample_value("router_inbox_dead_deliveries") == 1
    assert await rows(engine, "SELECT count(*) FROM alerts") == [(2,)]
    notices = [j for j in await engine.run(lambda tx: tx.jobs()) if j.key.startswith("inbox:")]
    assert len(notices) == 1 and notices[0].payload["channel"] == OPS
    assert "could not be processed" in notices[0].payload["text"]


async def digest_dm_texts(store: Store) -> list[str]:
    """The storm digest as its DM (and edits) would show it: the newest state of each
    part, as queued in the outbox."""
    found: list[tuple[str, str]] = await store.run(
        lambda tx: tx._rows(
            "SELECT key, payload FROM jobs WHERE key LIKE ? AND kind IN"
            " ('slack.dm', 'slack.update') ORDER BY id",
            ("digest:%",),
        )
    )
    newest: dict[str, str] = {}
    for key, payload in found:
        document = json.loads(payload)
        target = document.get("target", key)
        newest[target] = json.dumps(document.get("blocks", [])) + document.get("text", "")
    return list(newest.values())


async def test_in_a_storm_a_digest_is_rendered_once_for_many_batches(
    engine: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While webhooks keep arriving (batches with a limit), a digest part is rendered
    at most every ``render_seconds``, not after each batch; the first batch after them
    without a limit renders what they changed, once, and the digest lists every page."""
    from router.app import paging

    renders: list[int] = []
    real = paging.refresh_digests

    def counted(tx: Any, changed: Any, now: Any, policy: Any) -> None:
        renders.append(len(changed))
        real(tx, changed, now, policy)

    monkeypatch.setattr(paging, "refresh_digests", counted)
    inbox = processor(engine, tmp_path)
    inbox._render = 3600.0  # the storm below lasts far less than that
    await enqueue(inbox, *(delivery(f"storm-{i}", (f"inst-{i:03d}", "firing")) for i in range(30)))
    for _ in range(30):
        batch = await inbox.run_once(limit=1)  # the way the processor runs in a storm
        assert batch.deliveries == 1
    # The first batch rendered (nothing was folded yet); the rest only marked.
    assert renders == []
    stale = await engine.run(lambda tx: tx.stale_digests())
    assert stale  # the folded pages' part waits for its render
    assert (await inbox.run_once()).deliveries == 0  # webhooks stopped: render now
    assert renders == [len(stale)]
    assert await engine.run(lambda tx: tx.stale_digests()) == set()
    [text] = await digest_dm_texts(engine)
    for i in range(5, 30):  # storm_limit 5: the rest were folded, every one listed
        assert f"inst-{i:03d}" in text


async def test_a_digest_left_stale_by_a_crash_is_rendered_after_the_restart(
    engine: Store, tmp_path: Path
) -> None:
    inbox = processor(engine, tmp_path)
    inbox._render = 3600.0
    await enqueue(inbox, *(delivery(f"storm-{i}", (f"inst-{i:03d}", "firing")) for i in range(12)))
    for _ in range(12):
        await inbox.run_once(limit=1)
    assert await engine.run(lambda tx: tx.stale_digests())
    # The process dies here; a new one starts on the same store.
    restarted = processor(engine, tmp_path)
    assert await drain(restarted) == 0
    assert await engine.run(lambda tx: tx.stale_digests()) == set()
    [text] = await digest_dm_texts(engine)
    for i in range(5, 12):
        assert f"inst-{i:03d}" in text


async def test_a_digest_that_cannot_be_rendered_holds_up_no_delivery(
    engine: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in rendering a digest part: every delivery is still applied (none set
    aside), the part stays marked, and it is rendered once the bug is gone."""
    from router.app import paging

    real = paging.refresh_digests

    def broken(*args: Any) -> None:
        raise RuntimeError("a bug in the digest's render")

    monkeypatch.setattr(paging, "refresh_digests", broken)
    inbox = processor(engine, tmp_path)
    await enqueue(inbox, *(delivery(f"storm-{i}", (f"inst-{i:03d}", "firing")) for i in range(9)))
    assert await drain(inbox) == 9
    assert await rows(engine, "SELECT count(*) FROM alerts") == [(9,)]
    assert await rows(engine, "SELECT count(*) FROM inbox") == [(0,)]  # none set aside
    assert await engine.run(lambda tx: tx.stale_digests())
    monkeypatch.setattr(paging, "refresh_digests", real)
    await inbox.run_once()
    assert await engine.run(lambda tx: tx.stale_digests()) == set()
    [text] = await digest_dm_texts(engine)
    for i in range(5, 9):
        assert f"inst-{i:03d}" in text


async def test_webhooks_get_most_of_the_loop_until_deliveries_wait_too_long(
    engine: Store, tmp_path: Path
) -> None:
    """The pause after a batch while webhooks arrive: nineteen times the batch's work,
    its digest render included (a twentieth of the loop for the processor), down to as
    long as the work once the oldest delivery of the batch waited ten seconds (half the
    loop: it catches up)."""
    from router.app.inbox import Batch

    inbox = processor(engine, tmp_path)
    fresh = Batch(deliveries=3, busy=0.002, lags=[0.5, 2.0, 9.9])
    assert inbox.pause_after(fresh) == pytest.approx(0.038)
    late = Batch(deliveries=3, busy=0.002, lags=[0.5, 10.0, 3.0])
    assert inbox.pause_after(late) == pytest.approx(0.002)
    # A digest rendered after the batch is counted with its work.
    rendered = Batch(deliveries=3, busy=0.002, rendering=0.001, lags=[0.5])
    assert inbox.pause_after(rendered) == pytest.approx(0.057)


async def test_batches_are_cut_to_a_slice_of_work(engine: Store, tmp_path: Path) -> None:
    """While webhooks arrive, a batch is about 2 ms of work; when they stop, about 50 ms,
    so that a backlog of big deliveries (fifty alerts each) never holds the loop for
    long; always at least one delivery, at most the batch size (8 here)."""
    inbox = processor(engine, tmp_path)
    inbox._per_delivery = 0.01  # 10 ms a delivery, lately
    assert (inbox._slice_limit(True), inbox._slice_limit(False)) == (1, 5)
    inbox._per_delivery = 0.0002
    assert (inbox._slice_limit(True), inbox._slice_limit(False)) == (8, 8)
    inbox._per_delivery = 0.001
    assert (inbox._slice_limit(True), inbox._slice_limit(False)) == (2, 8)
