"""Units of work that connect the store to the pure lifecycle.

Each function here runs inside one store transaction: load state, ask the lifecycle,
write what it returns (state, jobs, cancellations, timeline). Nothing here decides;
nothing here does I/O beyond the transaction it is given.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from router import duties, lifecycle, messages
from router.alerts import Alert, AlertStatus, Source, short_hash
from router.commands import HELP, Command
from router.duties import Context
from router.incident import Incident
from router.jobs import Job, JobKind, StoredJob
from router.lifecycle import Storm
from router.page import Decision, Page, PageStatus
from router.policy import Outcome, Policy
from router.severity import suggest
from router.store.sql import RecordedAlert, SqlTx


def persist(tx: SqlTx, outcome: Outcome, now: datetime) -> None:
    if outcome.retire is not None:
        tx.save_page(outcome.retire)
    for changed in outcome.pages:
        tx.save_page(changed)
    page = outcome.page
    if page is not None:
        if outcome.new_page:
            tx.insert_page(page)
        else:
            tx.save_page(page)
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
        tx.enqueue(outcome.jobs, now)
    if outcome.timeline:
        number = incident.number if incident else page.incident_number if page else None
        tx.append_timeline(outcome.timeline, page.key if page else None, number)


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
        # Only a new page counts against storm control (and needs its lock).
        may_open = page is None or page.status is not PageStatus.OPEN
        outcome = lifecycle.alerts_arrived(
            page,
            [r.change for r in records],
            _page_alerts(tx, page) if page is not None else current,
            current,
            now,
            policy,
            _storm(tx, now, policy) if may_open else Storm(),
            _incident_open(tx, page),
            # A group's alerts in one delivery came in one message, which told them
            # all the same thing about the alerts it left out.
            records[0].alert.truncation,
        )
        persist(tx, outcome, now)
        outcomes.append(outcome)
    return outcomes


def _incident_open(tx: SqlTx, page: Page | None) -> bool:
    if page is None or page.incident_number is None:
        return True
    incident = tx.incident(page.incident_number)
    return incident is not None and incident.open


def _storm(tx: SqlTx, now: datetime, policy: Policy) -> Storm:
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
    expected_level: int | None = None,
) -> DecisionResult:
    if delivery_id is not None and not tx.remember_delivery("slack", delivery_id, now):
        return DecisionResult(Outcome(), duplicate=True)
    page = tx.page(page_key)
    if page is None:
        return DecisionResult(Outcome(refusal="This page is unknown."), unknown_page=True)
    number = tx.next_incident_number() if decision is Decision.DECLARE else None
    outcome = lifecycle.decide(
        page, decision, actor, now, policy, _page_alerts(tx, page), number, reason, expected_level
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
    event = str(job.payload.get("event", ""))
    if event.startswith("incident_"):
        return fire_incident_timer(tx, job, now, policy)
    if event == "digest_timeout":
        digest = str(job.payload["digest"])
        outcome = lifecycle.digest_timeout(
            digest, int(job.payload["level"]), tx.pages_in_digest(digest), now, policy
        )
        persist(tx, outcome, now)
        return outcome
    if event != "ack_timeout":
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


# -- the commander's duties ----------------------------------------------------

OPEN_STATUSES = ("active", "mitigated")


@dataclass(frozen=True)
class CommandResult:
    outcome: Outcome
    reply: str  # the ephemeral answer to the person who typed or pressed
    blocks: list[dict[str, Any]] | None = None


def _duty_context(tx: SqlTx, incident: Incident, now: datetime, policy: Policy) -> Context:
    alerts = (
        tx.alerts_in_group(incident.group_key, since=incident.declared_at - timedelta(days=1),
                           pageable_only=True)
        if incident.group_key
        else []
    )  # fmt: skip
    return Context(now, policy, alerts, tx.timeline(incident.number, incident.page_key))


def _target(tx: SqlTx, number: int | None, name: str = "") -> Incident | str:
    """The incident a command names, or why it cannot be found."""
    if number is not None:
        return tx.incident(number) or f"There is no INC-{number}."
    if name == "postmortem":
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
    tx: SqlTx, command: Command, actor: str, now: datetime, policy: Policy
) -> CommandResult:
    if command.name == "help":
        return CommandResult(Outcome(), HELP)
    if command.name == "declare":
        return CommandResult(Outcome(), *report_choice(command.text))
    found = _target(tx, command.number, command.name)
    if isinstance(found, str):
        return CommandResult(Outcome(refusal=found), found)
    incident = found
    ctx = _duty_context(tx, incident, now, policy)
    if command.name == "accept":
        outcome = duties.accept_handoff(incident, actor, ctx)
    elif not duties.may_act(incident, actor, ctx):
        outcome = duties.refuse(
            f"Only responders of {incident.ref} (its commander, comms lead, the on-call "
            "engineers and the configured responders) can do that.",
            unauthorized=True,
        )
    elif command.name == "status":
        return CommandResult(Outcome(), status_text(incident))
    else:
        outcome = _dispatch(incident, command, actor, ctx)
    if outcome.refusal is None:
        persist(tx, outcome, now)
    reply = outcome.refusal or outcome.reply or f"Done: {command.name} on {incident.ref}."
    return CommandResult(outcome, reply)


def _dispatch(incident: Incident, command: Command, actor: str, ctx: Context) -> Outcome:
    name = command.name
    if name == "severity" and command.severity is not None:
        return duties.change_severity(incident, actor, command.severity, command.text, ctx)
    if name == "comms" and command.user:
        return duties.appoint_comms_lead(incident, actor, command.user, ctx)
    if name == "handoff" and command.user:
        return duties.offer_handoff(incident, actor, command.user, ctx)
    if name == "flag" and command.flag is not None:
        return duties.flag(incident, actor, command.flag, ctx)
    steps = {
        "escalate": lambda: duties.escalate(incident, actor, command.text, ctx),
        "vendor": lambda: duties.contact_vendor(incident, actor, command.text, ctx),
        "update": lambda: duties.status_update(incident, actor, command.text, ctx),
        "issue": lambda: duties.open_tracking_issue(incident, actor, ctx),
        "mitigated": lambda: duties.mitigate(incident, actor, ctx),
        "resolve": lambda: duties.resolve(incident, actor, command.text, ctx),
        "postmortem": lambda: duties.postmortem_done(incident, actor, ctx),
    }
    step = steps.get(name)
    return step() if step else duties.refuse(f"`{name}` is incomplete. Try `/incident help`.")


def report_choice(title: str) -> tuple[str, list[dict[str, Any]]]:
    """A reporter decides: be commander now, or have eng-primary investigate first."""
    text = f"Suspected incident: {title}. Who investigates?"
    return text, [
        {"type": "section", "text": {"type": "mrkdwn", "text": messages.escape(text)}},
        {
            "type": "actions",
            "block_id": "report",
            "elements": [
                {"type": "button", "action_id": messages.REPORT_COMMANDER, "style": "danger",
                 "text": {"type": "plain_text", "text": "Declare: I am Incident Commander"},
                 "value": title},
                {"type": "button", "action_id": messages.REPORT_PAGE,
                 "text": {"type": "plain_text", "text": "Page eng-primary to investigate"},
                 "value": title},
            ],
        },
    ]  # fmt: skip


def declare_reported(
    tx: SqlTx, title: str, actor: str, now: datetime, policy: Policy
) -> CommandResult:
    """``/incident declare`` -> "I am commander": a declared incident without a page."""
    ctx = Context(now, policy)
    if not duties.is_responder(actor, ctx):
        refusal = ("Only responders can be Incident Commander. Choose \"Page eng-primary\" "
                   "and the on-call engineer will investigate.")  # fmt: skip
        return CommandResult(duties.refuse(refusal, unauthorized=True), refusal)
    suggestion = suggest([], policy.severity)
    outcome = duties.declare(tx.next_incident_number(), title, actor, ctx, suggestion)
    persist(tx, outcome, now)
    return CommandResult(outcome, outcome.reply or "Declared.")


def page_reported(
    tx: SqlTx, title: str, actor: str, now: datetime, policy: Policy
) -> CommandResult:
    """``/incident declare`` -> "page eng-primary": a report becomes an alert and a page,
    through the same lifecycle as monitoring alerts."""
    key = short_hash(f"{title}|{actor}|{now.isoformat()}")
    alert = Alert(
        source=Source.SLACK,
        group_key=f"slack:{key}",
        fingerprint=key,
        status=AlertStatus.FIRING,
        starts_at=now,
        labels={"alertname": title, "reporter": actor},
        annotations={"summary": f"Reported in Slack: {title}"},
    )
    recorded = tx.record_alerts([alert], now)
    outcomes = after_alerts_recorded(tx, recorded, now, policy)
    return CommandResult(
        outcomes[0] if outcomes else Outcome(),
        "Paged eng-primary; they will investigate and decide.",
    )


def status_text(incident: Incident) -> str:
    lines = [
        f"*{incident.ref}: {incident.title}*",
        f"Status: {incident.status.value} · Severity: {incident.severity.value} "
        f"({incident.severity_reason})",
        f"Commander: <@{incident.commander}> · Comms lead: "
        + (f"<@{incident.comms_lead}>" if incident.comms_lead else "none yet"),
        f"Declared {incident.declared_at:%Y-%m-%d %H:%M} UTC by <@{incident.declared_by}>",
    ]
    if incident.handoff:
        lines.append(f"Handoff offered to <@{incident.handoff.to}>, not yet accepted")
    if incident.flags:
        lines.append("Flags: " + ", ".join(flag.value for flag in incident.flags))
    if incident.vendors:
        lines.append("Vendors contacted: " + ", ".join(incident.vendors))
    if incident.last_update_at:
        lines.append(f"Last update {incident.last_update_at:%H:%M} UTC")
    if incident.postmortem_owed:
        lines.append("Post-mortem owed")
    return "\n".join(lines)


def fire_incident_timer(tx: SqlTx, job: StoredJob, now: datetime, policy: Policy) -> Outcome:
    incident = tx.incident(int(job.payload["incident"]))
    if incident is None:
        return Outcome()
    what = str(job.payload["event"]).removeprefix("incident_")
    outcome = duties.reminder_due(incident, what, _duty_context(tx, incident, now, policy))
    persist(tx, outcome, now)
    return outcome


def job_result(
    tx: SqlTx, job: StoredJob, result: dict[str, Any], now: datetime, policy: Policy
) -> Outcome:
    """An adapter reported what it found (``payload.on_result``): apply it."""
    if job.payload.get("on_result") != "postmortem_state":
        return Outcome()
    incident = tx.incident(int(job.payload["incident"]))
    if incident is None:
        return Outcome()
    ctx = _duty_context(tx, incident, now, policy)
    outcome = duties.postmortem_issue_state(incident, str(result.get("state")), ctx)
    persist(tx, outcome, now)
    return outcome
