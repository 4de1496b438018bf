"""Incidents, one transaction per use case: a declared incident without a page
(``/incident declare``, the report form), the ``/incident`` commands and the
incident's buttons, its reminders, and what its jobs reported back (channel, doc,
public notice, post-mortem issue).

Each function loads the incident, calls a duty of ``router.core.duties`` and writes
what it returns (``router.app.outcomes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.app.outcomes import commit
from router.app.paging import view
from router.app.ports import Tx
from router.core import duties, messages
from router.core.commands import VERB, Command, incident_number
from router.core.duties import Context
from router.core.incident import Incident, TimelineEntry
from router.core.jobs import (
    DocJob,
    GitHubUpdate,
    IncidentReminder,
    JobKind,
    NoticeJob,
    PayloadError,
    SlackChannel,
    StoredJob,
)
from router.core.page import PageAlerts
from router.core.policy import Outcome, Policy
from router.core.reports import ISSUE_ALERTS
from router.core.severity import Severity, suggest

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
    alerts = view(tx, page, policy, limit) if page is not None else PageAlerts()
    record = tx.timeline(incident.number, incident.page_key) if timeline else ()
    return Context(now, policy, alerts, record)


def _target(
    tx: Tx, number: int | None, postmortem: bool = False, channel: str | None = None
) -> Incident | str:
    """The incident a command names, or why it cannot be found. Typed in an
    incident's own channel, a command without INC-n is about that incident."""
    if number is not None:
        return tx.incident(number) or messages.no_such_incident(number)
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
            return messages.NO_POSTMORTEM_OWED
        return messages.several_owe_postmortem(owing)
    open_incidents = tx.incidents(OPEN_STATUSES)
    if len(open_incidents) == 1:
        return open_incidents[0]
    if not open_incidents:
        return messages.NO_INCIDENT_OPEN
    return messages.several_open(open_incidents)


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
        refusal = messages.incomplete(command.name)
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
        outcome = duties.refuse(messages.responders_only(incident), unauthorized=True)
    elif verb.step is None:
        outcome = duties.refuse(messages.incomplete(verb.name))
    else:
        outcome = verb.step(incident, command, actor, ctx)
    if outcome.refusal is None:
        commit(tx, outcome, now, policy)
    reply = outcome.refusal or outcome.reply or messages.done(command.name, incident)
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
        refusal = messages.COMMANDER_RESPONDERS_ONLY
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
