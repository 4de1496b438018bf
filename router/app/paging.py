"""Paging, one transaction per use case: record deliveries (and take the paging
steps they call for, under storm control), and a person's decision on a page.

Each function runs inside one store transaction: load state, ask the lifecycle,
write what it returns (``router.app.outcomes``). Nothing here decides; nothing here
does I/O beyond the transaction it is given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from router.app.outcomes import DigestParts, commit, persist, refresh_digests
from router.app.ports import RecordedAlert, Tx
from router.core import lifecycle
from router.core.alerts import Alert, AlertStatus
from router.core.lifecycle import Storm
from router.core.page import AlertCounts, Decision, Page, PageAlerts, PageStatus
from router.core.policy import Outcome, Policy
from router.core.reports import ISSUE_ALERTS
from router.core.severity import order


@dataclass
class Recorded:
    """What recording some deliveries did."""

    alerts: list[RecordedAlert] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def record_deliveries(
    tx: Tx,
    deliveries: Sequence[Sequence[Alert]],
    now: datetime,
    policy: Policy | None,
    *,
    defer_render: bool = False,
) -> Recorded:
    """Record deliveries (in the order they arrived) and take the paging steps.

    One step serves a run of deliveries of one group (``_runs``), so a burst of
    webhooks into a group costs one step, not one each. Each step reads the group's
    page, its counts and the alerts it shows, never the whole group.

    ``defer_render``: the digest parts whose lines changed are marked stale instead of
    rendered (``render_stale_digests`` renders them later, once for many batches)."""
    result = Recorded()
    changed: DigestParts = set()
    ranked = (lambda alert: order(alert, policy.severity)) if policy is not None else None
    for group_key, alerts in _runs(deliveries):
        page = tx.active_page(group_key) if policy is not None else None
        if page is not None and page.counts is None and policy is not None:
            page = _counted(tx, page, policy)
        # A group without a page would open it under this key: its alerts go there now,
        # not in a second statement (if no page opens, no page has that key).
        key = page.key if page is not None else lifecycle.page_key(group_key, now)
        records = tx.record_alerts(alerts, now, page_key=key, order=ranked)
        result.alerts += records
        pageable = [r for r in records if r.alert.pageable]
        if policy is None or not pageable:
            continue
        outcome = _alerts_arrived(tx, page, pageable, now, policy)
        if outcome.new_page and outcome.page is not None and outcome.page.key != key:
            tx.move_alerts((r.id for r in pageable), outcome.page.key)
        changed |= persist(tx, outcome, now, policy)
        result.outcomes.append(outcome)
    if policy is not None and defer_render:
        tx.mark_digests_stale(changed)
    elif policy is not None:
        refresh_digests(tx, changed, now, policy)
    return result


def render_stale_digests(tx: Tx, now: datetime, policy: Policy) -> int:
    """Render every digest part marked stale (one render each), then unmark them."""
    stale = tx.stale_digests()
    if stale:
        refresh_digests(tx, stale, now, policy)
        tx.clear_stale_digests(stale)
    return len(stale)


def _runs(deliveries: Sequence[Sequence[Alert]]) -> list[tuple[str, list[Alert]]]:
    """The deliveries' alerts by group, in the order the groups first came; a group's
    consecutive deliveries join one run unless an alert changes status between them
    (then each status is a step of its own, as if they had come one by one)."""
    runs: dict[str, list[list[Alert]]] = {}
    statuses: dict[str, dict[tuple[str, datetime], AlertStatus]] = {}
    for delivery in deliveries:
        by_group: dict[str, list[Alert]] = defaultdict(list)
        for alert in delivery:
            by_group[alert.group_key].append(alert)
        for group_key, alerts in by_group.items():
            seen = statuses.setdefault(group_key, {})
            flips = any(seen.get((a.fingerprint, a.starts_at), a.status) != a.status
                        for a in alerts)  # fmt: skip
            group_runs = runs.setdefault(group_key, [])
            if flips or not group_runs:
                group_runs.append([])
                seen.clear()
            group_runs[-1] += alerts
            seen.update(((a.fingerprint, a.starts_at), a.status) for a in alerts)
    return [(key, run) for key, group_runs in runs.items() for run in group_runs]


def _alerts_arrived(
    tx: Tx, page: Page | None, records: list[RecordedAlert], now: datetime, policy: Policy
) -> Outcome:
    latest: dict[int, Alert] = {}
    for record in records:
        latest[record.id] = record.alert  # each alert as it stands after the delivery
    alerts = None
    if page is not None and page.counts is not None:
        counts = _counts_after(page.counts, records, page.key)
        alerts = tx.page_view(page.key, counts, policy.paging.max_alerts_shown)
    # Only a new page counts against storm control (and needs its lock).
    may_open = page is None or page.status is not PageStatus.OPEN
    return lifecycle.alerts_arrived(
        page,
        [r.change for r in records],
        list(latest.values()),
        alerts,
        now,
        policy,
        _storm(tx, now, policy) if may_open else Storm(),
        _incident_open(tx, page),
        # Each message tells what it left out of the group: the latest is the current.
        records[-1].alert.truncation,
    )


def _counts_after(counts: AlertCounts, records: list[RecordedAlert], page_key: str) -> AlertCounts:
    """The page's counts after these records: each alert leaves the status it had on
    this page (if it was on it) and counts under its new one."""
    firing, resolved = counts.firing, counts.resolved
    before: dict[int, tuple[str, str | None] | None] = {}
    now: dict[int, AlertStatus] = {}
    for record in records:
        before.setdefault(record.id, record.before)  # before the first of its records
        now[record.id] = record.alert.status
    for alert_id, was in before.items():
        if was is not None and was[1] == page_key:
            firing -= was[0] == AlertStatus.FIRING.value
            resolved -= was[0] == AlertStatus.RESOLVED.value
        firing += now[alert_id] is AlertStatus.FIRING
        resolved += now[alert_id] is AlertStatus.RESOLVED
    return AlertCounts(firing=firing, resolved=resolved)


def _counted(tx: Tx, page: Page, policy: Policy) -> Page:
    """A page stored before pages kept their counts: count it once, and rank its
    alerts, then every delivery keeps both."""
    tx.rank_page_alerts(page.key, lambda alert: order(alert, policy.severity))
    page = page.model_copy(update={"counts": tx.count_page_alerts(page.key),
                                   "version": page.version + 1})  # fmt: skip
    tx.save_page(page)
    return page


def view(tx: Tx, page: Page, policy: Policy, limit: int | None = None) -> PageAlerts:
    """The page's counts and the alerts it shows (at most ``limit``), however big
    its group."""
    if page.counts is None:
        page = _counted(tx, page, policy)
    assert page.counts is not None
    return tx.page_view(page.key, page.counts, limit or policy.paging.max_alerts_shown)


def _incident_open(tx: Tx, page: Page | None) -> bool:
    if page is None or page.incident_number is None:
        return True
    incident = tx.incident(page.incident_number)
    return incident is not None and incident.open


def _storm(tx: Tx, now: datetime, policy: Policy) -> Storm:
    _, user = lifecycle.first_on_call(policy, now)
    if user is None:
        return Storm()
    # Replicas opening pages for the same person at once must count one after the
    # other, or both see room under the limit (and a digest missing pages).
    tx.lock(f"storm:{user}")
    window = timedelta(seconds=policy.paging.storm_window_seconds)
    recent = tx.recent_pages(user, now - window)
    if recent < policy.paging.storm_limit:
        return Storm(recent_pages=recent)
    return Storm(recent_pages=recent, digest=tx.digest(lifecycle.digest_key(user, now, policy)))


@dataclass(frozen=True)
class DecisionResult:
    outcome: Outcome
    duplicate: bool = False
    unknown_page: bool = False
    decision_seconds: float | None = None  # page opened -> declared or dismissed


def decide(
    tx: Tx,
    page_key: str,
    decision: Decision,
    actor: str,
    now: datetime,
    policy: Policy,
    reason: str | None = None,
    delivery_id: str | None = None,
    expected_level: int | None = None,
) -> DecisionResult:
    if delivery_id is not None and not tx.remember_delivery("slack", delivery_id, now):
        return DecisionResult(Outcome(), duplicate=True)
    page = tx.page(page_key)
    if page is None:
        return DecisionResult(Outcome(refusal="This page is unknown."), unknown_page=True)
    if page.counts is None:
        page = _counted(tx, page, policy)
    number = tx.next_incident_number() if decision is Decision.DECLARE else None
    # A declaration may open the tracking issue, which lists more alerts than a page.
    alerts = view(tx, page, policy, max(policy.paging.max_alerts_shown, ISSUE_ALERTS))
    digest = tx.digest(page.digest_key) if page.digest_key is not None else None
    outcome = lifecycle.decide(
        page, decision, actor, now, policy, alerts, number, reason, expected_level,
        deciders=digest.paged_users if digest is not None else (),
    )  # fmt: skip
    if outcome.refusal is not None:
        return DecisionResult(outcome)
    commit(tx, outcome, now, policy)
    waited = None
    if decision is not Decision.ESCALATE and page.decided_at is None:
        waited = (now - page.opened_at).total_seconds()
    return DecisionResult(outcome, decision_seconds=waited)
