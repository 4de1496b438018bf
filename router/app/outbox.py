"""The outbox worker: claims due jobs, runs them through the adapters, records results.

Jobs were committed with the state change that caused them, so a crash between the
commit and the send only delays the send: after a restart the job is still pending
(or its lease runs out) and runs then. Retry policy lives here, in one place:

* ``RetryLater``: back off exponentially (with jitter), or wait what the other side
  asked for (Retry-After); after ``max_attempts`` the job is dead.
* ``PermanentFailure``: dead at once.
* dead jobs are surfaced: a metric, an error log, and a message to the operator
  channel (when one is configured), never dropped silently.

Timers are jobs too: a due ``TIMER`` is applied to the lifecycle and marked done in
one transaction, so it fires once even with several workers.

Unknown outcomes. The store can fail between a side effect and the record of it (a
killed connection, a database that went away). Then:

* the outcome is kept in memory and recorded as soon as the store answers again
  (backoff of a fraction of a second, capped at ``STORE_BACKOFF_CAP``), before this
  worker claims anything new; never left to the lease;
* a job claimed but not yet started is given back the same way, and a claim whose
  commit failed is undone (this worker's claims it does not hold are released);
* just before the adapter is called the job is marked started (``started_at``,
  cleared when an outcome is recorded). A job claimed with that mark may have happened
  (its worker died, or could not record): the adapter's ``find`` looks first, and a
  side effect found is recorded as done instead of being carried out again.

Posts into one conversation keep their order. When one fails for now (Slack 429,
5xx, unreachable), the posts after it into the same DM or channel wait with it and
then all run in the order they were made, so a person reads pages in order of
arrival however long Slack was away. (Edits need no such care: each carries the
whole message and a version, and an older one is skipped once a newer one landed.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from router.app.clock import Clock
from router.app.effects import Adapter, PermanentFailure, RetryLater, require_result
from router.app.incidents import RESULT_KINDS, job_result
from router.app.ports import Store, StoreError, Tx
from router.app.timers import fire_timer
from router.core import dead_jobs
from router.core.jobs import (
    JobKind,
    JobStatus,
    PayloadError,
    SlackUpdate,
    StoredJob,
)
from router.core.policy import Outcome, Policy
from router.metrics import Metrics

log = logging.getLogger(__name__)


# Finished jobs and delivery ids are kept this long (for debugging and for dedup of
# very late retries: PagerDuty retries for up to 48 hours), then pruned.
RETENTION = timedelta(days=7)
PRUNE_EVERY_SECONDS = 600.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _replaced(value: Any, result: dict[str, Any]) -> Any:
    """``value`` (text, or blocks) with each ``{name}`` of ``result`` replaced."""
    if isinstance(value, str):
        for name, found in result.items():
            value = value.replace("{" + name + "}", str(found))
        return value
    if isinstance(value, list):
        return [_replaced(v, result) for v in value]
    if isinstance(value, dict):
        return {k: _replaced(v, result) for k, v in value.items()}
    return value


def _edit(job: StoredJob) -> SlackUpdate | None:
    """An edit carrying a whole message and its version (``target`` + ``seq``)."""
    if job.kind is not JobKind.SLACK_UPDATE or "seq" not in job.payload:
        return None
    try:
        edit = SlackUpdate.of(job)
    except PayloadError:
        return None  # the adapter refuses it, and says why
    return edit if edit.seq is not None else None


def _is_edit(job: StoredJob) -> bool:
    return _edit(job) is not None


def _seq(job: StoredJob) -> int:
    edit = _edit(job)
    return edit.seq if edit is not None and edit.seq is not None else 0


def backoff(attempts: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Seconds before attempt ``attempts + 1``: exponential, capped, half jittered."""
    delay = min(cap, base * 2.0 ** max(0, attempts - 1))
    return delay / 2 + random.random() * delay / 2


# The store is down: try again soon (a page waits for it), but not in a tight loop.
STORE_BACKOFF_CAP = 1.0


def store_backoff(failures: int) -> float:
    return backoff(failures, base=0.1, cap=STORE_BACKOFF_CAP)


def _ordered(job: StoredJob) -> str | None:
    """The conversation a post goes into, whose posts keep their order; else None."""
    if job.kind is JobKind.SLACK_DM:
        return f"dm:{job.payload.get('user')}"
    if job.kind is JobKind.SLACK_POST:
        where = job.payload.get("thread_of") or job.payload.get("channel_of")
        return f"post:{where or job.payload.get('channel')}"
    if job.kind in _CHANNEL_KINDS:
        # An incident channel's own calls (invites, topics, bookmarks) in the order the
        # lifecycle asked for them: the last topic asked for is the one that stays.
        return f"channel:{job.payload.get('channel_of') or job.key}"
    return None


_CHANNEL_KINDS = frozenset(
    {JobKind.SLACK_INVITE, JobKind.SLACK_TOPIC, JobKind.SLACK_BOOKMARK, JobKind.SLACK_ARCHIVE}
)


def _lane(job: StoredJob) -> str:
    """Jobs of one lane run one after another, in order: edits of one message (by
    version), posts into one conversation (so a person reads pages in order)."""
    edit = _edit(job)
    if edit is not None:
        return edit.target
    return _ordered(job) or f"job:{job.id}"


class OutboxWorker:
    def __init__(
        self,
        store: Store,
        adapters: Sequence[Adapter],
        metrics: Metrics,
        clock: Clock,
        policy: Policy | None,
        worker_id: str | None = None,
        *,
        batch: int = 16,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        max_attempts: int = 10,
        operator_channel: str | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        self._store = store
        self.adapters = list(adapters)
        self._adapters = {kind: adapter for adapter in adapters for kind in adapter.kinds}
        self._metrics = metrics
        self._clock = clock
        self._policy = policy
        self.worker_id = worker_id or default_worker_id()
        self._batch = batch
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._max_attempts = max_attempts
        self._operator_channel = operator_channel
        self._on_outcome = on_outcome
        self._wake = asyncio.Event()
        self._gauges_at = 0.0
        self._pruned_at = time.monotonic()
        self._stopping = False
        # Outcomes the store refused, by job id, recorded before anything new is claimed.
        self._unrecorded: dict[int, Callable[[], Awaitable[None]]] = {}
        self._stray_claims = False  # a claim's commit failed: it may have taken jobs
        self._paused: dict[str, datetime] = {}  # conversation -> when its posts may run

    def kick(self) -> None:
        """New jobs were committed: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        failures = 0  # store failures in a row: the backoff grows with them
        while not self._stopping:
            wait = self._poll
            try:
                worked = await self.run_once()
                failures = 0
            except StoreError as exc:
                failures += 1
                wait = store_backoff(failures)
                log.error("outbox: store unavailable, retrying in %.1fs: %s", wait, exc)
                worked = 0
            except Exception:  # the loop must outlive any bug: side effects depend on it
                log.exception("outbox: unexpected error; the worker carries on")
                worked = 0
            if worked == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                self._wake.clear()
        await self.release()

    async def run_once(self) -> int:
        """Claim and run one batch of due jobs; returns how many were claimed."""
        await self._settle()
        now = self._clock.now()
        try:
            jobs = await self._store.run(
                lambda tx: tx.claim_jobs(self.worker_id, now, self._batch, self._lease)
            )
        except StoreError:
            # The claim may have committed all the same: undo it before the next one.
            self._stray_claims = True
            raise
        if jobs:
            # Edits of one message, and posts to one conversation, run one after
            # another in order; the rest run side by side.
            lanes: dict[str, list[StoredJob]] = {}
            for job in jobs:
                lanes.setdefault(_lane(job), []).append(job)
            await asyncio.gather(*(self._run_lane(lane) for lane in lanes.values()))
        # Gauges at most once a second: under load, batches come much faster.
        if time.monotonic() - self._gauges_at >= 1.0:
            self._gauges_at = time.monotonic()
            await self.refresh_gauges()
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = time.monotonic()
            before = now - RETENTION
            pruned = await self._store.run(lambda tx: tx.prune(before))
            if pruned:
                log.info("outbox: pruned %d finished jobs and old deliveries", pruned)
        return len(jobs)

    async def _run_lane(self, jobs: list[StoredJob]) -> None:
        # Edits by version; posts in queue order (a post's payload may carry the version
        # of an edit merged into it while it waited, which says nothing of its order).
        for job in sorted(jobs, key=lambda j: (_seq(j), j.id)):
            await self._execute(job)

    @property
    def unrecorded(self) -> int:
        """Outcomes (and give-backs) waiting for the store to answer."""
        return len(self._unrecorded)

    async def _settle(self) -> None:
        """Record what the store refused earlier, oldest first; StoreError if it still
        refuses (then nothing new is claimed)."""
        for job_id, record in list(self._unrecorded.items()):
            await record()
            del self._unrecorded[job_id]
        if self._stray_claims:
            now = self._clock.now()
            released = await self._store.run(lambda tx: tx.release_jobs(self.worker_id, now))
            self._stray_claims = False
            if released:
                log.warning("outbox: gave back %d jobs a failed claim had taken", released)

    async def _record(self, job: StoredJob, record: Callable[[], Awaitable[None]]) -> None:
        """Record an outcome now, or keep it for ``_settle`` if the store refuses."""
        try:
            await record()
        except StoreError as exc:
            log.error(
                "outbox: job %s (%s): outcome kept until the store answers: %s",
                job.id,
                job.kind.value,
                exc,
            )
            self._unrecorded[job.id] = record

    async def release(self) -> None:
        """Give back claimed jobs (shutdown) so another replica runs them now."""
        with contextlib.suppress(StoreError):
            await self._settle()
        with contextlib.suppress(StoreError):
            now = self._clock.now()
            released = await self._store.run(lambda tx: tx.release_jobs(self.worker_id, now))
            if released:
                log.info("outbox: released %d claimed jobs", released)

    async def refresh_gauges(self) -> None:
        now = self._clock.now()
        stats = await self._store.run(lambda tx: tx.outbox_stats(now))
        self._metrics.outbox_backlog.set(stats.backlog)
        self._metrics.outbox_oldest_age.set(stats.oldest_due_age_seconds)
        self._metrics.outbox_dead.set(stats.dead)
        if self._policy is not None:
            by_severity, owed = await self._store.run(lambda tx: tx.incident_stats())
            self._metrics.set_incident_gauges(by_severity, owed)

    async def _result_of(self, key: str) -> dict[str, Any] | None:
        found = await self._store.run(lambda tx: tx.job_by_key(key))
        if found is not None and found[0].status in (JobStatus.DEAD, JobStatus.CANCELLED):
            raise PermanentFailure(f"the job it depends on ({key}) is {found[0].status.value}")
        if found is None or found[0].status is not JobStatus.DONE:
            return None
        return found[1] or {}

    async def _execute(self, job: StoredJob) -> None:
        """Run one job; whatever goes wrong, the worker lives on and the job is
        retried or dead-lettered, never left claimed by a dead loop."""
        try:
            await self._carry_out(job)
        except StoreError as exc:
            # Before any outcome (a look-up, the lease, the timer's own commit): give
            # the job back as soon as the store answers, not when the lease runs out.
            log.error("outbox: job %s (%s): store unavailable: %s", job.id, job.kind.value, exc)
            await self._record(job, self._give_back(job, f"store unavailable: {exc}"))
        except Exception as exc:  # a bug (adapter, timer, stored state): loudly, never drop
            log.exception("outbox: job %s (%s) failed unexpectedly", job.id, job.kind.value)
            await self._retry(job, type(exc).__name__, in_doubt=True)

    def _give_back(self, job: StoredJob, reason: str) -> Callable[[], Awaitable[None]]:
        async def record() -> None:
            now = self._clock.now()
            # No attempt used; whether an earlier attempt happened stays as it was.
            await self._store.run(
                lambda tx: tx.retry_job(
                    job.id, self.worker_id, now, reason, now, postpone=True, in_doubt=True
                )
            )

        return record

    async def _carry_out(self, job: StoredJob) -> None:
        if job.kind is JobKind.TIMER:
            await self._fire_timer(job)
            return
        if _is_edit(job) and await self._superseded(job):
            await self._record(job, self._finisher(job, {"superseded": True}, applied=False))
            return
        adapter = self._adapters.get(job.kind)
        if adapter is None:
            await self._dead(job, f"no adapter configured for {job.kind.value} jobs")
            return
        lane = _ordered(job)
        paused = self._paused.get(lane) if lane else None
        if paused is not None and paused > self._clock.now():
            await self._hold(job, paused, "waits for an earlier post into its conversation")
            return
        try:
            if job.started_at is not None:
                # An earlier attempt may have happened: look before doing it again.
                found = await self._find(adapter, job)
                if found is not None:
                    self._metrics.jobs_run.labels(job.kind.value, "found").inc()
                    log.warning("outbox: job %s (%s) had already happened", job.id, job.kind.value)
                    await self._record(job, self._finisher(job, found))
                    return
            until = self._clock.now() + timedelta(seconds=self._lease)
            started = self._clock.now()
            if not await self._store.run(
                lambda tx: tx.extend_claim(job.id, self.worker_id, until, start=started)
            ):
                log.warning("outbox: job %s was taken over by another worker", job.id)
                return
            job = await self._filled(job)
            result = await adapter.run(job, self._result_of)
        except RetryLater as exc:
            if exc.waiting:
                # Its parent (the message it threads under, the issue it comments on)
                # has not run yet: not a failure, and no attempt used up.
                await self._postpone(job, exc)
                return
            self._metrics.outbound_calls.labels(adapter.system, "retry").inc()
            delay = exc.after if exc.after is not None else backoff(job.attempts)
            due = self._pause(lane, delay) if lane else None
            await self._retry(job, exc.reason, due, delay=delay, in_doubt=exc.in_doubt)
            return
        except PermanentFailure as exc:
            self._metrics.outbound_calls.labels(adapter.system, "permanent").inc()
            await self._dead(job, exc.reason)
            return
        self._metrics.outbound_calls.labels(adapter.system, "ok").inc()
        self._metrics.jobs_run.labels(job.kind.value, "ok").inc()
        # Pages only: not a digest, a handoff offer or an end-of-day reminder.
        not_pages = (None, "digest", "handoff", "reminder")
        if job.kind is JobKind.SLACK_DM and job.payload.get("role") not in not_pages:
            self._metrics.pages_sent.labels(str(job.payload["role"])).inc()
        await self._record(job, self._finisher(job, result))

    async def _find(self, adapter: Adapter, job: StoredJob) -> dict[str, Any] | None:
        try:
            return await adapter.find(job, self._result_of)
        except RetryLater as exc:
            # Unknown still: try again later, with the mark kept.
            exc.in_doubt = True
            raise
        except PermanentFailure as exc:
            # No way to look (e.g. a scope not granted): carry it out again, loudly.
            log.warning("outbox: job %s: cannot look whether it happened: %s", job.id, exc.reason)
            return None

    def _finisher(
        self, job: StoredJob, result: dict[str, Any], *, applied: bool = True
    ) -> Callable[[], Awaitable[None]]:
        """Recording a result: done and, for one ``applied``, the message version and
        what the lifecycle makes of it."""
        policy = self._policy

        def done(tx: Tx) -> Outcome | None:
            now = self._clock.now()
            if not tx.finish_job(job.id, self.worker_id, result, now):
                log.warning("outbox: job %s ran after its lease ran out", job.id)
                return None
            if not applied:
                return None
            edit = _edit(job)
            if edit is not None:
                tx.record_message_seq(edit.target, _seq(job), now)
            if (job.payload.get("on_result") or job.kind in RESULT_KINDS) and policy is not None:
                # what the adapter found feeds the lifecycle, in the same commit
                return job_result(tx, job, result, now, policy)
            return None

        async def record() -> None:
            outcome = await self._store.run(done)
            if outcome is not None and self._on_outcome is not None:
                self._on_outcome(outcome)
                if outcome.jobs:
                    self.kick()

        return record

    def _pause(self, lane: str, delay: float) -> datetime:
        """Hold the posts of ``lane`` for ``delay`` seconds (or to the end of the pause
        already running, if later); returns when they may run again."""
        now = self._clock.now()
        until = max(now + timedelta(seconds=delay), self._paused.get(lane, now))
        # forget the pauses that are over: conversations come and go
        self._paused = {k: v for k, v in self._paused.items() if v > now}
        self._paused[lane] = until
        return until

    async def _hold(self, job: StoredJob, until: datetime, reason: str) -> None:
        async def record() -> None:
            now = self._clock.now()
            await self._store.run(
                lambda tx: tx.retry_job(
                    job.id, self.worker_id, until, reason, now, postpone=True, in_doubt=True
                )
            )

        await self._record(job, record)

    async def _retry(
        self,
        job: StoredJob,
        reason: str,
        due: datetime | None = None,
        *,
        delay: float | None = None,
        in_doubt: bool = False,
    ) -> None:
        if job.attempts >= self._max_attempts:
            await self._dead(job, f"gave up after {job.attempts} attempts: {reason}")
            return
        now = self._clock.now()
        if due is None:
            due = now + timedelta(seconds=delay if delay is not None else backoff(job.attempts))
        log.warning(
            "outbox: job %s (%s) will retry in %.1fs: %s",
            job.id,
            job.kind.value,
            (due - now).total_seconds(),
            reason,
        )
        self._metrics.jobs_run.labels(job.kind.value, "retry").inc()

        async def record() -> None:
            now = self._clock.now()
            await self._store.run(
                lambda tx: tx.retry_job(job.id, self.worker_id, due, reason, now, in_doubt=in_doubt)
            )

        await self._record(job, record)

    async def _postpone(self, job: StoredJob, exc: RetryLater) -> None:
        now = self._clock.now()
        due = now + timedelta(seconds=exc.after if exc.after is not None else 1.0)
        log.debug("outbox: job %s waits: %s", job.id, exc.reason)

        async def record() -> None:
            now = self._clock.now()
            await self._store.run(
                lambda tx: tx.retry_job(
                    job.id,
                    self.worker_id,
                    due,
                    exc.reason,
                    now,
                    postpone=True,
                    in_doubt=exc.in_doubt,
                )
            )

        await self._record(job, record)

    async def _filled(self, job: StoredJob) -> StoredJob:
        """Fill ``{field}`` in the text (or a bookmark's link) from another job's result
        (``fill_from``), e.g. the tracking issue's URL, known only once that job ran.

        ``replace_from`` does the same by plain replacement in the text and the blocks,
        for messages that carry people's words (a title may hold braces): the
        declaration in #incident-response links the channel made by that job."""
        source = job.payload.get("fill_from")
        replace = job.payload.get("replace_from")
        if not source and not replace:
            return job
        payload = dict(job.payload)
        if source:
            result = await require_result(self._result_of, str(source))
            for name in ("text", "link"):
                if isinstance(payload.get(name), str):
                    payload[name] = payload[name].format_map(_Blank(result))
        if replace:
            try:
                result = await require_result(self._result_of, str(replace))
            except PermanentFailure:
                # The channel could not be made: the declaration still goes out, without
                # the link (never silent; the operator channel hears why).
                unlinked = payload.get("unlinked")
                if not isinstance(unlinked, dict):
                    raise
                payload.update(unlinked)
                return job.model_copy(update={"payload": payload})
            for name in ("text", "blocks"):
                if name in payload:
                    payload[name] = _replaced(payload[name], result)
        return job.model_copy(update={"payload": payload})

    async def _superseded(self, job: StoredJob) -> bool:
        """A newer edit of the same message was already applied: this one is stale."""
        edit = _edit(job)
        if edit is None:
            return False
        target, seq = edit.target, _seq(job)
        applied = await self._store.run(lambda tx: tx.message_seq(target))
        return applied is not None and applied >= seq

    async def _fire_timer(self, job: StoredJob) -> None:
        if self._policy is None:
            await self._dead(job, "timer fired but paging is not configured")
            return
        policy = self._policy
        now = self._clock.now()
        outcome = await self._store.run(lambda tx: fire_timer(tx, job, self.worker_id, now, policy))
        self._metrics.jobs_run.labels(job.kind.value, "ok").inc()
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        if outcome.jobs:
            self.kick()

    async def _dead(self, job: StoredJob, reason: str) -> None:
        self._metrics.jobs_run.labels(job.kind.value, "dead").inc()
        # ids and the failure reason only; the payload may hold confidential text
        log.error(
            "outbox: job %s (%s, key %s) is dead: %s", job.id, job.kind.value, job.key, reason
        )
        now = self._clock.now()
        notices = dead_jobs.notices(job.kind, job.key, job.id, reason, self._operator_channel)

        def unit(tx: Tx) -> None:
            tx.kill_job(job.id, self.worker_id, reason, now)
            tx.enqueue(notices, now)

        async def record() -> None:
            await self._store.run(unit)
            if notices:
                self.kick()

        await self._record(job, record)
