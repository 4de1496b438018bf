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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from router.clock import Clock
from router.effects import Adapter, PermanentFailure, RetryLater, require_result
from router.jobs import Job, JobKind, JobStatus, StoredJob
from router.metrics import Metrics
from router.policy import Outcome, Policy
from router.store import Store, StoreError
from router.units import fire_timer, job_result

log = logging.getLogger(__name__)


# Finished jobs and delivery ids are kept this long (for debugging and for dedup of
# very late retries: PagerDuty retries for up to 48 hours), then pruned.
RETENTION = timedelta(days=7)
PRUNE_EVERY_SECONDS = 600.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_INCIDENT_KEY = re.compile(r"^incident:(\d+):")


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _is_edit(job: StoredJob) -> bool:
    """An edit carrying a whole message and its version (``target`` + ``seq``)."""
    return job.kind is JobKind.SLACK_UPDATE and "seq" in job.payload


def backoff(attempts: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Seconds before attempt ``attempts + 1``: exponential, capped, half jittered."""
    delay = min(cap, base * 2.0 ** max(0, attempts - 1))
    return delay / 2 + random.random() * delay / 2


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

    def kick(self) -> None:
        """New jobs were committed: look now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                worked = await self.run_once()
            except StoreError as exc:
                log.error("outbox: store unavailable, retrying: %s", exc)
                worked = 0
            except Exception:  # the loop must outlive any bug: side effects depend on it
                log.exception("outbox: unexpected error; the worker carries on")
                worked = 0
            if worked == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
                self._wake.clear()
        await self.release()

    async def run_once(self) -> int:
        """Claim and run one batch of due jobs; returns how many were claimed."""
        now = self._clock.now()
        jobs = await self._store.run(
            lambda tx: tx.claim_jobs(self.worker_id, now, self._batch, self._lease)
        )
        if jobs:
            # Edits of one message run one after another, oldest first, and so do the
            # messages of one ``lane`` (a digest's parts, in order); the rest run side
            # by side.
            lanes: dict[str, list[StoredJob]] = {}
            for job in jobs:
                lane = str(job.payload.get("target")) if _is_edit(job) else f"job:{job.id}"
                lanes.setdefault(str(job.payload.get("lane") or lane), []).append(job)
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
        # Edits by version; anything else (a message before its edits) in queue order.
        for job in sorted(jobs, key=lambda j: (int(j.payload["seq"]) if _is_edit(j) else 0, j.id)):
            await self._execute(job)

    async def release(self) -> None:
        """Give back claimed jobs (shutdown) so another replica runs them now."""
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
            # The store is down: the claim lapses and the job runs again later.
            log.error("outbox: job %s (%s): store unavailable: %s", job.id, job.kind.value, exc)
        except Exception as exc:  # a bug (adapter, timer, stored state): loudly, never drop
            log.exception("outbox: job %s (%s) failed unexpectedly", job.id, job.kind.value)
            with contextlib.suppress(StoreError):
                await self._retry(job, type(exc).__name__, None)

    async def _carry_out(self, job: StoredJob) -> None:
        if job.kind is JobKind.TIMER:
            await self._fire_timer(job)
            return
        if _is_edit(job) and await self._superseded(job):
            now = self._clock.now()
            await self._store.run(
                lambda tx: tx.finish_job(job.id, self.worker_id, {"superseded": True}, now)
            )
            return
        adapter = self._adapters.get(job.kind)
        if adapter is None:
            await self._dead(job, f"no adapter configured for {job.kind.value} jobs")
            return
        until = self._clock.now() + timedelta(seconds=self._lease)
        if not await self._store.run(lambda tx: tx.extend_claim(job.id, self.worker_id, until)):
            log.warning("outbox: job %s was taken over by another worker", job.id)
            return
        try:
            job = await self._filled(job)
            result = await adapter.run(job, self._result_of)
        except RetryLater as exc:
            if exc.waiting:
                # Its parent (the message it threads under, the issue it comments on)
                # has not run yet: not a failure, and no attempt used up.
                await self._postpone(job, exc)
                return
            self._metrics.outbound_calls.labels(adapter.system, "retry").inc()
            await self._retry(job, exc.reason, exc.after)
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
        now = self._clock.now()
        policy = self._policy

        def done(tx: Any) -> Outcome | None:
            if not tx.finish_job(job.id, self.worker_id, result, now):
                log.warning("outbox: job %s ran after its lease ran out", job.id)
                return None
            if _is_edit(job):
                tx.record_message_seq(str(job.payload["target"]), int(job.payload["seq"]), now)
            if job.payload.get("on_result") and policy is not None:
                # what the adapter found feeds the lifecycle, in the same commit
                return job_result(tx, job, result, now, policy)
            return None

        outcome = await self._store.run(done)
        if outcome is not None and self._on_outcome is not None:
            self._on_outcome(outcome)
            if outcome.jobs:
                self.kick()

    async def _retry(self, job: StoredJob, reason: str, after: float | None) -> None:
        if job.attempts >= self._max_attempts:
            await self._dead(job, f"gave up after {job.attempts} attempts: {reason}")
            return
        delay = after if after is not None else backoff(job.attempts)
        now = self._clock.now()
        due = now + timedelta(seconds=delay)
        log.warning(
            "outbox: job %s (%s) will retry in %.1fs: %s", job.id, job.kind.value, delay, reason
        )
        self._metrics.jobs_run.labels(job.kind.value, "retry").inc()
        await self._store.run(lambda tx: tx.retry_job(job.id, self.worker_id, due, reason, now))

    async def _postpone(self, job: StoredJob, exc: RetryLater) -> None:
        now = self._clock.now()
        due = now + timedelta(seconds=exc.after if exc.after is not None else 1.0)
        log.debug("outbox: job %s waits: %s", job.id, exc.reason)
        await self._store.run(
            lambda tx: tx.retry_job(job.id, self.worker_id, due, exc.reason, now, postpone=True)
        )

    async def _filled(self, job: StoredJob) -> StoredJob:
        """Fill ``{field}`` in the text from another job's result (``fill_from``), e.g.
        the tracking issue's URL, known only once that job ran."""
        source = job.payload.get("fill_from")
        if not source:
            return job
        result = await require_result(self._result_of, str(source))
        text = str(job.payload.get("text", "")).format_map(_Blank(result))
        return job.model_copy(update={"payload": job.payload | {"text": text}})

    async def _superseded(self, job: StoredJob) -> bool:
        """A newer edit of the same message was already applied: this one is stale."""
        target, seq = str(job.payload["target"]), int(job.payload["seq"])
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
        notices: list[Job] = []
        incident = _INCIDENT_KEY.match(job.key)
        if incident and job.kind.value.startswith("github."):
            # GitHub failed for an incident: its commander hears it in the thread.
            notices.append(
                Job(
                    kind=JobKind.SLACK_POST,
                    key=f"dead:{job.key}:thread",
                    payload={
                        "channel": None,
                        "thread_of": f"incident:{incident.group(1)}:announce",
                        "text": f":warning: Could not update GitHub ({job.kind.value}): {reason}."
                        " The operator was told; the record here is complete.",
                    },
                )
            )
        if self._operator_channel and not job.key.startswith("dead:"):
            notices.append(
                Job(
                    kind=JobKind.SLACK_POST,
                    key=f"dead:{job.key}",
                    payload={
                        "channel": self._operator_channel,
                        "text": f":warning: A {job.kind.value} job failed for good and needs a "
                        f"person: {reason} (job {job.id}, key `{job.key}`).",
                    },
                )
            )

        def unit(tx: Any) -> None:
            tx.kill_job(job.id, self.worker_id, reason, now)
            tx.enqueue(notices, now)

        await self._store.run(unit)
        if notices:
            self.kick()
