"""The SQL both engines share, written once in the portable subset.

Placeholders are ``?``; the PostgreSQL engine rewrites them. Engine-specific SQL
(claiming jobs, migrations bookkeeping) is overridden in the engine's own module.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json

from router.adapters.store.reads import ConsoleReads
from router.app.ports import InboxDelivery, InboxStats, OutboxStats, RecordedAlert
from router.core import keys as job_keys
from router.core.alerts import Alert, AlertChange, AlertStatus, Link, Source, bounded_key
from router.core.digest import Digest, DigestLine, positions
from router.core.incident import Incident, TimelineEntry
from router.core.jobs import Job, JobKind, JobStatus, StoredJob
from router.core.page import AlertCounts, Page, PageAlerts, PageStatus
from router.core.severity import Severity


class StaleState(Exception):
    """A page or incident changed since this unit read it (a racing replica).

    Engines that can race (PostgreSQL) run the whole unit again on a fresh read."""


# What a StoredJob is read from, in _stored_job's order.
JOB_COLUMNS = "id, kind, key, payload, due_at, attempts, status, last_error, started_at"


def _json(value: Any) -> str:
    # pydantic_core's encoder: several times faster than json.dumps on the hot path.
    return to_json(value).decode()


_AlertKey = tuple[str, str, str, str]  # source, group key, fingerprint, starts_at
_ROWS_PER_STATEMENT = 500  # well under SQLite's 32766 and PostgreSQL's 65535 parameters
_ALERT_COLUMNS = (
    "source, group_key, fingerprint, status, starts_at, ends_at, labels, annotations,"
    " links, pageable"
)
# A claimed job going back to pending; but at most one edit of a message waits, so an
# edit whose message got a newer edit meanwhile (it carries the newer state) is done.
_BACK_TO_PENDING = (
    "status = CASE WHEN jobs.target IS NOT NULL AND EXISTS (SELECT 1 FROM jobs AS newer"
    " WHERE newer.target = jobs.target AND newer.status = 'pending') THEN 'done'"
    " ELSE 'pending' END, result = CASE WHEN jobs.target IS NOT NULL AND EXISTS"
    " (SELECT 1 FROM jobs AS newer WHERE newer.target = jobs.target AND"
    " newer.status = 'pending') THEN '{\"superseded\": true}' ELSE jobs.result END"
)
_LINE_COLUMNS = (
    "position, page_key, title, severity, firing, resolved, status, all_resolved, incident_number"
)


def _links_json(links: Sequence[Link]) -> str:
    # Plain dicts: model_dump() per link cost more than the INSERT it feeds.
    return _json([{"href": link.href, "text": link.text} for link in links]) if links else "[]"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def epoch(value: datetime) -> float:
    return value.timestamp()


def from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SqlTx(ConsoleReads):
    """One open transaction. Subclasses provide ``_rows``."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def lock(self, name: str) -> None:
        """Serialise transactions that work on ``name`` (e.g. one person's pages).
        Nothing to do where transactions already run one at a time (SQLite)."""

    def try_lock(self, name: str) -> bool:
        """``lock`` if nobody holds it, without waiting; False when another does."""
        return True

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    # -- alerts --------------------------------------------------------------

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each parameter row (the driver loops, not Python)."""
        raise NotImplementedError

    def record_alerts(
        self,
        alerts: Iterable[Alert],
        now: datetime,
        *,
        page_key: str | None = None,
        order: Callable[[Alert], int] | None = None,
    ) -> list[RecordedAlert]:
        """Record a delivery's alerts: new ones inserted, known ones updated.

        ``page_key``: the page the group's pageable alerts now belong to (its active
        page); ``order``: each alert's severity order (``severity.order``), so the
        page finds its worst alert by index. A few statements per delivery, not per
        alert: Alertmanager resends whole groups, so a delivery of 50 alerts is
        common, and usually all known."""
        alerts = list(alerts)
        seen = iso(now)
        keys: list[_AlertKey] = [
            (a.source.value, a.group_key, a.fingerprint, iso(a.starts_at) or "") for a in alerts
        ]
        pages = [page_key if a.pageable else None for a in alerts]
        orders = [order(a) for a in alerts] if order is not None else [0] * len(alerts)
        # Insert first: a delivery is mostly all new (a new group) or all known.
        inserted = self._insert_alerts(alerts, keys, seen, pages, orders)
        missing = {key for key in keys if key not in inserted}
        # Known (a resend, a resolution, or a racing replica's insert).
        state = self._alert_states(missing) if missing else {}
        recorded = []
        updates = []
        for alert, key, page, rank in zip(alerts, keys, pages, orders, strict=True):
            if key in inserted:
                alert_id = inserted.pop(key)  # the first of duplicates is the new one
                state[key] = (alert_id, alert.status.value, page)
                recorded.append(RecordedAlert(alert_id, alert, AlertChange.NEW))
                continue
            alert_id, old_status, old_page = state[key]
            if old_status == alert.status.value:
                change = AlertChange.REPEAT
            elif alert.status is AlertStatus.RESOLVED:
                change = AlertChange.RESOLVED
            else:
                change = AlertChange.REFIRED
            page = page or old_page  # an alert stays with its page until another takes it
            state[key] = (alert_id, alert.status.value, page)
            updates.append((alert.status.value, iso(alert.ends_at), seen, page, rank, alert_id))
            recorded.append(RecordedAlert(alert_id, alert, change, (old_status, old_page)))
        if updates:
            self._many(
                "UPDATE alerts SET status = ?, ends_at = ?, last_seen = ?,"
                " seen_count = seen_count + 1, page_key = ?, severity_order = ? WHERE id = ?",
                updates,
            )
        return recorded

    def _insert_alerts(
        self,
        alerts: list[Alert],
        keys: list[_AlertKey],
        seen: str | None,
        pages: list[str | None],
        orders: list[int],
    ) -> dict[_AlertKey, int]:
        """Insert what is new, many rows per statement; the ids of the rows inserted."""
        inserted: dict[_AlertKey, int] = {}
        for start in range(0, len(alerts), _ROWS_PER_STATEMENT):
            chunk = range(start, min(start + _ROWS_PER_STATEMENT, len(alerts)))
            params: list[Any] = []
            for i in chunk:
                alert = alerts[i]
                params += (
                    *keys[i],
                    alert.status.value,
                    iso(alert.ends_at),
                    _json(alert.labels),
                    _json(alert.annotations),
                    _links_json(alert.links),
                    int(alert.pageable),
                    seen,
                    seen,
                    pages[i],
                    orders[i],
                )
            rows = self._rows(
                "INSERT INTO alerts (source, group_key, fingerprint, starts_at, status,"
                " ends_at, labels, annotations, links, pageable, first_seen, last_seen,"
                " page_key, severity_order) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
                + " ON CONFLICT (source, group_key, fingerprint, starts_at) DO NOTHING"
                # RETURNING's order is not the VALUES' order: the key comes back too.
                " RETURNING id, source, group_key, fingerprint, starts_at",
                params,
            )
            for alert_id, *key in rows:
                inserted[(key[0], key[1], key[2], key[3])] = alert_id
        return inserted

    def _alert_states(self, keys: set[_AlertKey]) -> dict[_AlertKey, tuple[int, str, str | None]]:
        """Id, status and page of known alerts, one query per group (and chunk)."""
        by_group: dict[tuple[str, str], list[str]] = defaultdict(list)
        for source, group_key, fingerprint, _ in keys:
            by_group[(source, group_key)].append(fingerprint)
        states: dict[_AlertKey, tuple[int, str, str | None]] = {}
        for (source, group_key), fingerprints in by_group.items():
            unique = sorted(set(fingerprints))
            for start in range(0, len(unique), _ROWS_PER_STATEMENT):
                chunk = unique[start : start + _ROWS_PER_STATEMENT]
                rows = self._rows(
                    "SELECT id, fingerprint, starts_at, status, page_key FROM alerts"
                    " WHERE source = ? AND group_key = ? AND fingerprint IN ("
                    + ", ".join("?" * len(chunk))
                    + ")",
                    (source, group_key, *chunk),
                )
                for alert_id, fingerprint, starts_at, status, page in rows:
                    key = (source, group_key, fingerprint, starts_at)
                    if key in keys:
                        states[key] = (alert_id, status, page)
        return states

    def move_alerts(self, ids: Iterable[int], page_key: str) -> None:
        """The alerts ``ids`` now belong to ``page_key`` (a page opened for them)."""
        unique = sorted(set(ids))
        for start in range(0, len(unique), _ROWS_PER_STATEMENT):
            chunk = unique[start : start + _ROWS_PER_STATEMENT]
            self._rows(
                "UPDATE alerts SET page_key = ? WHERE id IN (" + ", ".join("?" * len(chunk)) + ")",
                (page_key, *chunk),
            )

    def page_view(self, page_key: str, counts: AlertCounts, limit: int) -> PageAlerts:
        """A page's alerts as decisions see them: its counts (kept on the page), the
        ``limit`` it shows (firing first, then newest) and its worst firing alert, each
        read by index: at most ``limit + 1`` rows, whatever the group's size."""
        rows = self._rows(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE page_key = ? AND status = 'firing'"
            " ORDER BY id DESC LIMIT ?",
            (page_key, limit),
        )
        if len(rows) < limit:
            rows += self._rows(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE page_key = ?"
                " AND status = 'resolved' ORDER BY id DESC LIMIT ?",
                (page_key, limit - len(rows)),
            )
        worst = self._one(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE page_key = ? AND status = 'firing'"
            " ORDER BY severity_order, id LIMIT 1",
            (page_key,),
        )
        return PageAlerts(
            firing=counts.firing,
            resolved=counts.resolved,
            shown=tuple(_alert(row) for row in rows),
            worst=_alert(worst) if worst is not None else None,
        )

    def count_page_alerts(self, page_key: str) -> AlertCounts:
        """Count a page's alerts: once, for a page stored before counts were kept."""
        counts = dict(
            self._rows(
                "SELECT status, count(*) FROM alerts WHERE page_key = ? GROUP BY status",
                (page_key,),
            )
        )
        return AlertCounts(firing=counts.get("firing", 0), resolved=counts.get("resolved", 0))

    def rank_page_alerts(self, page_key: str, order: Callable[[Alert], int]) -> None:
        """Give a page's alerts their severity order: once, for alerts stored before
        the order was kept (then every delivery keeps it)."""
        rows = self._rows(
            f"SELECT id, {_ALERT_COLUMNS} FROM alerts WHERE page_key = ?", (page_key,)
        )
        if rows:
            self._many(
                "UPDATE alerts SET severity_order = ? WHERE id = ?",
                [(order(_alert(row[1:])), row[0]) for row in rows],
            )

    def alerts_in_group(
        self, group_key: str, since: datetime | None = None, pageable_only: bool = False
    ) -> list[Alert]:
        """Every alert of a group (for tools and tests: decisions use ``page_view``)."""
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE group_key = ?"
        params: list[Any] = [group_key]
        if since is not None:
            sql += " AND last_seen >= ?"
            params.append(iso(since))
        if pageable_only:
            sql += " AND pageable = 1"
        return [_alert(row) for row in self._rows(sql + " ORDER BY id", params)]

    def count_alerts(self, status: AlertStatus | None = None) -> int:
        if status is None:
            row = self._one("SELECT count(*) FROM alerts")
        else:
            row = self._one("SELECT count(*) FROM alerts WHERE status = ?", (status.value,))
        assert row is not None
        return int(row[0])

    # -- pages ---------------------------------------------------------------

    def insert_page(self, page: Page) -> None:
        self._rows(
            "INSERT INTO pages (key, group_key, status, active, assignee, digest_key, opened_at,"
            " state, version, alert_name, decided_at, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                page.key,
                page.group_key,
                page.status.value,
                int(page.active),
                page.assignee,
                page.digest_key,
                epoch(page.opened_at),
                page.model_dump_json(),
                page.version,
                *_page_facts(page),
            ),
        )

    def save_page(self, page: Page) -> None:
        """Store ``page`` over the version it was derived from (``page.version - 1``)."""
        row = self._one(
            "UPDATE pages SET status = ?, active = ?, assignee = ?, digest_key = ?, state = ?,"
            " version = ?, alert_name = ?, decided_at = ?, reason = ?"
            " WHERE key = ? AND version = ? RETURNING id",
            (
                page.status.value,
                int(page.active),
                page.assignee,
                page.digest_key,
                page.model_dump_json(),
                page.version,
                *_page_facts(page),
                page.key,
                page.version - 1,
            ),
        )
        if row is None:
            raise StaleState(f"page {page.key} changed concurrently")

    def page(self, key: str) -> Page | None:
        row = self._one("SELECT state FROM pages WHERE key = ?", (key,))
        return Page.model_validate_json(row[0]) if row else None

    def active_page(self, group_key: str) -> Page | None:
        row = self._one("SELECT state FROM pages WHERE group_key = ? AND active = 1", (group_key,))
        return Page.model_validate_json(row[0]) if row else None

    def recent_pages(self, assignee: str, since: datetime) -> int:
        """Pages delivered to ``assignee`` one by one (not folded) since ``since``: a
        partial index of those pages only, never the folded thousands of a storm."""
        row = self._one(
            "SELECT count(*) FROM pages WHERE assignee = ? AND opened_at >= ?"
            " AND digest_key IS NULL",
            (assignee, epoch(since)),
        )
        assert row is not None
        return int(row[0])

    def pages(self) -> list[Page]:
        return [
            Page.model_validate_json(row[0])
            for row in self._rows("SELECT state FROM pages ORDER BY id")
        ]

    # -- storm digests -------------------------------------------------------

    def digest(self, key: str) -> Digest | None:
        row = self._one("SELECT state FROM digests WHERE key = ?", (key,))
        return Digest.model_validate_json(row[0]) if row else None

    def save_digest(self, digest: Digest) -> None:
        """Insert, or store over the version it was derived from (``version - 1``)."""
        row = self._one(
            "INSERT INTO digests (key, state, version) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET state = excluded.state, version = excluded.version"
            " WHERE digests.version = excluded.version - 1 RETURNING key",
            (digest.key, digest.model_dump_json(), digest.version),
        )
        if row is None:
            raise StaleState(f"digest {digest.key} changed concurrently")

    def save_digest_line(self, digest_key: str, line: DigestLine) -> None:
        self._rows(
            f"INSERT INTO digest_lines (digest_key, {_LINE_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest_key, position) DO UPDATE"
            " SET title = excluded.title, severity = excluded.severity,"
            " firing = excluded.firing, resolved = excluded.resolved,"
            " status = excluded.status, all_resolved = excluded.all_resolved,"
            " incident_number = excluded.incident_number",
            (
                digest_key,
                line.position,
                line.page_key,
                line.title,
                line.severity.value,
                line.firing,
                line.resolved,
                line.status.value,
                int(line.all_resolved),
                line.incident_number,
            ),
        )

    def digest_lines(self, digest_key: str, part: int) -> list[DigestLine]:
        """The lines of one part of a digest (at most ``digest.PART_SIZE``)."""
        span = positions(part)
        rows = self._rows(
            f"SELECT {_LINE_COLUMNS} FROM digest_lines WHERE digest_key = ?"
            " AND position BETWEEN ? AND ? ORDER BY position",
            (digest_key, span.start, span.stop - 1),
        )
        return [_line(row) for row in rows]

    def mark_digests_stale(self, parts: Iterable[tuple[str, int]]) -> None:
        """Parts to render later (``digest_stale``): once each, however many changes."""
        rows = sorted(set(parts))
        if rows:
            self._many(
                "INSERT INTO digest_stale (digest_key, part) VALUES (?, ?)"
                " ON CONFLICT (digest_key, part) DO NOTHING",
                rows,
            )

    def stale_digests(self) -> set[tuple[str, int]]:
        return {
            (str(k), int(p)) for k, p in self._rows("SELECT digest_key, part FROM digest_stale")
        }

    def clear_stale_digests(self, parts: Iterable[tuple[str, int]]) -> None:
        rows = sorted(set(parts))
        if rows:
            self._many("DELETE FROM digest_stale WHERE digest_key = ? AND part = ?", rows)

    def waiting_digest_lines(self, digest_key: str) -> list[DigestLine]:
        """The digest's pages still waiting for a decision (for its escalation)."""
        rows = self._rows(
            f"SELECT {_LINE_COLUMNS} FROM digest_lines WHERE digest_key = ?"
            " AND status = 'open' AND all_resolved = 0 ORDER BY position",
            (digest_key,),
        )
        return [_line(row) for row in rows]

    # -- incidents -----------------------------------------------------------

    def next_incident_number(self) -> int:
        row = self._one("SELECT coalesce(max(number), 0) + 1 FROM incidents")
        assert row is not None
        return int(row[0])

    def insert_incident(self, incident: Incident) -> None:
        self._rows(
            "INSERT INTO incidents (number, page_key, status, declared_at, state, version,"
            " severity, commander, confidential, channel_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                incident.number,
                incident.page_key,
                incident.status.value,
                epoch(incident.declared_at),
                incident.model_dump_json(),
                incident.version,
                *_incident_facts(incident),
                incident.channel_id,
            ),
        )

    def save_incident(self, incident: Incident) -> None:
        row = self._one(
            "UPDATE incidents SET status = ?, state = ?, version = ?, severity = ?,"
            " commander = ?, confidential = ?, channel_id = ?"
            " WHERE number = ? AND version = ? RETURNING id",
            (
                incident.status.value,
                incident.model_dump_json(),
                incident.version,
                *_incident_facts(incident),
                incident.channel_id,
                incident.number,
                incident.version - 1,
            ),
        )
        if row is None:
            raise StaleState(f"incident {incident.number} changed concurrently")

    def incident(self, number: int) -> Incident | None:
        row = self._one("SELECT state FROM incidents WHERE number = ?", (number,))
        return Incident.model_validate_json(row[0]) if row else None

    def incident_in_channel(self, channel_id: str) -> Incident | None:
        """The incident whose own Slack channel is ``channel_id``, if any."""
        row = self._one("SELECT state FROM incidents WHERE channel_id = ?", (channel_id,))
        return Incident.model_validate_json(row[0]) if row else None

    def incidents(self, statuses: Iterable[str] | None = None) -> list[Incident]:
        rows = self._rows("SELECT status, state FROM incidents ORDER BY number")
        wanted = set(statuses) if statuses is not None else None
        return [
            Incident.model_validate_json(row[1])
            for row in rows
            if wanted is None or row[0] in wanted
        ]

    def incident_stats(self) -> tuple[dict[str, int], int]:
        """(open incidents by severity, post-mortems owed), for the gauges."""
        open_by_severity: dict[str, int] = {}
        owed = 0
        for incident in self.incidents(("active", "mitigated", "resolved")):
            if incident.open:
                key = incident.severity.value
                open_by_severity[key] = open_by_severity.get(key, 0) + 1
            owed += incident.postmortem_owed
        return open_by_severity, owed

    # -- timeline ------------------------------------------------------------

    def append_timeline(
        self, entries: Iterable[TimelineEntry], page_key: str | None, incident_number: int | None
    ) -> None:
        for entry in entries:
            self._rows(
                "INSERT INTO timeline (page_key, incident_number, at, actor, kind, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    page_key,
                    incident_number,
                    epoch(entry.at),
                    entry.actor,
                    entry.kind,
                    json.dumps(entry.data, sort_keys=True),
                ),
            )

    def timeline(self, incident_number: int, page_key: str | None = None) -> list[TimelineEntry]:
        """An incident's record, including what happened to its page before it."""
        rows = self._rows(
            "SELECT at, actor, kind, data FROM timeline WHERE incident_number = ?"
            " OR (page_key IS NOT NULL AND page_key = ?) ORDER BY at, id",
            (incident_number, page_key),
        )
        return [
            TimelineEntry(at=from_epoch(r[0]), actor=r[1], kind=r[2], data=json.loads(r[3]))
            for r in rows
        ]

    # -- deliveries ----------------------------------------------------------

    def remember_delivery(self, source: str, delivery_id: str, now: datetime) -> bool:
        """True the first time a delivery id is seen; False for a redelivery."""
        row = self._one(
            "INSERT INTO deliveries (source, delivery_id, received_at) VALUES (?, ?, ?)"
            " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING delivery_id",
            # Ids are made of what senders send (Slack: action, message and user):
            # bounded, or a long one could never be stored in the primary key.
            (source, bounded_key(delivery_id), iso(now)),
        )
        return row is not None

    def forget_delivery(self, source: str, delivery_id: str) -> None:
        """Undo ``remember_delivery`` in this transaction (nothing was applied)."""
        self._rows(
            "DELETE FROM deliveries WHERE source = ? AND delivery_id = ?",
            (source, bounded_key(delivery_id)),
        )

    # -- inbox ---------------------------------------------------------------

    def append_inbox(self, source: str, body: bytes, now: datetime) -> None:
        self._rows(
            "INSERT INTO inbox (source, received_at, body) VALUES (?, ?, ?)",
            (source, epoch(now), body),
        )

    def inbox_batch(self, limit: int, max_bytes: int) -> list[InboxDelivery]:
        """The oldest waiting deliveries, in the order they arrived: at most ``limit``,
        and no more than ``max_bytes`` of bodies (but always the first one)."""
        sizes = self._rows(
            "SELECT id, length(body) FROM inbox WHERE status = 'pending' ORDER BY id LIMIT ?",
            (limit,),
        )
        ids: list[int] = []
        total = 0
        for delivery_id, size in sizes:
            if ids and total + size > max_bytes:
                break
            ids.append(delivery_id)
            total += size
        if not ids:
            return []
        rows = self._rows(
            "SELECT id, source, received_at, body FROM inbox WHERE id IN ("
            + ", ".join("?" * len(ids))
            + ") ORDER BY id",
            ids,
        )
        return [InboxDelivery(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def finish_inbox(self, ids: Sequence[int]) -> int:
        """Processed: gone, in the transaction that applied them (exactly once)."""
        done = 0
        for start in range(0, len(ids), _ROWS_PER_STATEMENT):
            chunk = ids[start : start + _ROWS_PER_STATEMENT]
            done += len(
                self._rows(
                    "DELETE FROM inbox WHERE id IN (" + ", ".join("?" * len(chunk)) + ")"
                    " AND status = 'pending' RETURNING id",
                    chunk,
                )
            )
        return done

    def bury_inbox(self, delivery_id: int, error: str) -> None:
        """A delivery that cannot be processed (a bug): kept, out of the way, for people."""
        self._rows(
            "UPDATE inbox SET status = 'dead', error = ? WHERE id = ? AND status = 'pending'",
            (error, delivery_id),
        )

    def inbox_stats(self, now: datetime) -> InboxStats:
        row = self._one("SELECT count(*), min(received_at) FROM inbox WHERE status = 'pending'")
        dead = self._one("SELECT count(*) FROM inbox WHERE status = 'dead'")
        assert row is not None and dead is not None
        oldest = max(0.0, epoch(now) - row[1]) if row[1] is not None else 0.0
        return InboxStats(int(row[0]), oldest, int(dead[0]))

    # -- outbox --------------------------------------------------------------

    def enqueue(self, jobs: Iterable[Job], now: datetime, edit_interval: float = 0.0) -> int:
        """Add jobs; a job whose key already exists is skipped (idempotency), unless it
        was cancelled: then it is armed again (a timer re-armed after a cancel).

        Message edits (``slack.update`` with ``target`` and ``seq``) are coalesced:
        see ``_enqueue_edit``; ``edit_interval`` is ``paging.edit_interval_seconds``."""
        added = 0
        for job in jobs:
            if job.kind is JobKind.SLACK_UPDATE and "target" in job.payload:
                added += self._enqueue_edit(job, now, edit_interval)
                continue
            row = self._one(
                "INSERT INTO jobs (kind, key, payload, status, due_at, created_at, updated_at)"
                " VALUES (?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " status = 'pending', payload = excluded.payload, due_at = excluded.due_at,"
                " attempts = 0, last_error = NULL, updated_at = excluded.updated_at"
                " WHERE jobs.status = 'cancelled' RETURNING id",
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

    def _enqueue_edit(self, job: Job, now: datetime, interval: float) -> int:
        """At most one edit of a message waits at a time, and it carries the newest
        state: many changes in a short time make one ``chat.update``, due no sooner
        than ``interval`` after the last edit applied. Versions (``seq``) only go up,
        so an older state never replaces a newer one.

        1. An edit of it is waiting: that edit now carries this state.
        2. The message itself is not sent yet: it goes out with this state instead.
           (Second: when a post failed and waits again behind an edit made while it
           ran, the edit is the newer, and it follows the post.)
        3. Otherwise a new edit, unless the message already shows this version; due
           ``interval`` after the last edit applied (or the one being applied now)."""
        target, seq = str(job.payload["target"]), int(job.payload["seq"])
        content = {k: v for k, v in job.payload.items() if k in ("text", "blocks")}
        for sql in (
            "SELECT id, payload FROM jobs WHERE target = ? AND status = 'pending'",
            "SELECT id, payload FROM jobs WHERE key = ? AND status = 'pending'",
        ):
            row = self._one(sql, (target,))
            if row is None:
                continue
            waiting = json.loads(row[1])
            if int(waiting.get("seq", -1)) >= seq:
                return 0  # it already carries this state or a newer one
            # ``status = 'pending'`` again: a worker may have claimed it meanwhile.
            if self._one(
                "UPDATE jobs SET payload = ?, updated_at = ? WHERE id = ?"
                " AND status = 'pending' RETURNING id",
                (json.dumps(waiting | content | {"seq": seq}, sort_keys=True), epoch(now),
                 row[0]),
            ):  # fmt: skip
                return 0
        applied = self._one(
            "SELECT seq, applied_at FROM message_versions WHERE target = ?", (target,)
        )
        if applied is not None and int(applied[0]) >= seq:
            return 0
        due = epoch(job.due_at or now)
        if applied is not None and applied[1] is not None:
            due = max(due, float(applied[1]) + interval)
        if self._one("SELECT 1 FROM jobs WHERE target = ? AND status = 'running'", (target,)):
            due = max(due, epoch(now) + interval)  # one is being applied right now
        row = self._one(
            "INSERT INTO jobs (kind, key, payload, status, due_at, created_at, updated_at,"
            " target) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
            " RETURNING id",
            (
                job.kind.value,
                job.key,
                json.dumps(job.payload, sort_keys=True),
                due,
                epoch(now),
                epoch(now),
                target,
            ),
        )
        return int(row is not None)

    def cancel_jobs(self, keys: Iterable[str], now: datetime, prefix: bool = False) -> int:
        """Cancel pending jobs by key (or by key prefix: all arms of a timer)."""
        cancelled = 0
        test = "substr(key, 1, ?) = ?" if prefix else "key = ?"
        for key in keys:
            params: tuple[Any, ...] = (len(key), key) if prefix else (key,)
            rows = self._rows(
                f"UPDATE jobs SET status = 'cancelled', updated_at = ?"
                f" WHERE {test} AND status = 'pending' RETURNING id",
                (epoch(now), *params),
            )
            cancelled += len(rows)
        return cancelled

    def claim_jobs(
        self, worker: str, now: datetime, limit: int, lease_seconds: float
    ) -> list[StoredJob]:
        """Claim due jobs for ``worker`` until the lease ends (engine-specific)."""
        raise NotImplementedError

    def _claim_candidates_sql(self) -> str:
        """Parameters: now, now, now, limit.

        A running job whose lease ran out belongs to a worker that died: take it.
        An edit of a message another worker is applying now waits for it, on every
        replica: claimed meanwhile, the newer edit could reach Slack first and the
        older then overwrite it (the running set is small: the ``jobs_due`` index).
        Ties by id: jobs held back together (their system was down) resume in the
        order they were made, so pages reach a person in order of arrival (and a
        digest's parts in order)."""
        return (
            "SELECT id FROM jobs WHERE (status = 'pending' AND due_at <= ? AND (target IS NULL"
            " OR NOT EXISTS (SELECT 1 FROM jobs AS applying WHERE applying.status = 'running'"
            " AND applying.target = jobs.target AND applying.claimed_until >= ?)))"
            " OR (status = 'running' AND claimed_until < ?) ORDER BY due_at, id LIMIT ?"
        )

    def _mark_claimed(
        self, ids: Sequence[int], worker: str, now: datetime, lease_seconds: float
    ) -> list[StoredJob]:
        claimed = []
        for job_id in ids:
            row = self._one(
                "UPDATE jobs SET status = 'running', claimed_by = ?, claimed_until = ?,"
                " attempts = attempts + 1, updated_at = ? WHERE id = ?"
                " RETURNING " + JOB_COLUMNS,
                (worker, epoch(now) + lease_seconds, epoch(now), job_id),
            )
            if row is not None:
                claimed.append(_stored_job(row))
        return claimed

    def extend_claim(
        self, job_id: int, worker: str, until: datetime, start: datetime | None = None
    ) -> bool:
        """Renew the lease just before running: a job queued behind slow ones must
        not be taken over by another replica meanwhile. False: the claim was lost.

        ``start``: the adapter is about to be called, so from now on the job may have
        happened; ``started_at`` stays set until an outcome is recorded (the earliest
        start is kept, so a look-up covers every attempt)."""
        row = self._one(
            "UPDATE jobs SET claimed_until = ?, started_at = COALESCE(started_at, ?)"
            " WHERE id = ? AND claimed_by = ? AND status = 'running' RETURNING id",
            (epoch(until), None if start is None else epoch(start), job_id, worker),
        )
        return row is not None

    def finish_job(self, job_id: int, worker: str, result: dict[str, Any], now: datetime) -> bool:
        row = self._one(
            "UPDATE jobs SET status = 'done', result = ?, claimed_by = NULL,"
            " claimed_until = NULL, started_at = NULL, updated_at = ?"
            " WHERE id = ? AND claimed_by = ?"
            " AND status = 'running' RETURNING id",
            (json.dumps(result, sort_keys=True), epoch(now), job_id, worker),
        )
        return row is not None

    def retry_job(
        self,
        job_id: int,
        worker: str,
        due_at: datetime,
        error: str,
        now: datetime,
        postpone: bool = False,
        in_doubt: bool = False,
    ) -> bool:
        """Back to pending until ``due_at``. ``postpone``: it only waited for another
        job (or for its system to come back), so the attempt its claim counted is given
        back. ``in_doubt``: whether it happened is still unknown (a look-up or a call
        that failed half-way), so ``started_at`` is kept for the next attempt's look-up.
        (An edit whose message already has a newer edit waiting is done instead:
        ``_BACK_TO_PENDING``.)"""
        row = self._one(
            f"UPDATE jobs SET {_BACK_TO_PENDING}, due_at = ?, last_error = ?,"
            " claimed_by = NULL, claimed_until = NULL, updated_at = ?,"
            " started_at = CASE WHEN ? THEN started_at ELSE NULL END,"
            " attempts = attempts - ? WHERE id = ? AND claimed_by = ? AND status = 'running'"
            " RETURNING id",
            (epoch(due_at), error, epoch(now), in_doubt, int(postpone), job_id, worker),
        )
        return row is not None

    def kill_job(self, job_id: int, worker: str, error: str, now: datetime) -> bool:
        row = self._one(
            "UPDATE jobs SET status = 'dead', last_error = ?, claimed_by = NULL,"
            " claimed_until = NULL, started_at = NULL, updated_at = ?"
            " WHERE id = ? AND claimed_by = ?"
            " AND status = 'running' RETURNING id",
            (error, epoch(now), job_id, worker),
        )
        return row is not None

    def release_jobs(self, worker: str, now: datetime, keep: Iterable[int] = ()) -> int:
        """Give back this worker's claims (shutdown, or claims a failed commit may have
        left behind), except the jobs in ``keep``, so any worker runs them at once.
        ``started_at`` stays: a job that may have happened is looked up first."""
        kept = sorted(set(keep))
        rows = self._rows(
            f"UPDATE jobs SET {_BACK_TO_PENDING}, claimed_by = NULL, claimed_until = NULL,"
            " attempts = attempts - 1, updated_at = ?"
            " WHERE claimed_by = ? AND status = 'running'"
            + (f" AND id NOT IN ({', '.join('?' * len(kept))})" if kept else "")
            + " RETURNING id",
            (epoch(now), worker, *kept),
        )
        return len(rows)

    def message_seq(self, target: str) -> int | None:
        row = self._one("SELECT seq FROM message_versions WHERE target = ?", (target,))
        return int(row[0]) if row else None

    def record_message_seq(self, target: str, seq: int, now: datetime | None = None) -> None:
        """The edit ``seq`` of ``target`` was applied (at ``now``: the next edit of the
        message waits ``paging.edit_interval_seconds`` from then)."""
        self._rows(
            "INSERT INTO message_versions (target, seq, applied_at) VALUES (?, ?, ?)"
            " ON CONFLICT (target) DO UPDATE SET seq = CASE WHEN excluded.seq >"
            " message_versions.seq THEN excluded.seq ELSE message_versions.seq END,"
            " applied_at = coalesce(excluded.applied_at, message_versions.applied_at)",
            (target, seq, epoch(now) if now is not None else None),
        )

    def job_by_key(self, key: str) -> tuple[StoredJob, dict[str, Any] | None] | None:
        row = self._one(
            "SELECT " + JOB_COLUMNS + ", result FROM jobs WHERE key = ?",
            (key,),
        )
        if row is None:
            return None
        return _stored_job(row[:9]), (json.loads(row[9]) if row[9] else None)

    def jobs(self, status: JobStatus | None = None) -> list[StoredJob]:
        sql = "SELECT " + JOB_COLUMNS + " FROM jobs"
        params: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            params = (status.value,)
        return [_stored_job(row) for row in self._rows(sql + " ORDER BY id", params)]

    def prune(self, before: datetime) -> int:
        """Forget what can no longer matter: finished jobs and remembered deliveries
        older than ``before``. Alerts, pages, incidents and the timeline are kept, and so
        are an incident's anchors (its announcement, tracking issue and post-mortem):
        later updates thread under them, and the console links them, however old."""
        anchors = job_keys.incident_anchors()
        jobs = self._rows(
            "DELETE FROM jobs WHERE status IN ('done', 'cancelled') AND updated_at < ?"
            + " AND key NOT LIKE ?" * len(anchors)
            + " RETURNING id",
            (epoch(before), *anchors),
        )
        deliveries = self._rows(
            "DELETE FROM deliveries WHERE received_at < ? RETURNING delivery_id",
            (iso(before),),
        )
        return len(jobs) + len(deliveries)

    def outbox_stats(self, now: datetime) -> OutboxStats:
        row = self._one(
            "SELECT count(*), min(due_at) FROM jobs WHERE status = 'pending' AND due_at <= ?",
            (epoch(now),),
        )
        dead = self._one("SELECT count(*) FROM jobs WHERE status = 'dead'")
        assert row is not None and dead is not None
        oldest = max(0.0, epoch(now) - row[1]) if row[1] is not None else 0.0
        return OutboxStats(int(row[0]), oldest, int(dead[0]))


def _page_facts(page: Page) -> tuple[str | None, float | None, str | None]:
    """The columns the console's reports read: alert name, when decided, why."""
    decided = epoch(page.decided_at) if page.decided_at is not None else None
    return _text(page.alert_name), decided, _text(page.reason)


def _text(value: str | None) -> str | None:
    # A label value may hold NUL, which PostgreSQL text refuses (the JSON state keeps
    # it escaped); a column for counting does not need it.
    return value.replace("\x00", "") if value is not None else None


def _incident_facts(incident: Incident) -> tuple[str, str, int]:
    """The columns the console's incidents list filters on."""
    return incident.severity.value, incident.commander, int(incident.confidential)


def _alert(r: Sequence[Any]) -> Alert:
    """An alert from the row of ``_ALERT_COLUMNS``."""
    return Alert(
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


def _line(r: Sequence[Any]) -> DigestLine:
    # model_construct: the row was written from a valid line (save_digest_line), and a
    # part's render reads a hundred of them.
    return DigestLine.model_construct(
        position=r[0],
        page_key=r[1],
        title=r[2],
        severity=Severity(r[3]),
        firing=r[4],
        resolved=r[5],
        status=PageStatus(r[6]),
        all_resolved=bool(r[7]),
        incident_number=r[8],
    )


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
        started_at=None if row[8] is None else from_epoch(row[8]),
    )
