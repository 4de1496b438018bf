"""Paging, incidents and their timers: units of work that connect the store to the
pure lifecycle (split by use case in the next step).

Each function here runs inside one store transaction: load state, ask the lifecycle,
write what it returns (state, jobs, cancellations, timeline). Nothing here decides;
nothing here does I/O beyond the transaction it is given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from router.app.ports import RecordedAlert, Tx
from router.core import duties, lifecycle
from router.core.alerts import Alert, AlertStatus
from router.core.commands import VERB, Command, incident_number
from router.core.digest import DigestLine, part_of
from router.core.duties import Context
from router.core.incident import Incident, TimelineEntry
from router.core.jobs import (
    AckTimeout,
    DigestTimeout,
    DocJob,
    GitHubUpdate,
    IncidentReminder,
    Job,
    JobKind,
    NoticeJob,
    PayloadError,
    SlackChannel,
    SlackRespond,
    StoredJob,
    timer,
)
from router.core.lifecycle import Storm
from router.core.page import AlertCounts, Decision, Page, PageAlerts, PageStatus
from router.core.policy import Outcome, Policy
from router.core.reports import ISSUE_ALERTS
from router.core.severity import Severity, order, suggest

DigestParts = set[tuple[str, int]]  # (digest key, part) whose lines changed


def persist(tx: Tx, outcome: Outcome, now: datetime, policy: Policy) -> DigestParts:
    """Write what a step returned. Returns the digest parts whose lines changed:
    ``refresh_digests`` renders them once, after every step of the unit."""
    changed: DigestParts = set()
    if outcome.retire is not None:
        tx.save_page(outcome.retire)
    page = outcome.page
    if page is not None:
        if outcome.new_page:
            tx.insert_page(page)
        else:
            tx.save_page(page)
    if outcome.digest is not None:
        tx.save_digest(outcome.digest)
    if page is not None and page.digest_key is not None and page.digest_position is not None:
        tx.save_digest_line(page.digest_key, DigestLine.of(page))
        changed.add((page.digest_key, part_of(page.digest_position)))
        if outcome.new_page:
            changed.add((page.digest_key, 0))  # the first part counts the digest's pages
    incident = outcome.incident
    if incident is not None:
        if outcome.new_incident:
            tx.insert_incident(incident)
        else:
            tx.save_incident(incident)
    # Cancel before enqueueing: a timer re-armed in this step must survive.
    if outcome.cancel:
        tx.cancel_jobs(outcome.cancel, now)
    if outcome.cancel_prefixes:
        tx.cancel_jobs(outcome.cancel_prefixes, now, prefix=True)
    if outcome.jobs:
        tx.enqueue(outcome.jobs, now, policy.paging.edit_interval_seconds)
    if outcome.timeline:
        number = incident.number if incident else page.incident_number if page else None
        tx.append_timeline(outcome.timeline, page.key if page else None, number)
    return changed


def refresh_digests(tx: Tx, changed: DigestParts, now: datetime, policy: Policy) -> None:
    """Render each changed digest part once, from its own lines (at most a part's
    worth), and queue its DM or its (coalesced) edit."""
    parts: dict[str, set[int]] = defaultdict(set)
    for key, part in changed:
        parts[key].add(part)
    for key, wanted in parts.items():
        digest = tx.digest(key)
        if digest is None:
            continue
        lines = {part: tx.digest_lines(key, part) for part in wanted}
        posted = {p: ls for p, ls in lines.items() if ls}
        digest, jobs = lifecycle.digest_parts(digest, posted, policy.console_url)
        tx.save_digest(digest)
        tx.enqueue(jobs, now, policy.paging.edit_interval_seconds)


def commit(tx: Tx, outcome: Outcome, now: datetime, policy: Policy) -> None:
    """``persist`` and ``refresh_digests`` for a unit of one step."""
    refresh_digests(tx, persist(tx, outcome, now, policy), now, policy)


# -- alerts ------------------------------------------------------------------------


@dataclass
class Recorded:
    """What recording some deliveries did."""

    alerts: list[RecordedAlert] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


def record_deliveries(
    tx: Tx, deliveries: Sequence[Sequence[Alert]], now: datetime, policy: Policy | None
) -> Recorded:
    """Record deliveries (in the order they arrived) and take the paging steps.

    One step serves a run of deliveries of one group (``_runs``), so a burst of
    webhooks into a group costs one step, not one each. Each step reads the group's
    page, its counts and the alerts it shows, never the whole group."""
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
    if policy is not None:
        refresh_digests(tx, changed, now, policy)
    return result


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


def _view(tx: Tx, page: Page, policy: Policy, limit: int | None = None) -> PageAlerts:
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
    alerts = _view(tx, page, policy, max(policy.paging.max_alerts_shown, ISSUE_ALERTS))
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


def fire_timer(tx: Tx, job: StoredJob, worker: str, now: datetime, policy: Policy) -> Outcome:
    """Apply a due timer and mark it done in the same transaction: it fires once."""
    if not tx.finish_job(job.id, worker, {}, now):
        return Outcome()  # our claim lapsed and another worker has it
    event = timer(job)
    if isinstance(event, IncidentReminder):
        return fire_incident_timer(tx, event, now, policy)
    if isinstance(event, DigestTimeout):
        digest = tx.digest(event.digest)
        if digest is None:
            return Outcome()
        waiting = tx.waiting_digest_lines(digest.key)
        outcome = lifecycle.digest_timeout(digest, event.level, waiting, now, policy)
        commit(tx, outcome, now, policy)
        return outcome
    if not isinstance(event, AckTimeout):
        return Outcome()
    page = tx.page(event.page)
    if page is None:
        return Outcome()
    outcome = lifecycle.ack_timeout(page, event.level, now, policy, _view(tx, page, policy))
    commit(tx, outcome, now, policy)
    return outcome


def respond_job(key: str, response_url: str, text: str, *, replace: bool = False) -> Job:
    """An ephemeral answer to the person who pressed a button (only they see it);
    ``replace``: in place of the (ephemeral) message holding the button."""
    return SlackRespond(
        response_url=response_url,
        body={"response_type": "ephemeral", "replace_original": replace, "text": text},
    ).job(key)


# -- the commander's duties ----------------------------------------------------

OPEN_STATUSES = ("active", "mitigated")


@dataclass(frozen=True)
class CommandResult:
    outcome: Outcome
    reply: str  # the ephemeral answer to the person who typed or pressed
    blocks: list[dict[str, Any]] | None = None


def _duty_context(
    tx: Tx, incident: Incident, now: datetime, policy: Policy, timeline: bool = False
) -> Context:
    """What a duty reads: the page's counts and shown alerts (a bounded view, however
    big the group), and the timeline only for the steps that write issue bodies."""
    page = tx.page(incident.page_key) if incident.page_key else None
    limit = max(policy.paging.max_alerts_shown, ISSUE_ALERTS)
    alerts = _view(tx, page, policy, limit) if page is not None else PageAlerts()
    record = tx.timeline(incident.number, incident.page_key) if timeline else ()
    return Context(now, policy, alerts, record)


def _target(
    tx: Tx, number: int | None, postmortem: bool = False, channel: str | None = None
) -> Incident | str:
    """The incident a command names, or why it cannot be found. Typed in an
    incident's own channel, a command without INC-n is about that incident."""
    if number is not None:
        return tx.incident(number) or f"There is no INC-{number}."
    if channel:
        own = tx.incident_in_channel(channel)
        if own is not None:
            return own
    if postmortem:
        # Only a resolved incident owes one, so "the one open incident" is never it.
        owing = [i for i in tx.incidents(("resolved",)) if i.postmortem_owed]
        if len(owing) == 1:
            return owing[0]
        if not owing:
            return "No incident owes a post-mortem. Name one as INC-<n>."
        refs = ", ".join(i.ref for i in owing)
        return (
            f"Several incidents owe a post-mortem ({refs}): name one, e.g. "
            f"`/incident postmortem done {owing[0].ref}`."
        )
    open_incidents = tx.incidents(OPEN_STATUSES)
    if len(open_incidents) == 1:
        return open_incidents[0]
    if not open_incidents:
        return "No incident is open. Name one as INC-<n>."
    refs = ", ".join(i.ref for i in open_incidents)
    return f"Several incidents are open ({refs}): name one, e.g. `/incident status INC-1`."


def incident_command(
    tx: Tx,
    command: Command,
    actor: str,
    now: datetime,
    policy: Policy,
    channel: str | None = None,
) -> CommandResult:
    """Run a verb of ``router.core.commands.VERBS`` on the incident it names
    (``channel``: where it was typed; an incident's own channel names it)."""
    verb = VERB.get(command.name)
    if verb is None:
        refusal = f"`{command.name}` is incomplete. Try `/incident help`."
        return CommandResult(Outcome(refusal=refusal), refusal)
    if verb.answer is not None:  # help, declare: no incident
        reply, blocks = verb.answer(command)
        return CommandResult(Outcome(), reply, blocks)
    found = _target(tx, command.number, postmortem=verb.owed_postmortem, channel=channel)
    if isinstance(found, str):
        return CommandResult(Outcome(refusal=found), found)
    incident = found
    ctx = _duty_context(tx, incident, now, policy, timeline=verb.reads_timeline)
    if verb.responders_only and not duties.may_act(incident, actor, ctx):
        outcome = duties.refuse(
            f"Only responders of {incident.ref} (its commander, comms lead, the on-call "
            "engineers and the configured responders) can do that.",
            unauthorized=True,
        )
    elif verb.step is None:
        outcome = duties.refuse(f"`{verb.name}` is incomplete. Try `/incident help`.")
    else:
        outcome = verb.step(incident, command, actor, ctx)
    if outcome.refusal is None:
        commit(tx, outcome, now, policy)
    reply = outcome.refusal or outcome.reply or f"Done: {command.name} on {incident.ref}."
    return CommandResult(outcome, reply, outcome.reply_blocks if outcome.refusal is None else None)


def declare_reported(
    tx: Tx,
    title: str,
    actor: str,
    now: datetime,
    policy: Policy,
    *,
    description: str | None = None,
    severity: Severity | None = None,
    confidential: bool = False,
) -> CommandResult:
    """``/incident declare`` -> "I am commander": a declared incident without a page
    (from the declare form, with its description, severity and confidential flag)."""
    ctx = Context(now, policy)
    if not duties.is_responder(actor, ctx):
        refusal = ("Only responders can be Incident Commander. Choose \"Page eng-primary\" "
                   "and the on-call engineer will investigate.")  # fmt: skip
        return CommandResult(duties.refuse(refusal, unauthorized=True), refusal)
    suggestion = suggest([], policy.severity)
    outcome = duties.declare(
        tx.next_incident_number(), title, actor, ctx, suggestion,
        description=description, severity=severity, confidential=confidential,
    )  # fmt: skip
    commit(tx, outcome, now, policy)
    return CommandResult(outcome, outcome.reply or "Declared.")


def fire_incident_timer(tx: Tx, event: IncidentReminder, now: datetime, policy: Policy) -> Outcome:
    incident = tx.incident(event.incident)
    if incident is None:
        return Outcome()
    outcome = duties.reminder_due(incident, event.what, _duty_context(tx, incident, now, policy))
    commit(tx, outcome, now, policy)
    return outcome


# Kinds whose every result feeds the lifecycle (the doc's link, the public incident's).
RESULT_KINDS = frozenset({JobKind.GOOGLE_DOC, JobKind.STATUSPAGE_NOTICE})


def _channel_made(tx: Tx, job: StoredJob, result: dict[str, Any], now: datetime) -> Outcome:
    """The incident's channel exists: remember its id (``/incident`` typed there finds
    the incident) and name (the timeline and post-mortem link it)."""
    try:
        made = SlackChannel.of(job)
    except PayloadError:
        return Outcome()
    incident = tx.incident(made.incident)
    channel = result.get("channel")
    if incident is None or not isinstance(channel, str) or incident.channel_id == channel:
        return Outcome()
    incident = incident.model_copy(
        update={"channel_id": channel, "channel_name": result.get("name"),
                "version": incident.version + 1}
    )  # fmt: skip
    tx.save_incident(incident)
    entry = TimelineEntry(
        at=now, actor="router", kind="channel_created",
        data={"channel": channel, "name": str(result.get("name") or "")},
    )  # fmt: skip
    tx.append_timeline([entry], incident.page_key, incident.number)
    return Outcome()


def job_result(
    tx: Tx, job: StoredJob, result: dict[str, Any], now: datetime, policy: Policy
) -> Outcome:
    """An adapter reported what it found (``payload.on_result``, or a kind of
    ``RESULT_KINDS``): apply it."""
    if job.kind is JobKind.SLACK_CHANNEL:
        return _channel_made(tx, job, result, now)
    if job.kind in RESULT_KINDS:
        return _incident_result(tx, job, result, now, policy)
    if job.kind is not JobKind.GITHUB_UPDATE:
        return Outcome()
    try:
        update = GitHubUpdate.of(job)
    except PayloadError:
        return Outcome()  # written by a version that knew other results
    if update.on_result != "postmortem_state" or update.incident is None:
        return Outcome()
    incident = tx.incident(update.incident)
    if incident is None:
        return Outcome()
    ctx = _duty_context(tx, incident, now, policy)
    outcome = duties.postmortem_issue_state(incident, str(result.get("state")), ctx)
    commit(tx, outcome, now, policy)
    return outcome


def _incident_result(
    tx: Tx, job: StoredJob, result: dict[str, Any], now: datetime, policy: Policy
) -> Outcome:
    try:
        payload: DocJob | NoticeJob = (
            DocJob.of(job) if job.kind is JobKind.GOOGLE_DOC else NoticeJob.of(job)
        )
    except (PayloadError, KeyError):
        return Outcome()  # it ran, so it read; a version that wrote it otherwise
    number = incident_number(payload.incident)
    incident = tx.incident(number) if number is not None else None
    if incident is None:
        return Outcome()
    ctx = _duty_context(tx, incident, now, policy)
    if job.kind is JobKind.GOOGLE_DOC:
        outcome = duties.doc_made(incident, result, ctx)
    else:
        outcome = duties.public_published(incident, result, ctx)
    commit(tx, outcome, now, policy)
    return outcome
