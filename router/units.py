"""Units of work that connect the store to the pure lifecycle.

Each function here runs inside one store transaction: load state, ask the lifecycle,
write what it returns (state, jobs, cancellations, timeline). Nothing here decides;
nothing here does I/O beyond the transaction it is given.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from router import lifecycle
from router.alerts import Alert
from router.jobs import Job, JobKind, StoredJob
from router.lifecycle import Outcome, Policy, Storm
from router.page import Decision, Page
from router.store.sql import RecordedAlert, SqlTx


def persist(tx: SqlTx, outcome: Outcome, now: datetime) -> None:
    if outcome.retire is not None:
        tx.save_page(outcome.retire)
    page = outcome.page
    if page is not None:
        if outcome.new_page:
            tx.insert_page(page)
        else:
            tx.save_page(page)
    if outcome.incident is not None:
        tx.insert_incident(outcome.incident)
    if outcome.cancel:
        tx.cancel_jobs(outcome.cancel, now)
    if outcome.jobs:
        tx.enqueue(outcome.jobs, now)
    if outcome.timeline:
        tx.append_timeline(
            outcome.timeline,
            page.key if page else None,
            page.incident_number if page else None,
        )


def _page_alerts(tx: SqlTx, page: Page) -> list[Alert]:
    return tx.alerts_in_group(page.group_key, since=page.opened_at, pageable_only=True)


def after_alerts_recorded(
    tx: SqlTx, recorded: list[RecordedAlert], now: datetime, policy: Policy
) -> list[Outcome]:
    """Intake hook: one lifecycle step per alert group in the delivery."""
    by_group: dict[str, list[RecordedAlert]] = defaultdict(list)
    for record in recorded:
        if record.alert.pageable:
            by_group[record.alert.group_key].append(record)
    outcomes = []
    for group_key, records in by_group.items():
        page = tx.active_page(group_key)
        current = tx.alerts_in_group(group_key, since=now, pageable_only=True)
        outcome = lifecycle.alerts_arrived(
            page,
            [r.change for r in records],
            _page_alerts(tx, page) if page is not None else current,
            current,
            now,
            policy,
            _storm(tx, now, policy),
        )
        persist(tx, outcome, now)
        outcomes.append(outcome)
    return outcomes


def _storm(tx: SqlTx, now: datetime, policy: Policy) -> Storm:
    _, user = lifecycle.first_on_call(policy, now)
    if user is None:
        return Storm()
    window = timedelta(seconds=policy.paging.storm_window_seconds)
    recent = tx.recent_pages(user, now - window)
    if recent < policy.paging.storm_limit:
        return Storm(recent_pages=recent)
    digest = f"digest:{user}:{int(now.timestamp()) // policy.paging.storm_window_seconds}"
    return Storm(recent_pages=recent, folded=tuple(tx.pages_in_digest(digest)))


@dataclass(frozen=True)
class DecisionResult:
    outcome: Outcome
    duplicate: bool = False
    unknown_page: bool = False
    decision_seconds: float | None = None  # page opened -> declared or dismissed


def decide(
    tx: SqlTx,
    page_key: str,
    decision: Decision,
    actor: str,
    now: datetime,
    policy: Policy,
    reason: str | None = None,
    delivery_id: str | None = None,
) -> DecisionResult:
    if delivery_id is not None and not tx.remember_delivery("slack", delivery_id, now):
        return DecisionResult(Outcome(), duplicate=True)
    page = tx.page(page_key)
    if page is None:
        return DecisionResult(Outcome(refusal="This page is unknown."), unknown_page=True)
    number = tx.next_incident_number() if decision is Decision.DECLARE else None
    outcome = lifecycle.decide(
        page, decision, actor, now, policy, _page_alerts(tx, page), number, reason
    )
    if outcome.refusal is not None:
        return DecisionResult(outcome)
    persist(tx, outcome, now)
    waited = None
    if decision is not Decision.ESCALATE and page.decided_at is None:
        waited = (now - page.opened_at).total_seconds()
    return DecisionResult(outcome, decision_seconds=waited)


def fire_timer(tx: SqlTx, job: StoredJob, worker: str, now: datetime, policy: Policy) -> Outcome:
    """Apply a due timer and mark it done in the same transaction: it fires once."""
    if not tx.finish_job(job.id, worker, {}, now):
        return Outcome()  # our claim lapsed and another worker has it
    if job.payload.get("event") != "ack_timeout":
        return Outcome()
    page = tx.page(str(job.payload["page"]))
    if page is None:
        return Outcome()
    outcome = lifecycle.ack_timeout(
        page, int(job.payload["level"]), now, policy, _page_alerts(tx, page)
    )
    persist(tx, outcome, now)
    return outcome


def respond_job(key: str, response_url: str, text: str) -> Job:
    """An ephemeral answer to the person who pressed a button (only they see it)."""
    return Job(
        kind=JobKind.SLACK_RESPOND,
        key=key,
        payload={
            "response_url": response_url,
            "body": {"response_type": "ephemeral", "replace_original": False, "text": text},
        },
    )
