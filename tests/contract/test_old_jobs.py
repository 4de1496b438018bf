"""Jobs stored before payloads were typed still run: read from a real SQLite store
written by the last version with untyped payloads (tests/fixtures/store/old_jobs.db,
made by build_old_jobs_db.py in that folder), one job of every payload shape its suite
made, pending and done."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from router.adapters.store.sqlite import SqliteStore
from router.core.jobs import (
    PAYLOADS,
    AckTimeout,
    DigestTimeout,
    IncidentReminder,
    JobKind,
    JobStatus,
    SlackPost,
    SlackUpdate,
    StoredJob,
    timer,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "store"
# Kinds added after that version: no stored job of theirs can be older than their code
# (the collaborative doc, the status page; an incident's own channel, issue 13).
NEWER = {
    JobKind.GOOGLE_DOC,
    JobKind.STATUSPAGE_NOTICE,
    JobKind.SLACK_CHANNEL,
    JobKind.SLACK_INVITE,
    JobKind.SLACK_TOPIC,
    JobKind.SLACK_BOOKMARK,
    JobKind.SLACK_ARCHIVE,
}


async def stored_jobs(tmp_path: Path) -> list[StoredJob]:
    db = tmp_path / "old.db"
    shutil.copy(FIXTURES / "old_jobs.db", db)
    store = SqliteStore.from_url(f"sqlite:///{db}")
    await store.open()  # and whatever migrations came since
    try:
        jobs: list[StoredJob] = await store.run(lambda tx: tx.jobs())
        return jobs
    finally:
        await store.close()


def written_again(job: StoredJob) -> dict[str, Any]:
    """The payload this version writes for the same side effect."""
    if job.kind is JobKind.TIMER:
        event = timer(job)
        assert event is not None, job.key
        return event.job(job.key).payload
    return PAYLOADS[job.kind].of(job).job(job.key).payload


async def test_every_old_job_reads_into_its_typed_payload(tmp_path: Path) -> None:
    jobs = await stored_jobs(tmp_path)
    assert {job.kind for job in jobs} == set(JobKind) - NEWER  # every older kind is in it
    assert {job.status for job in jobs} == {JobStatus.PENDING, JobStatus.DONE}
    for job in jobs:
        # nothing lost, nothing added: an old replica reads what this one writes
        assert written_again(job) == job.payload, job.key


async def test_old_timers_fire_as_the_events_they_were(tmp_path: Path) -> None:
    timers = {
        job.key: timer(job) for job in await stored_jobs(tmp_path) if job.kind is JobKind.TIMER
    }
    ack = timers["page:p063ed330d80bfa05:ack:0"]
    assert isinstance(ack, AckTimeout) and (ack.page, ack.level) == ("p063ed330d80bfa05", 0)
    digest = timers["digest:U0PRIMARY1:2954076:ack:0"]
    assert isinstance(digest, DigestTimeout) and digest.digest == "digest:U0PRIMARY1:2954076"
    reminder = timers["incident:1:timer:status:1772447400"]
    assert isinstance(reminder, IncidentReminder)
    assert (reminder.incident, reminder.what) == (1, "status")


async def test_old_results_are_read_by_the_jobs_that_need_them(tmp_path: Path) -> None:
    by_key = {job.key: job for job in await stored_jobs(tmp_path)}
    link = SlackPost.of(by_key["incident:1:tracking-issue:link"])
    assert link.fill_from == "incident:1:tracking-issue" and link.text.endswith("{html_url}")
    edit = SlackUpdate.of(by_key["page:p063ed330d80bfa05:dm:0:U0PRIMARY1:v1"])
    assert (edit.target, edit.seq) == ("page:p063ed330d80bfa05:dm:0:U0PRIMARY1", 1)
    assert by_key["incident:1:tracking-issue"].status is JobStatus.DONE


def test_the_fixture_holds_the_recorded_shapes() -> None:
    recorded = json.loads((FIXTURES / "old_jobs.json").read_text())
    assert len(recorded) >= 20 and {job["kind"] for job in recorded} == set(JobKind) - NEWER
