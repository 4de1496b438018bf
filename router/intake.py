"""Intake: the pipeline from parsed alerts to a committed transaction.

Order, in one place: triage (policy: what must not page) -> record alerts and
deliveries -> lifecycle decisions -> enqueue their jobs -> commit. The web handler
answers 2xx only after this returns, so "accepted" always means "durable".
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from router.alerts import Alert, AlertChange, short_hash
from router.clock import Clock
from router.metrics import Metrics
from router.policy import Outcome
from router.store import Store, StoreError
from router.store.sql import RecordedAlert, SqlTx
from router.triage import TriageConfig, triage

log = logging.getLogger(__name__)

# A hook the paging lifecycle plugs into: called inside the intake transaction with
# what was recorded, it writes its own state and enqueues its jobs.
AfterRecord = Callable[[SqlTx, list[RecordedAlert], datetime], list[Outcome]]
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
        after_record: AfterRecord | None = None,
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
        self.after_record = after_record
        self.on_committed = on_committed

    async def accept(
        self, source: str, alerts: list[Alert], delivery_ids: Sequence[str] = ()
    ) -> IntakeResult:
        """``delivery_ids``: names the sender gives this delivery (PagerDuty: the
        webhook id and the event id); if any was seen before, it is a duplicate."""
        alerts = triage(alerts, self._triage)
        now = self._clock.now()

        def unit(tx: SqlTx) -> IntakeResult:
            result = IntakeResult(received=len(alerts))
            # Every id is remembered, in this transaction: a later repeat under any
            # one of them is known, whichever arrives first.
            fresh = [tx.remember_delivery(source, d, now) for d in delivery_ids]
            if not all(fresh):
                result.duplicate_delivery = True
                return result
            recorded = tx.record_alerts(alerts, now)
            result.changes.update(r.change for r in recorded)
            result.not_paged = sum(1 for a in alerts if not a.pageable)
            if self.after_record is not None:
                result.outcomes = self.after_record(tx, recorded, now)
            return result

        started = time.perf_counter()
        try:
            result = await self._store.run(unit)
        except StoreError:
            self._metrics.store_errors.inc()
            raise
        finally:
            self._metrics.store_latency.observe(time.perf_counter() - started)
        self._count(source, alerts, result)
        if self.on_committed is not None and result.outcomes:
            self.on_committed(result.outcomes)
        return result

    def _count(self, source: str, alerts: list[Alert], result: IntakeResult) -> None:
        statuses: dict[str, int] = {}
        for alert in alerts:
            statuses[alert.status.value] = statuses.get(alert.status.value, 0) + 1
        for status, count in statuses.items():
            self._received(source, status).inc(count)
        for change, count in result.changes.items():
            if change is not AlertChange.REPEAT:
                self._recorded(source, change.value).inc(count)
        if result.not_paged:
            self._metrics.alerts_not_paged.labels(source).inc(result.not_paged)
        if not log.isEnabledFor(logging.DEBUG):
            return  # per-request lines cost time at volume; metrics carry the counts
        groups = sorted({short_hash(a.group_key) for a in alerts})
        # ids and counts only: alert text is confidential and stays out of the log
        log.debug(
            "intake source=%s groups=%s alerts=%d new=%d resolved=%d duplicate=%s",
            source,
            ",".join(groups),
            result.received,
            result.changes[AlertChange.NEW],
            result.changes[AlertChange.RESOLVED],
            result.duplicate_delivery,
        )
