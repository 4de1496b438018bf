"""The SQL both engines share, written once in the portable subset.

Placeholders are ``?``; the PostgreSQL engine rewrites them. Engine-specific SQL
(claiming jobs, migrations bookkeeping) is overridden in the engine's own module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from router.alerts import Alert, AlertStatus, Link, Source
from router.jobs import Job, JobKind, JobStatus, StoredJob


class AlertChange(StrEnum):
    NEW = "new"  # first time this alert is seen
    RESOLVED = "resolved"  # was firing, now resolved
    REFIRED = "refired"  # was resolved, fires again with the same startsAt
    REPEAT = "repeat"  # nothing changed (Alertmanager resends the whole group)


@dataclass(frozen=True)
class RecordedAlert:
    id: int
    alert: Alert
    change: AlertChange


@dataclass(frozen=True)
class OutboxStats:
    backlog: int  # pending jobs that are due now
    oldest_due_age_seconds: float  # 0 when nothing is due
    dead: int


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def epoch(value: datetime) -> float:
    return value.timestamp()


def from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SqlTx:
    """One open transaction. Subclasses provide ``_rows``."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    # -- alerts --------------------------------------------------------------

    def record_alerts(self, alerts: Iterable[Alert], now: datetime) -> list[RecordedAlert]:
        recorded = []
        seen = iso(now)
        for alert in alerts:
            natural_key = (
                alert.source.value,
                alert.group_key,
                alert.fingerprint,
                iso(alert.starts_at),
            )
            row = self._one(
                "SELECT id, status FROM alerts WHERE source = ? AND group_key = ?"
                " AND fingerprint = ? AND starts_at = ?",
                natural_key,
            )
            if row is None:
                inserted = self._one(
                    "INSERT INTO alerts (source, group_key, fingerprint, starts_at, status,"
                    " ends_at, labels, annotations, links, pageable, first_seen, last_seen)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (source, group_key, fingerprint, starts_at) DO NOTHING"
                    " RETURNING id",
                    (
                        *natural_key,
                        alert.status.value,
                        iso(alert.ends_at),
                        json.dumps(alert.labels, sort_keys=True),
                        json.dumps(alert.annotations, sort_keys=True),
                        json.dumps([link.model_dump() for link in alert.links]),
                        int(alert.pageable),
                        seen,
                        seen,
                    ),
                )
                if inserted is not None:
                    recorded.append(RecordedAlert(inserted[0], alert, AlertChange.NEW))
                    continue
                # Another replica inserted it between our read and write: re-read.
                row = self._one(
                    "SELECT id, status FROM alerts WHERE source = ? AND group_key = ?"
                    " AND fingerprint = ? AND starts_at = ?",
                    natural_key,
                )
                assert row is not None
            alert_id, old_status = row
            if old_status == alert.status.value:
                change = AlertChange.REPEAT
            elif alert.status is AlertStatus.RESOLVED:
                change = AlertChange.RESOLVED
            else:
                change = AlertChange.REFIRED
            self._rows(
                "UPDATE alerts SET status = ?, ends_at = ?, last_seen = ?,"
                " seen_count = seen_count + 1 WHERE id = ?",
                (alert.status.value, iso(alert.ends_at), seen, alert_id),
            )
            recorded.append(RecordedAlert(alert_id, alert, change))
        return recorded

    def alerts_in_group(self, group_key: str) -> list[Alert]:
        rows = self._rows(
            "SELECT source, group_key, fingerprint, status, starts_at, ends_at, labels,"
            " annotations, links, pageable FROM alerts WHERE group_key = ? ORDER BY id",
            (group_key,),
        )
        return [
            Alert(
                source=Source(r[0]),
                group_key=r[1],
                fingerprint=r[2],
                status=AlertStatus(r[3]),
                starts_at=datetime.fromisoformat(r[4]),
                ends_at=datetime.fromisoformat(r[5]) if r[5] else None,
                labels=json.loads(r[6]),
                annotations=json.loads(r[7]),
                links=tuple(Link(**link) for link in json.loads(r[8])),
                pageable=bool(r[9]),
            )
            for r in rows
        ]

    def count_alerts(self, status: AlertStatus | None = None) -> int:
        if status is None:
            row = self._one("SELECT count(*) FROM alerts")
        else:
            row = self._one("SELECT count(*) FROM alerts WHERE status = ?", (status.value,))
        assert row is not None
        return int(row[0])

    # -- deliveries ----------------------------------------------------------

    def remember_delivery(self, source: str, delivery_id: str, now: datetime) -> bool:
        """True the first time a delivery id is seen; False for a redelivery."""
        row = self._one(
            "INSERT INTO deliveries (source, delivery_id, received_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING delivery_id",
            (source, delivery_id, iso(now)),
        )
        return row is not None

    # -- outbox --------------------------------------------------------------

    def enqueue(self, jobs: Iterable[Job], now: datetime) -> int:
        """Add jobs; a job whose key already exists is skipped (idempotency)."""
        added = 0
        for job in jobs:
            row = self._one(
                "INSERT INTO jobs (kind, key, payload, status, due_at, created_at, updated_at)"
                " VALUES (?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id",
                (
                    job.kind.value,
                    job.key,
                    json.dumps(job.payload, sort_keys=True),
                    epoch(job.due_at or now),
                    epoch(now),
                    epoch(now),
                ),
            )
            added += row is not None
        return added

    def cancel_jobs(self, keys: Iterable[str], now: datetime) -> int:
        cancelled = 0
        for key in keys:
            row = self._one(
                "UPDATE jobs SET status = 'cancelled', updated_at = ?"
                " WHERE key = ? AND status = 'pending' RETURNING id",
                (epoch(now), key),
            )
            cancelled += row is not None
        return cancelled

    def claim_jobs(
        self, worker: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[StoredJob]:
        """Claim due jobs for ``worker`` until the lease ends (engine-specific)."""
        raise NotImplementedError

    def _claim_candidates_sql(self) -> str:
        # A running job whose lease ran out belongs to a worker that died: take it.
        return (
            "SELECT id FROM jobs WHERE (status = 'pending' AND due_at <= ?)"
            " OR (status = 'running' AND claimed_until < ?) ORDER BY due_at LIMIT ?"
        )

    def _mark_claimed(
        self, ids: Sequence[int], worker: str, now: datetime, lease_seconds: float
    ) -> list[StoredJob]:
        claimed = []
        for job_id in ids:
            row = self._one(
                "UPDATE jobs SET status = 'running', claimed_by = ?, claimed_until = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE id = ?"
                " RETURNING id, kind, key, payload, due_at, attempts, status, last_error",
                (worker, epoch(now) + lease_seconds, epoch(now), job_id),
            )
            if row is not None:
                claimed.append(_stored_job(row))
        return claimed

    def finish_job(self, job_id: int, worker: str, result: dict[str, Any], now: datetime) -> bool:
        row = self._one(
            "UPDATE jobs SET status = 'done', result = ?, claimed_by = NULL,"
            " claimed_until = NULL, updated_at = ? WHERE id = ? AND claimed_by = ?"
            " AND status = 'running' RETURNING id",
            (json.dumps(result, sort_keys=True), epoch(now), job_id, worker),
        )
        return row is not None

    def retry_job(
        self, job_id: int, worker: str, due_at: datetime, error: str, now: datetime
    ) -> bool:
        row = self._one(
            "UPDATE jobs SET status = 'pending', due_at = ?, last_error = ?,"
            " claimed_by = NULL, claimed_until = NULL, updated_at = ?"
            " WHERE id = ? AND claimed_by = ? AND status = 'running' RETURNING id",
            (epoch(due_at), error, epoch(now), job_id, worker),
        )
        return row is not None

    def kill_job(self, job_id: int, worker: str, error: str, now: datetime) -> bool:
        row = self._one(
            "UPDATE jobs SET status = 'dead', last_error = ?, claimed_by = NULL,"
            " claimed_until = NULL, updated_at = ? WHERE id = ? AND claimed_by = ?"
            " AND status = 'running' RETURNING id",
            (error, epoch(now), job_id, worker),
        )
        return row is not None

    def release_jobs(self, worker: str, now: datetime) -> int:
        """Give back this worker's claims (shutdown), so another worker runs them."""
        rows = self._rows(
            "UPDATE jobs SET status = 'pending', claimed_by = NULL, claimed_until = NULL,"
            " attempts = attempts - 1, updated_at = ?"
            " WHERE claimed_by = ? AND status = 'running' RETURNING id",
            (epoch(now), worker),
        )
        return len(rows)

    def job_by_key(self, key: str) -> tuple[StoredJob, dict[str, Any] | None] | None:
        row = self._one(
            "SELECT id, kind, key, payload, due_at, attempts, status, last_error, result"
            " FROM jobs WHERE key = ?",
            (key,),
        )
        if row is None:
            return None
        return _stored_job(row[:8]), (json.loads(row[8]) if row[8] else None)

    def jobs(self, status: JobStatus | None = None) -> list[StoredJob]:
        sql = "SELECT id, kind, key, payload, due_at, attempts, status, last_error FROM jobs"
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status.value,)
        return [_stored_job(row) for row in self._rows(sql + " ORDER BY id", params)]

    def outbox_stats(self, now: datetime) -> OutboxStats:
        row = self._one(
            "SELECT count(*), min(due_at) FROM jobs WHERE status = 'pending' AND due_at <= ?",
            (epoch(now),),
        )
        dead = self._one("SELECT count(*) FROM jobs WHERE status = 'dead'")
        assert row is not None and dead is not None
        oldest = max(0.0, epoch(now) - row[1]) if row[1] is not None else 0.0
        return OutboxStats(int(row[0]), oldest, int(dead[0]))


def _stored_job(row: Sequence[Any]) -> StoredJob:
    return StoredJob(
        id=row[0],
        kind=JobKind(row[1]),
        key=row[2],
        payload=json.loads(row[3]),
        due_at=from_epoch(row[4]),
        attempts=row[5],
        status=JobStatus(row[6]),
        last_error=row[7],
    )
