"""Intake: the pipeline from a delivery to a committed transaction.

Two ways in, one pipeline:

* **The inbox** (Alertmanager): the webhook handler checks the body, ``enqueue``
  commits it as received and the handler answers; ``router.app.inbox`` then processes
  waiting deliveries in batches through ``process``. Accepted means the delivery is
  durable and will be processed exactly once: the inbox row is deleted in the
  transaction that records its alerts and the jobs they cause.
* **Inline** (PagerDuty, whose events are few and name their delivery): ``accept``
  runs the same pipeline in the request's own transaction.

The order, in one place (``process``): triage (policy: what must not page) -> record
alerts -> lifecycle decisions -> enqueue their jobs -> commit.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from router.app import paging
from router.app.clock import Clock
from router.app.ports import Store, StoreError, Tx
from router.core.alerts import Alert, AlertChange, AlertStatus, Source, reported, short_hash
from router.core.policy import Outcome, Policy
from router.core.triage import TriageConfig, triage
from router.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

# Called after the commit with what the lifecycle did (metrics, waking the worker).
OnCommitted = Callable[[list[Outcome]], None]


@dataclass
class IntakeResult:
    duplicate_delivery: bool = False
    received: int = 0
    changes: Counter[AlertChange] = field(default_factory=Counter)
    not_paged: int = 0
    outcomes: list[Outcome] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "status": "duplicate" if self.duplicate_delivery else "accepted",
            "alerts": self.received,
            "new": self.changes[AlertChange.NEW],
            "resolved": self.changes[AlertChange.RESOLVED],
            "not_paged": self.not_paged,
        }


class Intake:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        clock: Clock,
        triage_config: TriageConfig,
        policy: Policy | None = None,
        on_committed: OnCommitted | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        # labels() validates and locks on every call; sources, statuses and changes
        # are few, so each child is looked up once.
        self._received = functools.cache(metrics.alerts_received.labels)
        self._recorded = functools.cache(metrics.alerts_recorded.labels)
        self._clock = clock
        self._triage = triage_config
        self.policy = policy
        self.on_committed = on_committed
        self.on_enqueued: Callable[[], None] = lambda: None  # wakes the inbox processor
        self.enqueued = 0  # deliveries put in the inbox by this process

    # -- the inbox ---------------------------------------------------------------

    async def enqueue(
        self, path: str, body: bytes, statuses: Sequence[str], source: str | None = None
    ) -> None:
        """Commit a checked delivery as received, for ``router.app.inbox`` to process.

        Returns once it is durable (SQLite: after the fsync that covers it). ``path``:
        the webhook it came to (how to read it); ``statuses`` its alerts' statuses,
        counted as received from ``source`` (whose alerts they are; ``path`` if None)."""
        now = self._clock.now()
        await self._run(lambda tx: tx.append_inbox(path, body, now))
        source = source or path
        self.enqueued += 1
        counted: dict[str, int] = {}
        for status in statuses:
            counted[status] = counted.get(status, 0) + 1
        for status, count in counted.items():
            self._received(source, status).inc(count)
        self.on_enqueued()

    def process(
        self,
        tx: Tx,
        deliveries: Sequence[tuple[str, list[Alert]]],
        now: datetime,
        *,
        defer_render: bool = False,
    ) -> IntakeResult:
        """Inside a unit: triage, record and page a batch of deliveries (in order).
        ``defer_render``: digest parts are marked stale, for ``render_digests``."""
        triaged = [triage(alerts, self._triage) for _, alerts in deliveries]
        recorded = paging.record_deliveries(
            tx, triaged, now, self.policy, defer_render=defer_render
        )
        result = IntakeResult(received=sum(len(alerts) for alerts in triaged))
        result.changes.update(r.change for r in recorded.alerts)
        result.not_paged = sum(1 for alerts in triaged for a in alerts if not a.pageable)
        result.outcomes = recorded.outcomes
        return result

    def render_digests(self, tx: Tx, now: datetime) -> int:
        """Inside a unit: render the digest parts earlier batches marked stale."""
        if self.policy is None:
            return 0
        return paging.render_stale_digests(tx, now, self.policy)

    def processed(self, source: str, result: IntakeResult) -> None:
        """After a batch committed: count what it changed, tell the lifecycle's observers."""
        self._count_changes(source, result)
        if self.on_committed is not None and result.outcomes:
            self.on_committed(result.outcomes)

    # -- a person's report -------------------------------------------------------

    def report(
        self,
        tx: Tx,
        title: str,
        actor: str,
        now: datetime,
        *,
        description: str | None = None,
        confidential: bool = False,
    ) -> IntakeResult:
        """Inside a unit: a reported incident ("page eng-primary") enters as an alert
        delivery of the source ``slack``: triaged, recorded and paged like any other.
        ``reported`` counts it once the unit committed."""
        alert = reported(title, actor, now, description=description, confidential=confidential)
        return self.process(tx, [(Source.SLACK.value, [alert])], now)

    def reported(self, result: IntakeResult) -> None:
        self._received(Source.SLACK.value, AlertStatus.FIRING.value).inc(result.received)
        self.processed(Source.SLACK.value, result)

    # -- inline ------------------------------------------------------------------

    async def accept(
        self, source: str, alerts: list[Alert], delivery_ids: Sequence[str] = ()
    ) -> IntakeResult:
        """The whole pipeline in the request's own transaction (2xx after its commit).

        ``delivery_ids``: names the sender gives this delivery (PagerDuty: the webhook
        id and the event id); if any was seen before, it is a duplicate."""
        now = self._clock.now()

        def unit(tx: Tx) -> IntakeResult:
            # Every id is remembered, in this transaction: a later repeat under any
            # one of them is known, whichever arrives first.
            fresh = [tx.remember_delivery(source, d, now) for d in delivery_ids]
            if not all(fresh):
                return IntakeResult(duplicate_delivery=True, received=len(alerts))
            return self.process(tx, [(source, alerts)], now)

        result = await self._run(unit)
        for alert in alerts:
            self._received(source, alert.status.value).inc()
        self.processed(source, result)
        return result

    async def _run(self, unit: Callable[[Tx], T]) -> T:
        started = time.perf_counter()
        try:
            return await self._store.run(unit)
        except StoreError:
            self._metrics.store_errors.inc()
            raise
        finally:
            self._metrics.store_latency.observe(time.perf_counter() - started)

    def _count_changes(self, source: str, result: IntakeResult) -> None:
        for change, count in result.changes.items():
            if change is not AlertChange.REPEAT:
                self._recorded(source, change.value).inc(count)
        if result.not_paged:
            self._metrics.alerts_not_paged.labels(source).inc(result.not_paged)
        if not log.isEnabledFor(logging.DEBUG):
            return  # per-delivery lines cost time at volume; metrics carry the counts
        groups = sorted({short_hash(o.page.group_key) for o in result.outcomes if o.page})
        # ids and counts only: alert text is confidential and stays out of the log
        log.debug(
            "intake source=%s pages=%s alerts=%d new=%d resolved=%d duplicate=%s",
            source,
            ",".join(groups),
            result.received,
            result.changes[AlertChange.NEW],
            result.changes[AlertChange.RESOLVED],
            result.duplicate_delivery,
        )
