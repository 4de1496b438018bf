"""The store contract, run against both engines (design rule 5).

PostgreSQL tests use the server at ROUTER_TEST_POSTGRES_URL (default: the local
127.0.0.1:5432 database ``test``), each test in a schema of its own, dropped after
(the ``engine`` fixture, in conftest).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from router.adapters.alertmanager import webhook as alertmanager
from router.adapters.store import Store, StoreError
from router.adapters.store.sql import SqlTx, StaleState
from router.core.alerts import Alert, AlertStatus
from router.core.digest import Digest, DigestLine
from router.core.jobs import Job, JobKind, JobStatus
from router.core.page import PageStatus
from router.core.severity import Severity
from tests.conftest import T0, am_alert, am_payload
from tests.waiting import eventually


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


async def test_a_forgotten_delivery_is_new_again(engine: Store) -> None:
    def remember_then_forget(tx: SqlTx) -> None:
        assert tx.remember_delivery("slack-view", "V1:U1:" + "a" * 300, T0)
        tx.forget_delivery("slack-view", "V1:U1:" + "a" * 300)  # bounded the same way

    await engine.run(remember_then_forget)
    assert await engine.run(lambda tx: tx.remember_delivery("slack-view", "V1:U1:" + "a" * 300, T0))
    await engine.run(lambda tx: tx.forget_delivery("slack-view", "unknown"))  # no error


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


async def test_prune_keeps_an_incidents_anchors(engine: Store) -> None:
    """An old incident's announcement and issues stay known (their channel, ts, URL):
    updates still thread under the announcement, and the console links them."""
    keys = ["incident:4:announce", "incident:4:tracking-issue", "incident:4:postmortem",
            "incident:4:announce-update:v3", "incident:4:labels:v2"]  # fmt: skip
    await engine.run(lambda tx: tx.enqueue([_job(k) for k in keys], T0))
    for job in await engine.run(lambda tx: tx.claim_jobs("w", T0, 10, 30)):
        await engine.run(lambda tx, j=job: tx.finish_job(j.id, "w", {"ts": "1.2"}, T0))
    assert await engine.run(lambda tx: tx.prune(T0 + timedelta(days=30))) == 2
    assert sorted(j.key for j in await engine.run(lambda tx: tx.jobs())) == sorted(keys[:3])


# -- storms: what a delivery reads is bounded ---------------------------------------


def _alerts(*specs: tuple[str, str], **labels: str) -> list[Alert]:
    """Alerts of the test group from (fingerprint, status) pairs."""
    return alertmanager.parse(
        am_payload(alerts=[am_alert(fp, status, **labels) for fp, status in specs])
    )


async def test_record_alerts_tells_each_alerts_status_and_page_before(engine: Store) -> None:
    first = await engine.run(
        lambda tx: tx.record_alerts(_alerts(("a", "firing")), T0, page_key="P1")
    )
    assert first[0].before is None  # new
    moved = await engine.run(
        lambda tx: tx.record_alerts(_alerts(("a", "resolved"), ("b", "firing")), T0,
                                    page_key="P2")
    )  # fmt: skip
    assert [(r.change.value, r.before) for r in moved] == [
        ("resolved", ("firing", "P1")),
        ("new", None),
    ]
    # without a page to join, an alert stays with the one it had
    again = await engine.run(lambda tx: tx.record_alerts(_alerts(("a", "resolved")), T0))
    assert again[0].before == ("resolved", "P2")
    [(page,)] = await engine.run(
        lambda tx: tx._rows("SELECT page_key FROM alerts WHERE fingerprint = 'a'")
    )
    assert page == "P2"


async def test_page_view_reads_firing_first_newest_first_and_the_worst(engine: Store) -> None:
    severities = ["warning", "critical", "info", "critical", "warning"]
    alerts = alertmanager.parse(
        am_payload(alerts=[am_alert(f"f{i}", severity=s) for i, s in enumerate(severities)]
                   + [am_alert(f"r{i}", "resolved") for i in range(3)])
    )  # fmt: skip
    rank = {"critical": 0, "warning": 2, "info": 3}

    def order(alert: Alert) -> int:
        return rank.get(alert.labels.get("severity", ""), 9)

    await engine.run(lambda tx: tx.record_alerts(alerts, T0, page_key="P", order=order))
    counts = await engine.run(lambda tx: tx.count_page_alerts("P"))
    assert (counts.firing, counts.resolved) == (5, 3)
    view = await engine.run(lambda tx: tx.page_view("P", counts, 7))
    assert [a.fingerprint for a in view.shown] == ["f4", "f3", "f2", "f1", "f0", "r2", "r1"]
    assert view.worst is not None and view.worst.fingerprint == "f1"  # the first critical
    assert (view.firing, view.resolved) == (5, 3)
    # the page's alerts move to another page (a page opened for them)
    ids = [r[0] for r in await engine.run(lambda tx: tx._rows("SELECT id FROM alerts"))]
    await engine.run(lambda tx: tx.move_alerts(ids[:2], "Q"))
    assert (await engine.run(lambda tx: tx.count_page_alerts("Q"))).firing == 2


async def test_digests_are_versioned_and_their_lines_kept_by_part(engine: Store) -> None:
    digest = Digest(key="digest:U:1", assignee="U", opened_at=T0, pages=2, version=1)
    await engine.run(lambda tx: tx.save_digest(digest))
    newer = digest.model_copy(update={"version": 2, "parts_posted": 1})
    await engine.run(lambda tx: tx.save_digest(newer))
    # a racing replica stored version 2 first (PostgreSQL runs the unit again, then gives up)
    with pytest.raises((StaleState, StoreError)):
        await engine.run(lambda tx: tx.save_digest(newer))
    assert await engine.run(lambda tx: tx.digest("digest:U:1")) == newer
    for position in (1, 2, 101):
        line = DigestLine(position=position, page_key=f"p{position}", title=f"t{position}",
                          severity=Severity.HIGH, firing=1, resolved=0,
                          status=PageStatus.OPEN)  # fmt: skip
        await engine.run(lambda tx, line=line: tx.save_digest_line("digest:U:1", line))
    decided = DigestLine(
        position=2,
        page_key="p2",
        title="t2",
        severity=Severity.HIGH,
        firing=1,
        resolved=0,
        status=PageStatus.DECLARED,
        incident_number=4,
    )
    await engine.run(lambda tx: tx.save_digest_line("digest:U:1", decided))  # fmt: skip
    first = await engine.run(lambda tx: tx.digest_lines("digest:U:1", 0))
    assert [(line.position, line.status.value) for line in first] == [
        (1, "open"), (2, "declared"),
    ]  # fmt: skip
    assert [line.position for line in await engine.run(lambda tx: tx.digest_lines(
        "digest:U:1", 1))] == [101]  # fmt: skip
    waiting = await engine.run(lambda tx: tx.waiting_digest_lines("digest:U:1"))
    assert [line.position for line in waiting] == [1, 101]


def _edit(target: str, seq: int, text: str) -> Job:
    return Job(kind=JobKind.SLACK_UPDATE, key=f"{target}:v{seq}",
               payload={"target": target, "seq": seq, "text": text})  # fmt: skip


async def test_edits_of_a_message_are_coalesced_and_spaced(engine: Store) -> None:
    dm = Job(kind=JobKind.SLACK_DM, key="m", payload={"user": "U", "text": "v0"})
    await engine.run(lambda tx: tx.enqueue([dm], T0))
    # 1. not sent yet: the message itself goes out with the newest state
    await engine.run(lambda tx: tx.enqueue([_edit("m", 1, "v1")], T0, 1.0))
    [job] = await engine.run(lambda tx: tx.jobs())
    assert (job.key, job.payload["text"], job.payload["seq"]) == ("m", "v1", 1)
    [claimed] = await engine.run(lambda tx: tx.claim_jobs("w", T0, 10, 30))
    await engine.run(lambda tx: tx.finish_job(claimed.id, "w", {"ts": "1.1"}, T0))
    # 3. sent, nothing applied since: an edit, due now
    await engine.run(lambda tx: tx.enqueue([_edit("m", 2, "v2")], T0, 1.0))
    [edit] = await engine.run(lambda tx: tx.jobs(JobStatus.PENDING))
    assert (edit.key, edit.due_at) == ("m:v2", T0)
    [running] = await engine.run(lambda tx: tx.claim_jobs("w", T0, 10, 30))
    # while it is being applied, the next one waits the interval
    later = T0 + timedelta(seconds=0.2)
    await engine.run(lambda tx: tx.enqueue([_edit("m", 3, "v3")], later, 1.0))
    await engine.run(lambda tx: tx.finish_job(running.id, "w", {}, later))
    await engine.run(lambda tx: tx.record_message_seq("m", 2, later))
    # 2. one waits already: it takes the newest state (and an older one changes nothing)
    await engine.run(lambda tx: tx.enqueue([_edit("m", 5, "v5"), _edit("m", 4, "v4")], later,
                                           1.0))  # fmt: skip
    [waiting] = await engine.run(lambda tx: tx.jobs(JobStatus.PENDING))
    assert (waiting.payload["seq"], waiting.payload["text"]) == (5, "v5")
    assert waiting.due_at == later + timedelta(seconds=1)
    # a version the message already shows is not queued again
    await engine.run(lambda tx: tx.record_message_seq("m", 5, later))
    await engine.run(lambda tx: tx.cancel_jobs([waiting.key], later))
    assert await engine.run(lambda tx: tx.enqueue([_edit("m", 5, "v5")], later, 1.0)) == 0
    assert await engine.run(lambda tx: tx.jobs(JobStatus.PENDING)) == []


async def test_an_edit_waits_while_an_older_edit_of_its_message_is_applied(
    engine: Store,
) -> None:
    """Edits of one message are applied one at a time, across replicas too: a newer edit
    claimed while an older one is still at Slack would land first, and the older one
    would then overwrite the message (a storm digest counting too few pages)."""
    await engine.run(lambda tx: tx.enqueue([_edit("m", 1, "v1")], T0, 1.0))
    [first] = await engine.run(lambda tx: tx.claim_jobs("replica-a", T0, 10, 30))
    await engine.run(lambda tx: tx.enqueue([_edit("m", 2, "v2")], T0, 1.0))
    slow = T0 + timedelta(seconds=5)  # the first edit's call is slow; its lease holds
    assert await engine.run(lambda tx: tx.claim_jobs("replica-b", slow, 10, 30)) == []
    await engine.run(lambda tx: tx.finish_job(first.id, "replica-a", {}, slow))
    await engine.run(lambda tx: tx.record_message_seq("m", 1, slow))
    [second] = await engine.run(lambda tx: tx.claim_jobs("replica-b", slow, 10, 30))
    assert (second.payload["seq"], second.payload["text"]) == (2, "v2")
    # a worker that died while applying one does not hold its message for ever
    await engine.run(lambda tx: tx.enqueue([_edit("n", 1, "n1")], T0, 1.0))
    [dead] = await engine.run(lambda tx: tx.claim_jobs("replica-a", T0, 10, 30))
    await engine.run(lambda tx: tx.enqueue([_edit("n", 2, "n2")], T0, 1.0))
    after_lease = T0 + timedelta(seconds=31)
    taken = await engine.run(lambda tx: tx.claim_jobs("replica-b", after_lease, 10, 30))
    assert [j.key for j in taken] == [dead.key, "n:v2"]


async def test_a_failed_edit_with_a_newer_one_waiting_is_done_not_retried(engine: Store) -> None:
    await engine.run(lambda tx: tx.enqueue([_edit("m", 1, "v1")], T0, 1.0))
    [first] = await engine.run(lambda tx: tx.claim_jobs("w", T0, 10, 30))
    await engine.run(lambda tx: tx.enqueue([_edit("m", 2, "v2")], T0, 1.0))
    later = T0 + timedelta(seconds=5)
    assert await engine.run(lambda tx: tx.retry_job(first.id, "w", later, "429", T0))
    found = await engine.run(lambda tx: tx.job_by_key("m:v1"))
    assert found is not None
    assert (found[0].status, found[1]) == (JobStatus.DONE, {"superseded": True})
    [waiting] = await engine.run(lambda tx: tx.jobs(JobStatus.PENDING))
    assert waiting.payload["seq"] == 2


# -- the inbox ---------------------------------------------------------------------


async def test_inbox_hands_out_deliveries_in_order_within_a_byte_budget(engine: Store) -> None:
    for n in range(5):
        await engine.run(lambda tx, n=n: tx.append_inbox("alertmanager", b"x" * (10 + n), T0))
    batch = await engine.run(lambda tx: tx.inbox_batch(10, 25))
    assert [len(d.body) for d in batch] == [10, 11]  # 21 bytes; the next would make 33
    assert [d.body for d in await engine.run(lambda tx: tx.inbox_batch(1, 1))] == [b"x" * 10]
    assert await engine.run(lambda tx: tx.finish_inbox([d.id for d in batch])) == 2
    assert await engine.run(lambda tx: tx.finish_inbox([batch[0].id])) == 0  # once only
    rest = await engine.run(lambda tx: tx.inbox_batch(10, 10**6))
    await engine.run(lambda tx: tx.bury_inbox(rest[0].id, "failed: KeyError"))
    stats = await engine.run(lambda tx: tx.inbox_stats(T0 + timedelta(seconds=30)))
    assert (stats.pending, stats.dead, stats.oldest_age_seconds) == (2, 1, 30.0)
    assert [len(d.body) for d in await engine.run(lambda tx: tx.inbox_batch(10, 10**6))] == [
        13, 14,
    ]  # fmt: skip


async def test_inbox_counts_what_waits_with_dead_deliveries_among_it(engine: Store) -> None:
    """The count of waiting deliveries stays exact however the dead ones (set aside,
    kept for people) sit among them, and as deliveries come and go."""

    async def stats() -> tuple[int, int]:
        found = await engine.run(lambda tx: tx.inbox_stats(T0))
        return found.pending, found.dead

    assert await stats() == (0, 0)
    for n in range(8):
        await engine.run(lambda tx, n=n: tx.append_inbox("alertmanager", b"%d" % n, T0))
    ids = [d.id for d in await engine.run(lambda tx: tx.inbox_batch(10, 10**6))]
    for dead in (ids[0], ids[3], ids[4]):
        await engine.run(lambda tx, dead=dead: tx.bury_inbox(dead, "failed: KeyError"))
    assert await stats() == (5, 3)
    await engine.run(lambda tx: tx.finish_inbox([ids[1], ids[2]]))
    assert await stats() == (3, 3)
    await engine.run(lambda tx: tx.finish_inbox(ids[5:]))
    assert await stats() == (0, 3)
    await engine.run(lambda tx: tx.append_inbox("alertmanager", b"late", T0))
    assert await stats() == (1, 3)


async def test_one_unit_at_a_time_holds_the_inbox(engine: Store) -> None:
    seen: dict[str, bool] = {}

    def holder(tx: SqlTx) -> None:
        assert tx.try_lock("inbox")
        seen["entered"] = seen["inside"] = True
        time.sleep(0.3)  # holding the transaction (and, on SQLite, the loop)
        seen["inside"] = False

    def other(tx: SqlTx) -> None:
        seen["got"] = tx.try_lock("inbox")
        seen["while_held"] = seen.get("inside", False)

    first = asyncio.create_task(engine.run(holder))
    await eventually(lambda: seen.get("entered"), within=5, what="the holder taking the lock")
    await asyncio.gather(first, engine.run(other))
    assert not (seen["got"] and seen["while_held"])  # never two at once
    assert seen["got"] or seen["while_held"]


async def test_a_post_that_failed_after_an_edit_was_made_leaves_the_newest_to_the_edit(
    engine: Store,
) -> None:
    dm = Job(kind=JobKind.SLACK_DM, key="m", payload={"user": "U", "text": "v0"})
    await engine.run(lambda tx: tx.enqueue([dm], T0))
    [post] = await engine.run(lambda tx: tx.claim_jobs("w", T0, 10, 30))
    await engine.run(lambda tx: tx.enqueue([_edit("m", 1, "v1")], T0, 1.0))  # while it runs
    await engine.run(lambda tx: tx.retry_job(post.id, "w", T0, "429", T0))  # it failed
    await engine.run(lambda tx: tx.enqueue([_edit("m", 2, "v2")], T0, 1.0))
    jobs = {j.key: j for j in await engine.run(lambda tx: tx.jobs(JobStatus.PENDING))}
    # the post goes out as it was, then the edit with the newest state: never the reverse
    assert jobs["m"].payload["text"] == "v0"
    assert (jobs["m:v1"].payload["seq"], jobs["m:v1"].payload["text"]) == (2, "v2")


@pytest.mark.parametrize("name", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_the_storm_migration_gives_an_open_page_its_alerts(name: str, tmp_path: Path) -> None:
    """A database from before migration 004, with an open page and its group's alerts:
    after the upgrade the page's alerts are its own, and it is counted on first use."""
    import sqlite3 as sqlite

    import psycopg

    from router.adapters.store import open_store
    from router.adapters.store.migrations import migrations
    from router.core.page import Page
    from router.core.severity import Suggestion
    from tests.conftest import _postgres_available, postgres_url, skip_unless_ci

    page = Page(key="p1", group_key="g", source="alertmanager", title="t", opened_at=T0,
                suggestion=Suggestion(severity=Severity.LOW, clause="no current or known"
                                      " customer impact"))  # fmt: skip
    old = migrations(name)[:3]
    rows = [
        ("INSERT INTO pages (key, group_key, status, active, opened_at, state, version)"
         " VALUES ('p1', 'g', 'open', 1, 0, ?, 0)", (page.model_dump_json(exclude={"counts",
                                                      "digest_position"}),)),
        *[("INSERT INTO alerts (source, group_key, fingerprint, starts_at, status, labels,"
           " annotations, links, pageable, first_seen, last_seen) VALUES ('alertmanager', 'g',"
           " ?, 's', ?, '{}', '{}', '[]', 1, 'x', 'x')", (fp, status))
          for fp, status in (("a", "firing"), ("b", "firing"), ("c", "resolved"))],
    ]  # fmt: skip
    if name == "sqlite":
        conn = sqlite.connect(tmp_path / "old.db")
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                     " name TEXT NOT NULL, applied_at TEXT NOT NULL)")  # fmt: skip
        for version, file, sql in old:
            conn.executescript(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'x')", (version, file))
        for sql, params in rows:
            conn.execute(sql, params)
        conn.commit()
        conn.close()
        url = f"sqlite:///{tmp_path}/old.db"
        drop = None
    else:
        if not _postgres_available():
            skip_unless_ci(f"no PostgreSQL at {postgres_url()}")
        schema = "router_test_" + uuid.uuid4().hex[:12]
        separator = "&" if "?" in postgres_url() else "?"
        url = f"{postgres_url()}{separator}options=-csearch_path%3D{schema}"
        with psycopg.connect(postgres_url(), autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                         " name TEXT NOT NULL, applied_at TEXT NOT NULL)")  # fmt: skip
            for version, file, sql in old:
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, 'x')",
                             (version, file))  # fmt: skip
            for sql, params in rows:
                conn.execute(sql.replace("?", "%s"), params)
        drop = schema
    store = open_store(url)
    await store.open()
    try:
        counts = await store.run(lambda tx: tx.count_page_alerts("p1"))
        assert (counts.firing, counts.resolved) == (2, 1)
        stored = await store.run(lambda tx: tx.active_page("g"))
        assert stored is not None and stored.counts is None  # counted on first use
    finally:
        await store.close()
        if drop is not None:
            with psycopg.connect(postgres_url(), autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {drop} CASCADE")


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


@pytest.mark.postgres
async def test_a_router_in_another_schema_never_waits_for_this_ones_locks() -> None:
    """Two routers on one PostgreSQL database, each in its own schema: the inbox lock
    one holds does not stop the other (advisory locks are database-wide)."""
    from tests.conftest import _postgres_available, postgres_schema, postgres_url

    if not _postgres_available():
        pytest.skip(f"no PostgreSQL at {postgres_url()}")
    from router.adapters.store import open_store

    with postgres_schema("router_lock_a_") as url_a, postgres_schema("router_lock_b_") as url_b:
        here, there = open_store(url_a), open_store(url_b)
        await here.open()
        await there.open()
        try:
            held = asyncio.Event()
            release = asyncio.Event()
            loop = asyncio.get_running_loop()

            def holder(tx: SqlTx) -> bool:
                got = tx.try_lock("inbox")
                loop.call_soon_threadsafe(held.set)
                asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=10)
                return got

            first = asyncio.create_task(here.run(holder))
            await asyncio.wait_for(held.wait(), 10)
            same_schema = open_store(url_a)
            await same_schema.open()
            try:
                assert not await same_schema.run(lambda tx: tx.try_lock("inbox"))
            finally:
                await same_schema.close()
            assert await there.run(lambda tx: tx.try_lock("inbox"))
            release.set()
            assert await first
        finally:
            await here.close()
            await there.close()


async def test_an_incident_is_found_by_its_own_channel(engine: Store) -> None:
    from router.core.incident import Incident
    from router.core.severity import Suggestion

    incident = Incident(
        number=1, title="t", commander="U1", severity=Severity.HIGH, severity_reason="r",
        suggestion=Suggestion(severity=Severity.HIGH, clause="r"), declared_at=T0,
        declared_by="U1", announce_job="incident:1:announce",
    )  # fmt: skip
    await engine.run(lambda tx: tx.insert_incident(incident))
    assert await engine.run(lambda tx: tx.incident_in_channel("C0INC1")) is None
    made = incident.model_copy(update={"channel_id": "C0INC1", "version": 1})
    await engine.run(lambda tx: tx.save_incident(made))
    found = await engine.run(lambda tx: tx.incident_in_channel("C0INC1"))
    assert found is not None and (found.number, found.channel_id) == (1, "C0INC1")
    # one channel is one incident's (the migration's unique index)
    other = incident.model_copy(update={"number": 2, "channel_id": "C0INC1"})
    with pytest.raises(StoreError):
        await engine.run(lambda tx: tx.insert_incident(other))
