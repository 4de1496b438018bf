"""The Incident Commander's duties, as pure steps: (incident, command) -> (incident, jobs).

The policy gives the IC a list of duties: classify severity (it can change later),
appoint roles (a communications lead), hand off between people, escalate to
leadership when the response is insufficient, contact vendors, keep people informed,
resolve and communicate the resolution, and own the post-mortem where one is owed.
Each duty is one step here; ``router.app.incidents`` loads the incident, calls the step, and
commits what it returns. No I/O, no clock: ``now`` is passed in.

Every step records a timeline entry (actor and time), posts in the incident's thread,
and mirrors the entry to the tracking issue once there is one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from router.core import channel_jobs, collaborative_doc, keys, public_notice
from router.core.events import (
    ChannelArchived,
    CommsLead,
    Declared,
    EscalatedToLeadership,
    Flagged,
    HandoffAccepted,
    HandoffOffered,
    Invited,
    Mitigated,
    PostmortemDone,
    PostmortemOwed,
    Reminder,
    Resolved,
    SeverityChanged,
    StatusUpdate,
    TrackingIssue,
    Unauthorized,
    VendorContacted,
)
from router.core.incident import (
    Flag,
    Handoff,
    Incident,
    IncidentStatus,
    PublicDraft,
    TimelineEntry,
)
from router.core.jobs import (
    GitHubComment,
    GitHubIssue,
    GitHubUpdate,
    IncidentReminder,
    Job,
    PagerDutyEvent,
    SlackDm,
    SlackPost,
    SlackUpdate,
)
from router.core.messages import announcement, escape, handoff_offer_message
from router.core.oncall import LEADERSHIP
from router.core.page import ROUTER_DEDUP_PREFIX, PageAlerts
from router.core.policy import Outcome, Policy
from router.core.reports import describe, postmortem, timeline_markdown, tracking_issue
from router.core.severity import Severity, Suggestion

OPEN_ONLY = "{ref} is {status}; this needs an open incident."
# A second escalation this soon is a double click, not a new need.
ESCALATION_REPEAT = timedelta(minutes=10)


@dataclass(frozen=True)
class Context:
    """What a step may read besides the incident."""

    now: datetime
    policy: Policy
    alerts: PageAlerts = field(default_factory=PageAlerts)  # its page's, bounded
    timeline: Sequence[TimelineEntry] = ()  # the record so far (for issue bodies)


def is_responder(actor: str, ctx: Context) -> bool:
    """The configured responders, and whoever is on call right now in any rotation."""
    if actor in ctx.policy.responders:
        return True
    schedule = ctx.policy.schedule
    return any(schedule.who_is_on(role, ctx.now) == actor for role in schedule.roles())


def may_act(incident: Incident, actor: str, ctx: Context) -> bool:
    """An incident's responders: its commander and comms lead, plus ``is_responder``."""
    return actor in (incident.commander, incident.comms_lead) or is_responder(actor, ctx)


def refuse(text: str, unauthorized: bool = False) -> Outcome:
    """Nothing changes; ``text`` tells the person why. ``unauthorized`` marks a refusal
    of *who* acted (counted in router_unauthorized_actions_total), not of what."""
    return Outcome(refusal=text, events=[Unauthorized()] if unauthorized else [])


# -- helpers every step uses ---------------------------------------------------


def _begin(incident: Incident) -> Incident:
    changed = incident.model_copy(deep=True)
    changed.version += 1
    return changed


def _key(incident: Incident, what: str) -> str:
    return keys.incident_step(incident.number, what, incident.version)


def _thread(incident: Incident, text: str, what: str) -> Job:
    """A post for the incident's responders: in its channel, or the announcement's thread."""
    return SlackPost(**channel_jobs.where(incident), text=text).job(
        _key(incident, f"thread:{what}")
    )


def _record(
    step: Outcome, incident: Incident, actor: str, kind: str, ctx: Context, **data: str
) -> None:
    """Timeline entry, mirrored as a tracking-issue comment when there is an issue."""
    entry = TimelineEntry(at=ctx.now, actor=actor, kind=kind, data=dict(data))
    step.timeline.append(entry)
    if incident.tracking_issue_job is not None:
        marker = _marker(incident, _key(incident, "comment:" + kind))
        step.jobs.append(
            GitHubComment(
                issue=incident.tracking_issue_job, body=describe(entry), marker=marker
            ).job(_key(incident, f"comment:{kind}"))
        )


def _refresh_announcement(
    step: Outcome, incident: Incident, ctx: Context, *, declaration: bool = False
) -> None:
    """The announcement (or the channel's summary) edited to the incident's state; with
    ``declaration``, the declaration in #incident-response too (what it shows changed)."""
    in_channel = incident.channel_job is not None
    if in_channel and declaration and ctx.policy.incident_channel:
        step.jobs.append(channel_jobs.declaration_update(incident))
    if not in_channel and not ctx.policy.incident_channel:
        return
    text, blocks = announcement(
        incident,
        ctx.alerts,
        ctx.policy.paging.max_alerts_shown,
        ctx.policy.console_url,
        in_channel=in_channel,
    )
    step.jobs.append(
        SlackUpdate(
            target=incident.announce_job, seq=incident.version, text=text, blocks=blocks
        ).job(_key(incident, "announce-update"))
    )


def _done(step: Outcome, incident: Incident, ctx: Context) -> Outcome:
    step.incident = incident
    # The topic and the declaration show the same facts (severity, commander, status).
    topic = channel_jobs.sync_topic(incident)
    _refresh_announcement(step, incident, ctx, declaration=bool(topic))
    step.jobs += topic
    just_closed = incident.status is IncidentStatus.CLOSED and incident.closed_at == ctx.now
    if just_closed and ctx.policy.channels is not None:  # archive the channel later
        step.jobs += channel_jobs.archive_timer(incident, ctx.policy.channels, ctx.now)
    return step


# -- declaring -----------------------------------------------------------------


def announce(
    incident: Incident,
    actor: str,
    ctx: Context,
    step: Outcome,
    invitees: Sequence[str] = (),
    **data: str,
) -> None:
    """What follows every declaration (from a page or by a person): the announcement in
    #incident-response (never silent: the operator channel hears if none is set), the
    timeline's first entry, the tracking issue when severe enough, the reminders.

    With incident channels (``policy.channels``) the incident gets its own channel
    (``invitees``, the people paged for it, are invited), the announcement is the
    summary posted there, and #incident-response gets the declaration linking it.
    Changes ``incident`` in place (its channel job, its topic)."""
    policy = ctx.policy
    if policy.channels is not None:
        step.jobs += channel_jobs.open_channel(incident, policy.channels, ctx.alerts, invitees)
        text, blocks = announcement(
            incident,
            ctx.alerts,
            policy.paging.max_alerts_shown,
            policy.console_url,
            in_channel=True,
        )
        step.jobs.append(
            SlackPost(**channel_jobs.where(incident), text=text, blocks=blocks).job(
                incident.announce_job
            )
        )
        if policy.incident_channel:
            step.jobs.append(channel_jobs.declaration(incident, policy.incident_channel))
    elif policy.incident_channel:
        text, blocks = announcement(
            incident, ctx.alerts, policy.paging.max_alerts_shown, policy.console_url
        )
        step.jobs.append(
            SlackPost(channel=policy.incident_channel, text=text, blocks=blocks).job(
                incident.announce_job
            )
        )
    if not policy.incident_channel and policy.operator_channel:
        step.jobs.append(
            SlackPost(
                channel=policy.operator_channel,
                text=f"{incident.ref} was declared but slack.incident_channel is not "
                "configured: #incident-response was not told.",
            ).job(keys.derived(incident.announce_job, "nochannel"))
        )
    step.timeline.append(
        TimelineEntry(
            at=ctx.now,
            actor=actor,
            kind="declared",
            data={
                "commander": incident.commander,
                "severity": incident.severity.value,
                "clause": incident.severity_reason,
                **({"confidential": "true"} if incident.confidential else {}),
                **({"description": incident.description} if incident.description else {}),
                **data,
            },
        )
    )
    threshold = policy.incident.tracking_issue_at
    if threshold is not None and incident.severity >= threshold:
        _open_tracking_issue(step, incident, "router", ctx)
        _open_doc(step, incident, ctx)
    step.jobs += _reminder_timers(incident, ctx)


def declare(
    number: int,
    title: str,
    actor: str,
    ctx: Context,
    suggestion: Suggestion,
    *,
    description: str | None = None,
    severity: Severity | None = None,
    confidential: bool = False,
) -> Outcome:
    """A person declares directly (``/incident declare``, or its modal) and is the
    commander. ``severity``: classified at declaration (else the suggestion's)."""
    incident = Incident(
        number=number,
        title=title,
        commander=actor,
        severity=severity or suggestion.severity,
        severity_reason=(
            f"classified at declaration by <@{actor}>"
            if severity is not None and severity is not suggestion.severity
            else suggestion.clause
        ),
        suggestion=suggestion,
        declared_at=ctx.now,
        declared_by=actor,
        announce_job=keys.announcement(number),
        description=description,
        confidential=confidential,
    )
    step = Outcome(incident=incident, new_incident=True, events=[Declared()])
    announce(incident, actor, ctx, step)
    step.reply = f"Declared {incident.ref}; you are Incident Commander."
    return step


# -- severity, roles, handoff --------------------------------------------------


# The newest entries a person is shown (an ephemeral message holds about 40,000
# characters; the post-mortem has the whole record).
SHOWN_TIMELINE = 50


def show_timeline(incident: Incident, ctx: Context) -> Outcome:
    """The record so far, to the responder who asked and nobody else; changes nothing."""
    record = escape(timeline_markdown(ctx.timeline, SHOWN_TIMELINE))
    return Outcome(reply=f"*{incident.ref}: {escape(incident.title)}*, timeline\n{record}")


def change_severity(
    incident: Incident, actor: str, level: Severity, reason: str, ctx: Context
) -> Outcome:
    # No open-only check: the policy lets severity be classified after the fact.
    if not reason.strip():
        return refuse("Say why: `/incident severity <level> <reason>`.")
    if level is incident.severity:
        return refuse(f"{incident.ref} is already {level.value}.")
    before = incident.severity
    incident = _begin(incident)
    incident.severity = level
    incident.severity_reason = reason.strip()
    step = Outcome(events=[SeverityChanged(level.value)])
    step.jobs.append(
        _thread(
            incident,
            f"Severity changed from *{before.value}* to "
            f"*{level.value}* by <@{actor}>: {reason.strip()}",
            "severity",
        )
    )
    _record(
        step,
        incident,
        actor,
        "severity_changed",
        ctx,
        to=level.value,
        reason=reason.strip(),
        **{"from": before.value},
    )
    if incident.tracking_issue_job is not None:
        step.jobs.append(
            GitHubUpdate(
                issue=incident.tracking_issue_job,
                remove_labels=[f"severity:{before.value}"],
                add_labels=[f"severity:{level.value}"],
            ).job(_key(incident, "labels"))
        )
    elif incident.open:
        threshold = ctx.policy.incident.tracking_issue_at
        if threshold is not None and level >= threshold:
            _open_tracking_issue(step, incident, "router", ctx)
            _open_doc(step, incident, ctx)
    if incident.open:
        step.cancel_prefixes.append(_timer_key(incident.number, "status"))
        step.jobs += _status_timer(incident, ctx, after=ctx.now)
        if level is Severity.CRITICAL and incident.status is IncidentStatus.ACTIVE:
            step.jobs += _escalation_timer(incident, ctx)
    else:
        _owe_postmortem_late(step, incident, ctx)
    return _done(step, incident, ctx)


def appoint_comms_lead(incident: Incident, actor: str, user: str, ctx: Context) -> Outcome:
    if not incident.open:
        return refuse(OPEN_ONLY.format(ref=incident.ref, status=incident.status.value))
    incident = _begin(incident)
    incident.comms_lead = user
    step = Outcome(events=[CommsLead()])
    step.jobs += channel_jobs.invite(incident, [user], "comms")
    step.jobs.append(
        _thread(incident, f"<@{user}> is communications lead (appointed by <@{actor}>).", "comms")
    )
    _record(step, incident, actor, "comms_lead", ctx, user=user)
    _share_doc(step, incident, ctx)
    return _done(step, incident, ctx)


def offer_handoff(incident: Incident, actor: str, to: str, ctx: Context) -> Outcome:
    if not incident.open:
        return refuse(OPEN_ONLY.format(ref=incident.ref, status=incident.status.value))
    if to == incident.commander:
        return refuse(f"<@{to}> is already the commander of {incident.ref}.")
    incident = _begin(incident)
    incident.handoff = Handoff(to=to, offered_by=actor, offered_at=ctx.now)
    step = Outcome(events=[HandoffOffered()])
    # They read the channel before they accept.
    step.jobs += channel_jobs.invite(incident, [to], "handoff")
    text, blocks = handoff_offer_message(incident)
    step.jobs.append(
        SlackDm(user=to, role="handoff", text=text, blocks=blocks).job(
            _key(incident, "handoff-offer")
        )
    )
    step.jobs.append(
        _thread(
            incident,
            f"<@{actor}> offered the commander role to <@{to}>; "
            f"<@{incident.commander}> stays commander until they accept.",
            "handoff",
        )
    )
    _record(step, incident, actor, "handoff_offered", ctx, to=to)
    step.reply = f"Offered {incident.ref} to <@{to}>; you stay commander until they accept."
    return _done(step, incident, ctx)


def accept_handoff(incident: Incident, actor: str, ctx: Context) -> Outcome:
    if incident.handoff is None or incident.handoff.to != actor:
        return refuse(f"There is no handoff of {incident.ref} waiting for you.", unauthorized=True)
    if not incident.open:
        return refuse(OPEN_ONLY.format(ref=incident.ref, status=incident.status.value))
    previous = incident.commander
    incident = _begin(incident)
    incident.commander = actor
    incident.handoff = None
    step = Outcome(events=[HandoffAccepted()])
    step.jobs.append(
        _thread(
            incident,
            f"<@{actor}> is now Incident Commander (was <@{previous}>).",
            "handoff-accepted",
        )
    )
    _record(step, incident, actor, "handoff_accepted", ctx, to=actor, **{"from": previous})
    _share_doc(step, incident, ctx)
    step.reply = f"You are now Incident Commander of {incident.ref}."
    return _done(step, incident, ctx)


def invite(incident: Incident, actor: str, user: str, ctx: Context) -> Outcome:
    """``/incident invite <@user>``: one more person in the incident's channel."""
    if incident.channel_job is None:
        return refuse(f"{incident.ref} has no channel of its own (incident.channel.mode).")
    if incident.status is IncidentStatus.CLOSED:
        return refuse(f"{incident.ref} is closed.")
    incident = _begin(incident)
    step = Outcome(events=[Invited()])
    step.jobs += channel_jobs.invite(incident, [user], "invite")
    step.jobs.append(_thread(incident, f"<@{actor}> invited <@{user}>.", "invite"))
    _record(step, incident, actor, "invited", ctx, user=user)
    step.reply = f"Inviting <@{user}> to {incident.ref}'s channel."
    return _done(step, incident, ctx)


# -- escalation, vendors, updates, flags --------------------------------------


def escalate(incident: Incident, actor: str, note: str, ctx: Context) -> Outcome:
    if not incident.open:
        return refuse(OPEN_ONLY.format(ref=incident.ref, status=incident.status.value))
    since = incident.escalated_at
    if since is not None and ctx.now - since < ESCALATION_REPEAT:
        minutes = int((ctx.now - since).total_seconds() // 60)
        return refuse(f"Leadership was brought into {incident.ref} {minutes} min ago.")
    schedule = ctx.policy.schedule
    lead = schedule.who_is_on(LEADERSHIP, ctx.now) if LEADERSHIP in schedule.roles() else None
    incident = _begin(incident)
    incident.escalated = True
    incident.escalated_at = ctx.now
    step = Outcome(events=[EscalatedToLeadership()])
    reason = note.strip() or "the response needs more support"
    if lead is not None:
        step.jobs.append(
            SlackDm(
                user=lead,
                role=LEADERSHIP,
                text=f"{incident.ref} ({incident.severity.value}) was "
                f"escalated to you by <@{actor}>: {reason}. "
                f"Commander: <@{incident.commander}>.",
            ).job(_key(incident, "escalate-dm"))
        )
    if ctx.policy.incident_channel or incident.channel_job:
        who = f"<@{lead}>" if lead else "nobody is on call for leadership"
        # The note is the incident's detail: in its own channel when it has one.
        where = (
            channel_jobs.where(incident)
            if incident.channel_job
            else {"channel": ctx.policy.incident_channel}
        )
        step.jobs.append(
            SlackPost(
                **where,
                text=f":arrow_double_up: {incident.ref} escalated to leadership ({who}) "
                f"by <@{actor}>: {reason}",
            ).job(_key(incident, "escalate-post"))
        )
    _record(step, incident, actor, "escalated", ctx, to=lead or "", note=reason)
    if lead is None:
        step.reply = "Nobody is on call for leadership: the escalation was posted in the channel."
    return _done(step, incident, ctx)


def contact_vendor(incident: Incident, actor: str, name: str, ctx: Context) -> Outcome:
    if incident.status is IncidentStatus.CLOSED:
        return refuse(f"{incident.ref} is closed.")
    vendors = ctx.policy.incident.vendors
    key = next((v for v in vendors if v.lower() == name.strip().lower()), None)
    if key is None:
        known = ", ".join(sorted(vendors)) or "none configured (incident.vendors)"
        return refuse(f"Unknown vendor {name.strip()!r}. Known vendors: {known}.")
    vendor = vendors[key]
    incident = _begin(incident)
    if key not in incident.vendors:
        incident.vendors.append(key)
    step = Outcome(events=[VendorContacted()])
    details = f"{vendor.contact}" + (f" — {vendor.url}" if vendor.url else "")
    if vendor.notes:
        details += f" ({vendor.notes})"
    step.jobs.append(
        _thread(
            incident, f"Vendor *{key}* contacted by <@{actor}>. Contact: {details}", f"vendor:{key}"
        )
    )
    _record(step, incident, actor, "vendor_contacted", ctx, vendor=key)
    step.reply = f"Recorded contact with {key}. Contact details: {details}"
    return _done(step, incident, ctx)


def status_update(incident: Incident, actor: str, text: str, ctx: Context) -> Outcome:
    if incident.status is IncidentStatus.CLOSED:
        return refuse(f"{incident.ref} is closed.")
    if not text.strip():
        return refuse("Write the update: `/incident update <text>`.")
    incident = _begin(incident)
    incident.last_update_at = ctx.now
    step = Outcome(events=[StatusUpdate()])
    step.jobs.append(_thread(incident, f":memo: Update from <@{actor}>: {text.strip()}", "update"))
    _record(step, incident, actor, "status_update", ctx, text=text.strip())
    # The next reminder counts from this update.
    step.cancel_prefixes.append(_timer_key(incident.number, "status"))
    step.jobs += _status_timer(incident, ctx, after=ctx.now)
    return _done(step, incident, ctx)


def flag(incident: Incident, actor: str, which: Flag, ctx: Context) -> Outcome:
    if which in incident.flags:
        return refuse(f"{incident.ref} is already flagged {which.value}.")
    if incident.status is IncidentStatus.CLOSED and which is Flag.CUSTOMERS:
        return refuse(f"{incident.ref} is closed.")
    incident = _begin(incident)
    incident.flags.append(which)
    step = Outcome(events=[Flagged()])
    step.jobs.append(
        _thread(incident, f"Flagged *{which.value}* by <@{actor}>.", f"flag:{which.value}")
    )
    _record(step, incident, actor, "flagged", ctx, flag=which.value)
    if which is Flag.DATA_LOSS and ctx.policy.incident.bcp_dr_url:
        step.jobs.append(
            _thread(
                incident,
                "Data or processes were disrupted: recovery follows "
                f"the BCP/DR policy: {ctx.policy.incident.bcp_dr_url}",
                "bcp",
            )
        )
    if not incident.open:
        _owe_postmortem_late(step, incident, ctx)  # an outage found out after the end
    return _done(step, incident, ctx)


def open_tracking_issue(incident: Incident, actor: str, ctx: Context) -> Outcome:
    if incident.tracking_issue_job is not None:
        return refuse(f"{incident.ref} already has a tracking issue.")
    if not ctx.policy.github:
        return refuse("GitHub is not configured (github.repo and GITHUB_TOKEN).")
    incident = _begin(incident)
    step = Outcome()
    _open_tracking_issue(step, incident, actor, ctx)
    _open_doc(step, incident, ctx)
    step.reply = "Opening the tracking issue; its link will be posted in the thread."
    return _done(step, incident, ctx)


def _open_tracking_issue(step: Outcome, incident: Incident, actor: str, ctx: Context) -> None:
    """Adds the issue job to ``step`` and sets ``incident.tracking_issue_job`` in place."""
    if not ctx.policy.github or incident.tracking_issue_job is not None:
        return
    title, body, labels = tracking_issue(incident, ctx.alerts, ctx.timeline, ctx.policy.incident)
    key = keys.incident_job(incident.number, "tracking-issue")
    incident.tracking_issue_job = key
    step.jobs += _issue_jobs(incident, key, title, body, labels, "Tracking issue")
    step.jobs += channel_jobs.tracking_bookmark(incident, key, "Tracking issue")
    step.timeline.append(TimelineEntry(at=ctx.now, actor=actor, kind="tracking_issue"))
    step.events.append(TrackingIssue())


def _marker(incident: Incident, key: str) -> str:
    """Finds an issue or comment again on retry. The declaration time makes it unique
    to this incident, not just its number: a new store, or a second installation using
    the same repository, counts from INC-1 again."""
    return f"incident-router:{key}:{incident.declared_at.timestamp():.0f}"


def _issue_jobs(
    incident: Incident, key: str, title: str, body: str, labels: list[str], what: str
) -> list[Job]:
    """Open an issue (found again, not duplicated, if retried: the marker), then post
    its link in the incident's thread once it exists."""
    return [
        GitHubIssue(title=title, body=body, labels=labels, marker=_marker(incident, key)).job(key),
        SlackPost(
            **channel_jobs.where(incident),
            fill_from=key,
            text=what + ": {html_url}",
        ).job(keys.derived(key, "link")),
    ]


# -- the end -------------------------------------------------------------------


def mitigate(incident: Incident, actor: str, ctx: Context) -> Outcome:
    if incident.status is not IncidentStatus.ACTIVE:
        return refuse(f"{incident.ref} is {incident.status.value}, not active.")
    incident = _begin(incident)
    incident.status = IncidentStatus.MITIGATED
    incident.mitigated_at = ctx.now
    step = Outcome(
        events=[Mitigated()], cancel_prefixes=[_timer_key(incident.number, "escalation")]
    )
    step.jobs.append(
        _thread(incident, f":large_yellow_circle: Mitigated, says <@{actor}>.", "mitigated")
    )
    _record(step, incident, actor, "mitigated", ctx)
    return _done(step, incident, ctx)


def resolve(
    incident: Incident,
    actor: str,
    summary: str,
    ctx: Context,
    *,
    impact: str | None = None,
    postmortem_owed: bool = False,
) -> Outcome:
    """Resolve with a summary; from the modal also the customer impact, and a
    post-mortem owed though the policy does not require one (``postmortem_owed``)."""
    if not incident.open:
        return refuse(f"{incident.ref} is already {incident.status.value}.")
    if not summary.strip():
        return refuse("Summarise the resolution: `/incident resolve <summary>`.")
    incident = _begin(incident)
    incident.status = IncidentStatus.RESOLVED
    incident.resolved_at = ctx.now
    incident.mitigated_at = incident.mitigated_at or ctx.now
    incident.resolution = summary.strip()
    incident.customer_impact = impact.strip() if impact and impact.strip() else None
    incident.handoff = None
    step = Outcome(events=[Resolved()])
    step.cancel_prefixes += [
        _timer_key(incident.number, w) for w in ("status", "escalation", "handoff")
    ]
    notice = (
        f":white_check_mark: *{incident.ref} resolved* ({incident.title}), by <@{actor}>: "
        f"{incident.resolution}"
    )
    if incident.customer_impact:
        notice += f"\nCustomer impact: {incident.customer_impact}"
    # The resolution goes to every affected destination: the channel, the thread,
    # and the tracking issue (mirrored by _record). Outside its own channel a
    # confidential incident says no more than its id and who resolved it.
    if ctx.policy.incident_channel:
        outside = notice
        if incident.confidential:
            outside = f":white_check_mark: *{incident.ref} resolved* (confidential), by <@{actor}>."
        step.jobs.append(
            SlackPost(channel=ctx.policy.incident_channel, text=outside).job(
                _key(incident, "resolved-notice")
            )
        )
    step.jobs.append(_thread(incident, notice, "resolved"))
    recorded = {"summary": incident.resolution}
    if incident.customer_impact:
        recorded["impact"] = incident.customer_impact
    if postmortem_owed:
        recorded["postmortem_owed"] = "true"
    _record(step, incident, actor, "resolved", ctx, **recorded)
    if Flag.CUSTOMERS in incident.flags:
        step.jobs.append(
            _thread(
                incident,
                f"<@{incident.commander}>: customers were affected. "
                "Decide on customer communication (public communication is "
                "optional) and tell the affected customers it is resolved.",
                "customers",
            )
        )
    if incident.tracking_issue_job is not None:
        step.jobs.append(_close_issue(incident, incident.tracking_issue_job, "close-tracking"))
    _draft_public_resolution(step, incident, ctx)
    if ctx.policy.pagerduty and incident.page_key is not None:
        # The page's PagerDuty alert was acknowledged at declaration; now it is over.
        step.jobs.append(
            PagerDutyEvent(
                event_action="resolve", dedup_key=f"{ROUTER_DEDUP_PREFIX}{incident.page_key}"
            ).job(_key(incident, "pd-resolve"))
        )
    if incident.postmortem_required or postmortem_owed:
        _owe_postmortem(step, incident, ctx)
    else:
        incident.status = IncidentStatus.CLOSED
        incident.closed_at = ctx.now
    return _done(step, incident, ctx)


def _owe_postmortem(step: Outcome, incident: Incident, ctx: Context) -> None:
    """Policy: a production outage or loss of customer/critical data owes a post-mortem;
    the incident stays resolved until it is done. Changes ``incident`` in place."""
    incident.postmortem_owed = True
    incident.status = IncidentStatus.RESOLVED
    incident.closed_at = None
    timeline = [*ctx.timeline, *step.timeline]
    title, body, labels = postmortem(incident, ctx.alerts, timeline, ctx.policy.incident)
    if ctx.policy.github:
        key = keys.incident_job(incident.number, "postmortem")
        incident.postmortem_job = key
        step.jobs += _issue_jobs(incident, key, title, body, labels, "Post-mortem")
        step.jobs += channel_jobs.tracking_bookmark(incident, key, "Post-mortem")
        # The incident closes when that issue is closed: look now and then.
        step.jobs += _postmortem_check(incident, ctx)
    where = (
        "The post-mortem issue is being opened with the timeline."
        if ctx.policy.github
        else "GitHub is not configured: write it where your team keeps them, then "
        "`/incident postmortem done`."
    )
    step.jobs.append(
        _thread(
            incident,
            f"<@{incident.commander}>: a post-mortem is owed (production outage or data "
            f"loss). {where}",
            "postmortem",
        )
    )
    step.events.append(PostmortemOwed())


def _owe_postmortem_late(step: Outcome, incident: Incident, ctx: Context) -> None:
    """After the end, a change (severity, a flag) can make a post-mortem owed."""
    if (
        incident.postmortem_required
        and not incident.postmortem_owed
        and (incident.postmortem_job is None)
    ):
        _owe_postmortem(step, incident, ctx)


def postmortem_done(incident: Incident, actor: str, ctx: Context) -> Outcome:
    if not incident.postmortem_owed:
        return refuse(f"{incident.ref} owes no post-mortem.")
    step = _close_after_postmortem(
        incident, actor, f"Post-mortem done (<@{actor}>); {incident.ref} is closed.", ctx
    )
    assert step.incident is not None
    if step.incident.postmortem_job is not None:
        step.jobs.append(
            _close_issue(step.incident, step.incident.postmortem_job, "close-postmortem")
        )
    return step


def _close_after_postmortem(incident: Incident, actor: str, text: str, ctx: Context) -> Outcome:
    incident = _begin(incident)
    incident.postmortem_owed = False
    incident.status = IncidentStatus.CLOSED
    incident.closed_at = ctx.now
    step = Outcome(events=[PostmortemDone()])
    step.jobs.append(_thread(incident, text, "closed"))
    _record(step, incident, actor, "postmortem_done", ctx)
    return _done(step, incident, ctx)


def _close_issue(incident: Incident, issue_job: str, what: str) -> Job:
    return GitHubUpdate(issue=issue_job, state="closed", state_reason="completed").job(
        _key(incident, what)
    )


# -- reminders (timer jobs) ---------------------------------------------------


def _timer_key(number: int, what: str) -> str:
    """The prefix of every timer job of this kind for this incident."""
    return keys.incident_timer_prefix(number, what)


def _timer(number: int, what: str, due: datetime) -> Job:
    # The key carries the due time, so a re-armed timer is a new job; pending ones are
    # cancelled by the key's prefix (``Outcome.cancel_prefixes``).
    return IncidentReminder.due(number, what).job(keys.incident_timer(number, what, due), due)


def _status_timer(incident: Incident, ctx: Context, after: datetime) -> list[Job]:
    minutes = ctx.policy.incident.status_update_minutes.get(incident.severity, 0)
    if minutes <= 0 or not incident.open:
        return []
    return [_timer(incident.number, "status", after + timedelta(minutes=minutes))]


def _escalation_timer(incident: Incident, ctx: Context) -> list[Job]:
    minutes = ctx.policy.incident.escalate_critical_after_minutes
    if incident.severity is not Severity.CRITICAL or minutes <= 0:
        return []
    return [_timer(incident.number, "escalation", ctx.now + timedelta(minutes=minutes))]


def _reminder_timers(incident: Incident, ctx: Context) -> list[Job]:
    jobs = _status_timer(incident, ctx, after=ctx.now) + _escalation_timer(incident, ctx)
    end = end_of_work_day(ctx.now, ctx)
    if end is not None:
        jobs.append(_timer(incident.number, "handoff", end))
    return jobs


def end_of_work_day(now: datetime, ctx: Context) -> datetime | None:
    """The next end of a working day after ``now`` (None: no work hours configured)."""
    hours = ctx.policy.incident.work_hours
    if hours is None or not hours.days:
        return None
    zone = ZoneInfo(hours.timezone)
    hour, minute = (int(part) for part in hours.end.split(":"))
    local = now.astimezone(zone)
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    for days_ahead in range(8):
        day = (local + timedelta(days=days_ahead)).date()
        if names[day.weekday()] not in hours.days:
            continue
        end = datetime.combine(day, time(hour, minute), tzinfo=zone)
        if end > now:
            return end.astimezone(now.tzinfo)
    return None


def _postmortem_check(incident: Incident, ctx: Context) -> list[Job]:
    minutes = ctx.policy.incident.postmortem_check_minutes
    if minutes <= 0:
        return []
    return [_timer(incident.number, "postmortem", ctx.now + timedelta(minutes=minutes))]


def postmortem_issue_state(incident: Incident, state: str, ctx: Context) -> Outcome:
    """The post-mortem issue's state was read: closed on GitHub means done."""
    if not incident.postmortem_owed or state != "closed":
        return Outcome()
    text = f"The post-mortem issue was closed; {incident.ref} is closed."
    return _close_after_postmortem(incident, "router", text, ctx)


def reminder_due(incident: Incident, what: str, ctx: Context) -> Outcome:
    """A reminder timer fired."""
    if what == "archive":
        if incident.status is not IncidentStatus.CLOSED:
            return Outcome()  # reopened by a late post-mortem: the channel stays
        incident = _begin(incident)
        step = Outcome(
            incident=incident, jobs=channel_jobs.archive(incident), events=[ChannelArchived()]
        )
        step.timeline.append(TimelineEntry(at=ctx.now, actor="router", kind="channel_archived"))
        return step
    if what == "postmortem":
        if not incident.postmortem_owed or incident.postmortem_job is None:
            return Outcome()
        read = GitHubUpdate(
            issue=incident.postmortem_job,
            read_state=True,
            on_result="postmortem_state",
            incident=incident.number,
        ).job(keys.derived(incident.postmortem_job, f"state:{ctx.now.timestamp():.0f}"))
        return Outcome(jobs=[read, *_postmortem_check(incident, ctx)])
    if not incident.open:
        return Outcome()  # resolved meanwhile: a stale timer
    commander = f"<@{incident.commander}>"
    incident = _begin(incident)
    step = Outcome(events=[Reminder(what)])
    if what == "status":
        step.jobs.append(
            _thread(
                incident,
                f"{commander}: time for a status update on "
                f"{incident.ref} (`/incident update <text>`).",
                "remind-status",
            )
        )
        step.jobs += _status_timer(incident, ctx, after=ctx.now)
    elif what == "escalation":
        if (
            incident.status is not IncidentStatus.ACTIVE
            or incident.escalated
            or incident.severity is not Severity.CRITICAL  # lowered since declared
        ):
            return Outcome()
        step.jobs.append(
            _thread(
                incident,
                f"{commander}: {incident.ref} is critical and not "
                "mitigated yet. If the response is insufficient, escalate to "
                "leadership: `/incident escalate <note>`.",
                "remind-escalate",
            )
        )
    elif what == "handoff":
        step.jobs.append(
            SlackDm(
                user=incident.commander,
                role="reminder",
                text=f"The working day is ending and {incident.ref} "
                "is still open. Hand it off if you are leaving: "
                "`/incident handoff @someone`.",
            ).job(_key(incident, "remind-handoff"))
        )
        end = end_of_work_day(ctx.now + timedelta(minutes=1), ctx)
        if end is not None:
            step.jobs.append(_timer(incident.number, "handoff", end))
    else:
        return Outcome()
    return _done(step, incident, ctx)


# -- the collaborative doc -----------------------------------------------------


def _doc_links(ctx: Context) -> list[tuple[str, str]]:
    config = ctx.policy.incident
    links = [("BCP/DR policy", config.bcp_dr_url), ("Risk register", config.risk_register_url)]
    return [(text, url) for text, url in links if url]


def _open_doc(step: Outcome, incident: Incident, ctx: Context) -> None:
    """Adds the doc job to ``step`` and sets ``incident.doc_job`` in place; the link
    reaches the thread, the issue and the timeline once the doc exists (``doc_made``)."""
    if not ctx.policy.doc or incident.doc_job is not None:
        return
    key = collaborative_doc.doc_key(incident)
    incident.doc_job = key
    step.jobs.append(
        collaborative_doc.doc_job(incident, key, ctx.policy.responders, _doc_links(ctx))
    )


def _share_doc(step: Outcome, incident: Incident, ctx: Context) -> None:
    """A new responder (comms lead, commander): share the doc with them too. The job
    finds the incident's copy, so it shares, never copies again."""
    if not ctx.policy.doc or incident.doc_job is None:
        return
    key = collaborative_doc.doc_key(incident, share=True)
    step.jobs.append(
        collaborative_doc.doc_job(
            incident, key, ctx.policy.responders, _doc_links(ctx), after=incident.doc_job
        )
    )


def open_doc(incident: Incident, actor: str, ctx: Context) -> Outcome:
    """``/incident doc``: the collaborative doc now (once per incident)."""
    if incident.status is IncidentStatus.CLOSED:
        return refuse(f"{incident.ref} is closed.")
    if not ctx.policy.doc:
        return refuse(
            "The collaborative doc is not configured (incident.doc and"
            " GOOGLE_APPLICATION_CREDENTIALS)."
        )
    if incident.doc_url is not None:
        return refuse(f"{incident.ref} already has its doc: {incident.doc_url}")
    if incident.doc_job is not None:
        return refuse(f"The doc of {incident.ref} is being made; its link comes in the thread.")
    incident = _begin(incident)
    step = Outcome()
    _open_doc(step, incident, ctx)
    step.timeline.append(TimelineEntry(at=ctx.now, actor=actor, kind="doc_requested"))
    step.reply = "Making the collaborative doc; its link will be posted in the thread."
    return _done(step, incident, ctx)


def doc_made(incident: Incident, result: dict[str, Any], ctx: Context) -> Outcome:
    """A ``google.doc`` job reported the doc: link it in the thread, the timeline (and
    so the tracking issue and the post-mortem). A later share job finds the same doc
    and changes nothing here."""
    url = str(result.get("url") or "")
    if not url or incident.doc_url == url:
        return Outcome()
    incident = _begin(incident)
    incident.doc_url = url
    step = Outcome()
    not_shared = [str(u) for u in result.get("not_shared") or []]
    step.jobs.append(_thread(incident, collaborative_doc.made_text(url, not_shared), "doc"))
    _record(step, incident, "router", "doc", ctx, url=url)
    _mirror_to_postmortem(step, incident, "doc")
    return _done(step, incident, ctx)


# -- public communication (the status page) -------------------------------------


def _may_speak_publicly(incident: Incident, actor: str) -> bool:
    return actor in (incident.commander, incident.comms_lead)


def _public_refusal(incident: Incident, actor: str, ctx: Context) -> Outcome | None:
    if ctx.policy.statuspage is None:
        return refuse("The public status page is not configured (statuspage and"
                      " STATUSPAGE_API_KEY).")  # fmt: skip
    if incident.confidential:
        return refuse(public_notice.confidential_refusal(incident))
    if not _may_speak_publicly(incident, actor):
        return refuse(
            f"Only the commander or the communications lead of {incident.ref} can"
            " publish on the status page.",
            unauthorized=True,
        )
    return None


def draft_public_notice(
    incident: Incident, actor: str, text: str, ctx: Context, status: str | None = None
) -> Outcome:
    """``/incident public <text>``: a preview with Confirm and Cancel; nothing public yet."""
    refused = _public_refusal(incident, actor, ctx)
    if refused is not None:
        return refused
    if not text.strip():
        return refuse("Write the notice: `/incident public [INC-n] <text>`.")
    if len(text.strip()) > public_notice.MAX_TEXT:
        return refuse(f"A public notice holds at most {public_notice.MAX_TEXT:,} characters.")
    if incident.public_status == "resolved":
        return refuse(f"The public incident of {incident.ref} is resolved already.")
    assert ctx.policy.statuspage is not None
    incident = _begin(incident)
    draft = PublicDraft(
        id=str(incident.version),
        text=text.strip(),
        status=public_notice.status_for(incident, status),
        by=actor,
        at=ctx.now,
    )
    incident.public_draft = draft
    step = Outcome()
    step.reply, step.reply_blocks = public_notice.preview(
        incident, draft, ctx.policy.statuspage.incident_name
    )
    step.incident = incident  # the draft only: no thread post, no announcement edit
    return step


def confirm_public_notice(incident: Incident, actor: str, draft_id: str, ctx: Context) -> Outcome:
    """The preview's Confirm: the one way a notice reaches the public page."""
    refused = _public_refusal(incident, actor, ctx)
    if refused is not None:
        return refused
    draft = incident.public_draft
    if draft is None or draft.id != draft_id:
        return refuse("That preview is no longer current: nothing was published.")
    assert ctx.policy.statuspage is not None
    job = public_notice.notice_job(incident, draft, ctx.policy.statuspage.incident_name)
    incident = _begin(incident)
    incident.public_draft = None
    incident.public_first_job = incident.public_first_job or job.key
    incident.public_last_job = job.key
    incident.public_status = draft.status
    step = Outcome(jobs=[job])
    step.jobs.append(
        _thread(
            incident,
            f":loudspeaker: Public notice ({draft.status}) confirmed by <@{actor}>: {draft.text}",
            "public",
        )
    )
    _record(step, incident, actor, "public_notice", ctx, status=draft.status, text=draft.text)
    _mirror_to_postmortem(step, incident, "public")
    step.reply = "Publishing on the status page; the link follows in the thread."
    return _done(step, incident, ctx)


def cancel_public_notice(incident: Incident, actor: str, draft_id: str, ctx: Context) -> Outcome:
    draft = incident.public_draft
    if draft is None or draft.id != draft_id:
        return refuse("That preview is no longer current: nothing was published.")
    if not _may_speak_publicly(incident, actor):
        return refuse(f"Only the commander or the comms lead of {incident.ref} can do that.",
                      unauthorized=True)  # fmt: skip
    incident = _begin(incident)
    incident.public_draft = None
    step = Outcome(incident=incident)
    step.reply = "Cancelled: nothing was published."
    return step


def public_published(incident: Incident, result: dict[str, Any], ctx: Context) -> Outcome:
    """A ``statuspage.notice`` job reported the public incident: keep its link, and
    post it in the thread the first time."""
    url = str(result.get("shortlink") or "")
    if not url or incident.public_url == url:
        return Outcome()
    incident = _begin(incident)
    incident.public_url = url
    step = Outcome()
    step.jobs.append(_thread(incident, f":globe_with_meridians: On the status page: {url}",
                             "public-link"))  # fmt: skip
    _record(step, incident, "router", "public_incident", ctx, url=url)
    return _done(step, incident, ctx)


def _mirror_to_postmortem(step: Outcome, incident: Incident, what: str) -> None:
    """What is recorded after the post-mortem issue was written (the public resolution
    is confirmed after resolving) reaches it as a comment: it has every public post."""
    if incident.postmortem_job is None:
        return
    entry = step.timeline[-1]
    key = _key(incident, f"postmortem-comment:{what}")
    step.jobs.append(
        GitHubComment(
            issue=incident.postmortem_job, body=describe(entry), marker=_marker(incident, key)
        ).job(key)
    )


def _draft_public_resolution(step: Outcome, incident: Incident, ctx: Context) -> None:
    """Resolving an incident that went public drafts the public resolution (the
    configured ``statuspage.resolution_text``) and sends its preview to the commander:
    it is published when they confirm, as every public notice is. Changes ``incident``
    in place."""
    config = ctx.policy.statuspage
    if (
        config is None
        or incident.confidential
        or incident.public_first_job is None
        or incident.public_status == "resolved"
    ):
        return
    draft = PublicDraft(
        id=str(incident.version),
        text=config.resolution_text,
        status="resolved",
        by="router",
        at=ctx.now,
    )
    incident.public_draft = draft
    text, blocks = public_notice.preview(incident, draft, config.incident_name)
    step.jobs.append(
        SlackDm(user=incident.commander, text=text, blocks=blocks).job(
            _key(incident, "public-resolution")
        )
    )
    step.jobs.append(
        _thread(
            incident,
            f"<@{incident.commander}>: the public incident is still open. The resolution"
            " notice waits for your Confirm (a preview was sent to you; or write your own"
            f" with `/incident public {incident.ref} <text>`).",
            "public-resolution",
        )
    )
