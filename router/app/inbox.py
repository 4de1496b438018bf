"""The inbox processor: applies the deliveries the webhook committed, in batches.

The Alertmanager webhook checks a delivery (auth, JSON, fields: a 4xx is answered at
once), commits it to the inbox and answers 200. This worker, on the same event loop,
then takes the waiting deliveries oldest first and runs them through the intake
pipeline (``Intake.process``) in one transaction per batch, deleting their inbox rows
in that same transaction. So a delivery is applied exactly once: a crash before the
commit leaves it waiting, to be applied after the restart; after the commit it is
gone from the inbox.

Why a batch: deliveries of one group in a batch share one lifecycle step (one read of
the page, one render, one coalesced edit), which is what keeps a storm affordable.

Order: one processor at a time applies deliveries, oldest first (on PostgreSQL the
batch runs under a transaction-scoped advisory lock; a replica that finds it held
waits for the next turn), so deliveries of one group are applied in the order they
were acknowledged. Deliveries racing each other into two replicas had no order to
keep.

Digests are rendered after the batch, not in each step: a batch marks the digest
parts whose lines changed (``digest_stale``, in its transaction), and the processor
renders the marked parts, in a transaction of their own, at most every
``render_seconds`` (once each, however many batches changed them), and always once
the inbox is empty. A storm folding
thousands of pages into a digest so renders each part a few times a second, not
once per batch, and the on-call sees no less: edits of a message are coalesced to
one per ``paging.edit_interval_seconds`` anyway.

Webhooks first: while they keep arriving, the processor takes about ``share`` of the
loop (a twentieth), in batches of about ``slice_seconds`` of work (it pauses after each
in proportion, a digest render after it counted as its work), so acknowledging stays
fast and its latency low in a storm; the
oldest deliveries, the first pages, are still applied first and at once. Once the
oldest delivery of a batch has waited ``catch_up_seconds`` (10), the processor takes
``catch_up_share`` (half) until it catches up: a long flow of new groups must not
make pages wait longer and longer. When
webhooks stop coming, it drains at full speed, in batches of up to
``drain_slice_seconds`` of work (50 ms: a webhook arriving then waits no longer).
Nothing waits longer than a sustained overload makes it (the inbox lag is a metric
with an alert rule). A delivery that cannot be processed (a bug) is set aside
(``dead``), logged, counted and reported to the operator channel, and the rest go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from router.app.clock import Clock
from router.app.intake import Intake, IntakeResult
from router.app.ports import BodyParser, Store, StoreError, Tx, UnreadableBody
from router.core import keys, messages
from router.core.alerts import Alert
from router.core.jobs import SlackPost
from router.metrics import Metrics

log = logging.getLogger(__name__)

INBOX_LOCK = "inbox"  # the advisory lock one processor at a time holds (PostgreSQL)


@dataclass
class Batch:
    deliveries: int = 0  # taken from the inbox (processed or set aside)
    busy: float = 0.0  # seconds of work inside the transaction
    rendering: float = 0.0  # seconds of digest rendering after it (its own transaction)
    lags: list[float] = field(default_factory=list)  # received -> processed, seconds
    results: dict[str, IntakeResult] = field(default_factory=dict)  # by source
    locked: bool = False  # another processor has the inbox


class InboxProcessor:
    def __init__(
        self,
        store: Store,
        intake: Intake,
        metrics: Metrics,
        clock: Clock,
        *,
        parsers: Mapping[str, BodyParser],
        batch: int = 128,
        max_batch_bytes: int = 4 * 1024 * 1024,
        poll_seconds: float = 1.0,
        share: float = 0.05,
        slice_seconds: float = 0.002,
        drain_slice_seconds: float = 0.05,
        render_seconds: float = 0.25,
        catch_up_seconds: float = 10.0,
        catch_up_share: float = 0.5,
        operator_channel: str | None = None,
    ) -> None:
        self._store = store
        self._intake = intake
        self._metrics = metrics
        self._clock = clock
        self._parsers = parsers  # by the webhook a delivery came to (the wiring's)
        self._batch = batch
        self._limit = batch
        self._max_bytes = max_batch_bytes
        self._poll = poll_seconds
        self._share = share
        self._slice = slice_seconds
        self._drain_slice = drain_slice_seconds
        self._render = render_seconds
        self._catch_up_after = catch_up_seconds
        self._catch_up_share = catch_up_share
        self._rendered_at = float("-inf")  # monotonic time of the last render
        self._per_delivery = 0.0005  # seconds a delivery took, lately (a guess at first)
        self._operator_channel = operator_channel
        self._wake = asyncio.Event()
        self._stopping = False
        self._taken: list[int] = []  # ids the running batch took
        self._suspect: int | None = None  # a batch up to here failed: one by one
        self._gauges_at = 0.0
        self.processed = 0  # deliveries this process applied

    def kick(self) -> None:
        """A delivery was committed to the inbox: look now, not at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        busy = False  # webhooks arrived while the last batch was applied
        while not self._stopping:
            arriving = self._intake.enqueued
            try:
                batch = await self.run_once(self._slice_limit(busy))
            except StoreError as exc:
                log.error("inbox: store unavailable, retrying: %s", exc)
                batch = Batch()
            except Exception:  # the loop must outlive any bug: paging depends on it
                log.exception("inbox: unexpected error; the processor carries on")
                batch = Batch()
            if self._stopping:
                break
            if batch.deliveries == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
                self._wake.clear()
            busy = self._intake.enqueued != arriving
            if batch.deliveries and batch.busy:
                self._per_delivery = 0.8 * self._per_delivery + 0.2 * (
                    batch.busy / batch.deliveries
                )
            if batch.deliveries == 0:
                pass
            elif busy and self._share < 1:
                # Webhooks are arriving: leave them most of the loop.
                await asyncio.sleep(self.pause_after(batch))
            else:
                await asyncio.sleep(0)

    def pause_after(self, batch: Batch) -> float:
        """Seconds to leave the loop to the webhooks after ``batch``: ``share`` of it for
        the processor, or ``catch_up_share`` once the batch's oldest delivery waited
        ``catch_up_seconds``. The share alone caps how fast deliveries are applied
        while any arrive (about ``share`` of the full rate): under a long flow of new
        groups the wait would grow without end, and a page that waits is worse than a
        webhook answered a few milliseconds later."""
        share = self._share
        if batch.lags and max(batch.lags) >= self._catch_up_after:
            share = max(share, self._catch_up_share)
        # The render after the batch is the processor's work too: a digest part is a
        # hundred lines, and uncounted it took the loop from the webhooks unpaced.
        return (batch.busy + batch.rendering) * (1 - share) / share

    def _slice_limit(self, busy: bool) -> int:
        """Deliveries in about ``slice_seconds`` of work while webhooks arrive, else
        ``drain_slice_seconds`` (at least one): a batch of big deliveries (fifty alerts
        each, a new group each) must not hold the loop for half a second."""
        seconds = self._slice if busy else self._drain_slice
        return max(1, min(self._batch, int(seconds / max(self._per_delivery, 1e-6))))

    async def drain(self) -> int:
        """Apply batches until nothing waits (at shutdown, within its grace)."""
        applied = 0
        while True:
            batch = await self.run_once()
            if batch.deliveries == 0:
                return applied
            applied += batch.deliveries

    async def run_once(self, limit: int | None = None) -> Batch:
        """Apply one batch of waiting deliveries (at most ``limit``); what it took."""
        now = self._clock.now()
        limit = min(limit or self._limit, self._limit)
        try:
            batch = await self._store.run(lambda tx: self._apply(tx, limit, now))
        except StoreError:
            self._metrics.store_errors.inc()
            raise
        except Exception as exc:
            await self._failed(exc)
            return Batch(deliveries=1)  # not idle: go on at once, one by one
        if self._suspect is not None and self._taken and max(self._taken) >= self._suspect:
            self._suspect, self._limit = None, self._batch  # past the batch that failed
        # What the batch committed is counted and told first (the outbox wakes now).
        self.processed += batch.deliveries
        for source, result in batch.results.items():
            self._intake.processed(source, result)
        if batch.deliveries:
            self._metrics.inbox_processed.inc(batch.deliveries)
            for lag in batch.lags:
                self._metrics.inbox_lag.observe(lag)
        # Digests were rendered a moment ago: render later, or once the inbox is empty.
        if not batch.locked and (
            batch.deliveries < limit or time.monotonic() - self._rendered_at >= self._render
        ):
            batch.rendering = await self._render_digests(now)
        if time.monotonic() - self._gauges_at >= 1.0:
            self._gauges_at = time.monotonic()
            await self.refresh_gauges()
        return batch

    async def _render_digests(self, now: datetime) -> float:
        """The stale digest parts, rendered in a transaction of their own: a part that
        cannot be rendered (a bug) stays marked and is logged, and never holds up the
        deliveries, which go on being applied. Returns the seconds of work it took."""
        self._rendered_at = time.monotonic()
        took = 0.0

        def render(tx: Tx) -> int:
            nonlocal took
            started = time.perf_counter()
            try:
                return self._intake.render_digests(tx, now) if tx.try_lock(INBOX_LOCK) else 0
            finally:
                took = time.perf_counter() - started

        try:
            await self._store.run(render)
        except StoreError:
            self._metrics.store_errors.inc()
            raise
        except Exception:
            log.exception("inbox: a storm digest could not be rendered; its parts stay marked")
        return took

    async def refresh_gauges(self) -> None:
        now = self._clock.now()
        stats = await self._store.run(lambda tx: tx.inbox_stats(now))
        self._metrics.inbox_pending.set(stats.pending)
        self._metrics.inbox_oldest_age.set(stats.oldest_age_seconds)
        self._metrics.inbox_dead.set(stats.dead)

    def _apply(self, tx: Tx, limit: int, now: datetime) -> Batch:
        """One transaction: take the oldest deliveries, apply them, delete them (the
        digest parts they change are marked stale, for ``_render_digests``)."""
        if not tx.try_lock(INBOX_LOCK):
            return Batch(locked=True)
        started = time.perf_counter()
        taken = tx.inbox_batch(limit, self._max_bytes)
        self._taken = [d.id for d in taken]
        batch = Batch(deliveries=len(taken))
        by_source: dict[str, list[tuple[str, list[Alert]]]] = {}
        done = []
        for delivery in taken:
            parse = self._parsers.get(delivery.source)
            try:
                if parse is None:
                    raise UnreadableBody(f"no parser for source {delivery.source!r}")
                alerts = parse(delivery.body)
            except UnreadableBody as exc:
                # The webhook checked it, so this is a bug (or a stored body changed).
                self._bury(tx, delivery.id, f"unreadable: {exc.field or ''} {exc.message}", now)
                continue
            source = alerts[0].source.value if alerts else delivery.source
            by_source.setdefault(source, []).append((source, alerts))
            done.append(delivery.id)
            batch.lags.append(max(0.0, now.timestamp() - delivery.received_at))
        for source, deliveries in by_source.items():
            batch.results[source] = self._intake.process(tx, deliveries, now, defer_render=True)
        tx.finish_inbox(done)
        batch.busy = time.perf_counter() - started
        return batch

    async def _failed(self, exc: Exception) -> None:
        taken = self._taken
        if len(taken) > 1:
            # Some delivery of the batch cannot be applied: find it, one at a time.
            log.error("inbox: a batch of %d failed (%s); applying one by one", len(taken),
                      type(exc).__name__)  # fmt: skip
            self._suspect, self._limit = max(taken), 1
            return
        if not taken:
            raise exc
        log.exception("inbox: delivery %s cannot be applied; it is set aside", taken[0])
        now = self._clock.now()
        reason = f"failed: {type(exc).__name__}"
        await self._store.run(lambda tx: self._bury(tx, taken[0], reason, now))
        self._taken = []

    def _bury(self, tx: Tx, delivery_id: int, reason: str, now: datetime) -> None:
        """Never silent: kept as ``dead`` for a person, counted, told to the operator."""
        tx.bury_inbox(delivery_id, reason)
        if self._operator_channel:
            tx.enqueue(
                [
                    SlackPost(
                        channel=self._operator_channel,
                        text=messages.delivery_set_aside(delivery_id, reason),
                    ).job(keys.inbox_dead(delivery_id))
                ],
                now,
            )
