"""The store contract, run against both engines (design rule 5).

PostgreSQL tests use the server at ROUTER_TEST_POSTGRES_URL (default: the local
127.0.0.1:5432 database ``test``), each test in a schema of its own, dropped after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from router.alerts import AlertStatus
from router.jobs import Job, JobKind, JobStatus
from router.sources import alertmanager
from router.store import Store, open_store
from tests.conftest import T0, am_alert, am_payload, postgres_url, skip_unless_ci


def _postgres_available() -> bool:
    try:
        psycopg.connect(postgres_url(), connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path}/contract.db")
        await store.open()
        yield store
        await store.close()
        return
    if not _postgres_available():
        skip_unless_ci(f"no PostgreSQL at {postgres_url()}")
    schema = "router_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url() else "?"
    store = open_store(f"{postgres_url()}{separator}options=-csearch_path%3D{schema}")
    await store.open()
    yield store
    await store.close()
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_record_alerts_is_idempotent_and_tracks_changes(engine: Store) -> None:
    firing = alertmanager.parse(am_payload(alerts=[am_alert("a"), am_alert("b")]))
    first = await engine.run(lambda tx: tx.record_alerts(firing, T0))
    again = await engine.run(lambda tx: tx.record_alerts(firing, T0))
    resolved = alertmanager.parse(am_payload(alerts=[am_alert("a", "resolved")]))
    third = await engine.run(lambda tx: tx.record_alerts(resolved, T0))
    assert [r.change.value for r in first] == ["new", "new"]
    assert [r.change.value for r in again] == ["repeat", "repeat"]
    assert [r.change.value for r in third] == ["resolved"]
    assert first[0].id == third[0].id
    assert await engine.run(lambda tx: tx.count_alerts()) == 2
    assert await engine.run(lambda tx: tx.count_alerts(AlertStatus.RESOLVED)) == 1


async def test_large_deliveries_are_recorded_in_chunks_and_keep_their_order(
    engine: Store,
) -> None:
    # More alerts than one statement takes (500): the chunks must join up.
    names = [f"fp{i:04d}" for i in range(1200)]
    firing = alertmanager.parse(am_payload(alerts=[am_alert(n) for n in names]))
    first = await engine.run(lambda tx: tx.record_alerts(firing, T0))
    assert [r.alert.fingerprint for r in first] == names  # the delivery's order
    assert {r.change.value for r in first} == {"new"}
    assert len({r.id for r in first}) == 1200
    # Half resolve, half resent: one delivery, known rows found across the chunks.
    mixed = alertmanager.parse(
        am_payload(
            alerts=[am_alert(n, "resolved" if i % 2 else "firing") for i, n in enumerate(names)]
        )
    )
    second = await engine.run(lambda tx: tx.record_alerts(mixed, T0 + timedelta(minutes=1)))
    assert [r.id for r in second] == [r.id for r in first]
    assert [r.change.value for r in second] == ["repeat", "resolved"] * 600
    assert await engine.run(lambda tx: tx.count_alerts(AlertStatus.RESOLVED)) == 600
    [(seen,)] = await engine.run(
        lambda tx: tx._rows("SELECT DISTINCT seen_count FROM alerts WHERE fingerprint = 'fp0001'")
    )
    assert seen == 2


async def test_new_and_known_alerts_and_repeats_in_one_delivery(engine: Store) -> None:
    known = alertmanager.parse(am_payload(alerts=[am_alert("a")]))
    await engine.run(lambda tx: tx.record_alerts(known, T0))
    # "b" is new and comes twice, first firing then resolved; "a" is known.
    delivery = alertmanager.parse(
        am_payload(alerts=[am_alert("b"), am_alert("a"), am_alert("b", "resolved")])
    )
    other_group = alertmanager.parse(am_payload(groupKey="{}:{other}", alerts=[am_alert("a")]))
    recorded = await engine.run(lambda tx: tx.record_alerts(delivery + other_group, T0))
    assert [r.change.value for r in recorded] == ["new", "repeat", "resolved", "new"]
    assert recorded[0].id == recorded[2].id
    assert recorded[3].id not in {r.id for r in recorded[:3]}  # same fingerprint, other group
    assert await engine.run(lambda tx: tx.count_alerts()) == 3
    assert await engine.run(lambda tx: tx.count_alerts(AlertStatus.RESOLVED)) == 1


async def test_alerts_round_trip(engine: Store) -> None:
    alerts = alertmanager.parse(am_payload())
    await engine.run(lambda tx: tx.record_alerts(alerts, T0))
    stored = await engine.run(lambda tx: tx.alerts_in_group(alerts[0].group_key))
    assert stored == alerts


async def test_deliveries_are_remembered(engine: Store) -> None:
    assert await engine.run(lambda tx: tx.remember_delivery("pagerduty", "w1", T0)) is True
    assert await engine.run(lambda tx: tx.remember_delivery("pagerduty", "w1", T0)) is False
    assert await engine.run(lambda tx: tx.remember_delivery("other", "w1", T0)) is True


async def test_a_failing_unit_commits_nothing(engine: Store) -> None:
    def unit(tx: object) -> None:
        tx.remember_delivery("s", "x", T0)  # type: ignore[attr-defined]
        raise ValueError("boom")

    with pytest.raises(ValueError):
        await engine.run(unit)
    assert await engine.run(lambda tx: tx.remember_delivery("s", "x", T0)) is True


def _job(key: str, due_in: float = 0) -> Job:
    return Job(kind=JobKind.SLACK_POST, key=key, payload={"k": key},
               due_at=T0 + timedelta(seconds=due_in))  # fmt: skip


async def test_enqueue_is_idempotent_by_key(engine: Store) -> None:
    assert await engine.run(lambda tx: tx.enqueue([_job("a"), _job("b")], T0)) == 2
    assert await engine.run(lambda tx: tx.enqueue([_job("a")], T0)) == 0
    assert len(await engine.run(lambda tx: tx.jobs())) == 2


async def test_claim_only_due_jobs_in_due_order(engine: Store) -> None:
    await engine.run(lambda tx: tx.enqueue([_job("later", 60), _job("b", 2), _job("a", 1)], T0))
    now = T0 + timedelta(seconds=5)
    claimed = await engine.run(lambda tx: tx.claim_jobs("w1", now, 10, 30))
    assert [j.key for j in claimed] == ["a", "b"]
    assert all(j.status is JobStatus.RUNNING and j.attempts == 1 for j in claimed)
    assert await engine.run(lambda tx: tx.claim_jobs("w2", now, 10, 30)) == []


async def test_expired_lease_is_reclaimed_by_another_worker(engine: Store) -> None:
    await engine.run(lambda tx: tx.enqueue([_job("a")], T0))
    [job] = await engine.run(lambda tx: tx.claim_jobs("dead-worker", T0, 10, 30))
    later = T0 + timedelta(seconds=31)
    [again] = await engine.run(lambda tx: tx.claim_jobs("w2", later, 10, 30))
    assert again.id == job.id and again.attempts == 2
    # the dead worker's late report is ignored: the job is no longer its own
    assert await engine.run(lambda tx: tx.finish_job(job.id, "dead-worker", {}, later)) is False
    assert await engine.run(lambda tx: tx.finish_job(job.id, "w2", {"ts": "1.2"}, later)) is True


async def test_retry_dead_cancel_release_and_stats(engine: Store) -> None:
    await engine.run(lambda tx: tx.enqueue([_job(k) for k in "abcd"], T0))
    a, b, c, _d = await engine.run(lambda tx: tx.claim_jobs("w", T0, 3, 30)) + [None]
    assert a and b and c
    retry_at = T0 + timedelta(seconds=10)
    await engine.run(lambda tx: tx.retry_job(a.id, "w", retry_at, "503", T0))
    await engine.run(lambda tx: tx.kill_job(b.id, "w", "channel_not_found", T0))
    assert await engine.run(lambda tx: tx.release_jobs("w", T0)) == 1  # c
    assert await engine.run(lambda tx: tx.cancel_jobs(["d", "missing"], T0)) == 1
    stats = await engine.run(lambda tx: tx.outbox_stats(T0 + timedelta(seconds=4)))
    assert (stats.backlog, stats.dead) == (1, 1)  # c is due again; a waits until +10 s
    assert stats.oldest_due_age_seconds == pytest.approx(4, abs=0.01)
    [found, result] = await engine.run(lambda tx: tx.job_by_key("a"))
    assert found.last_error == "503" and result is None


async def test_concurrent_claimers_never_share_a_job(engine: Store) -> None:
    await engine.run(lambda tx: tx.enqueue([_job(f"j{i}") for i in range(40)], T0))
    batches = await asyncio.gather(
        *(engine.run(lambda tx, w=w: tx.claim_jobs(w, T0, 7, 30)) for w in ("w1", "w2", "w3", "w4"))
    )
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 28


async def test_two_stores_on_one_database_record_alerts_once(engine: Store, tmp_path: Path) -> None:
    """Replicas racing on the same group: the unique key keeps one row per alert."""
    alerts = alertmanager.parse(am_payload(alerts=[am_alert(f"f{i}") for i in range(20)]))
    results = await asyncio.gather(
        *(engine.run(lambda tx: tx.record_alerts(alerts, T0)) for _ in range(4))
    )
    new = sum(1 for batch in results for r in batch if r.change.value == "new")
    assert new == 20
    assert await engine.run(lambda tx: tx.count_alerts()) == 20


async def test_prune_forgets_old_finished_jobs_and_deliveries_only(engine: Store) -> None:
    jobs = [_job("done"), _job("dead", 1), _job("pending", 60)]
    await engine.run(lambda tx: tx.enqueue(jobs, T0))
    done, dead = await engine.run(lambda tx: tx.claim_jobs("w", T0 + timedelta(seconds=2), 2, 30))
    await engine.run(lambda tx: tx.finish_job(done.id, "w", {}, T0))
    await engine.run(lambda tx: tx.kill_job(dead.id, "w", "x", T0))
    await engine.run(lambda tx: tx.remember_delivery("pagerduty", "old", T0))
    later = T0 + timedelta(days=8)
    await engine.run(lambda tx: tx.remember_delivery("pagerduty", "new", later))
    assert await engine.run(lambda tx: tx.prune(later - timedelta(days=7))) == 2
    assert sorted(j.key for j in await engine.run(lambda tx: tx.jobs())) == ["dead", "pending"]
    assert await engine.run(lambda tx: tx.remember_delivery("pagerduty", "new", later)) is False


async def test_a_started_job_stays_in_doubt_until_an_outcome_is_recorded(engine: Store) -> None:
    await engine.run(lambda tx: tx.enqueue([_job(k) for k in "abcd"], T0))
    a, b, c, d = await engine.run(lambda tx: tx.claim_jobs("w", T0, 4, 30))
    assert all(job.started_at is None for job in (a, b, c, d))
    until = T0 + timedelta(seconds=30)
    for job in (a, b, c, d):
        assert await engine.run(lambda tx, j=job: tx.extend_claim(j.id, "w", until, start=T0))
    later = T0 + timedelta(seconds=5)
    # a second start keeps the first: a look-up must cover every attempt
    assert await engine.run(lambda tx: tx.extend_claim(d.id, "w", until, start=later))
    await engine.run(lambda tx: tx.finish_job(a.id, "w", {"ts": "1"}, later))
    await engine.run(lambda tx: tx.retry_job(b.id, "w", later, "HTTP 503", later))
    await engine.run(
        lambda tx: tx.retry_job(c.id, "w", later, "look-up failed", later, in_doubt=True)
    )
    # what a crashed worker or a failed commit left: given back, still in doubt
    assert await engine.run(lambda tx: tx.release_jobs("w", later)) == 1
    jobs = {job.key: job for job in await engine.run(lambda tx: tx.jobs())}
    assert [jobs[k].started_at for k in "ab"] == [None, None]
    assert jobs["c"].started_at == T0 and jobs["d"].started_at == T0
    again = await engine.run(lambda tx: tx.claim_jobs("w2", later, 4, 30))
    assert {job.key: job.started_at for job in again} == {"b": None, "c": T0, "d": T0}


async def test_release_keeps_the_claims_the_worker_still_holds(engine: Store) -> None:
    await engine.run(lambda tx: tx.enqueue([_job(k) for k in "abc"], T0))
    a, b, c = await engine.run(lambda tx: tx.claim_jobs("w", T0, 3, 30))
    assert await engine.run(lambda tx: tx.release_jobs("w", T0, keep=[a.id, c.id])) == 1
    [freed] = await engine.run(lambda tx: tx.claim_jobs("w2", T0, 3, 30))
    assert freed.id == b.id and freed.attempts == 1  # the released claim cost no attempt
    assert await engine.run(lambda tx: tx.finish_job(a.id, "w", {}, T0)) is True


async def test_jobs_due_together_are_claimed_in_the_order_they_were_made(engine: Store) -> None:
    resume = T0 + timedelta(seconds=30)
    await engine.run(lambda tx: tx.enqueue([_job(f"j{i}") for i in range(6)], T0))
    jobs = await engine.run(lambda tx: tx.claim_jobs("w", T0, 6, 30))
    # held back to the same moment in reverse order (e.g. while Slack was down)
    for job in reversed(jobs):
        await engine.run(
            lambda tx, j=job: tx.retry_job(j.id, "w", resume, "paused", T0, postpone=True)
        )
    again = await engine.run(lambda tx: tx.claim_jobs("w", resume, 6, 30))
    assert [job.key for job in again] == [f"j{i}" for i in range(6)]
