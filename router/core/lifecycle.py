"""The paging lifecycle: (state, event) -> (new state, jobs). Pure: no I/O, no clock.

Every paging rule (docs/design.md, "The paging lifecycle") lives here and is
unit-tested without a network or sleeping; docs/rules.md lists the tests of each.
The caller (``router.app.paging``) loads the state, passes the time in, and commits
what comes back in one transaction.

Events:
* ``alerts_arrived``: a webhook brought alerts of one group;
* ``decide``: a person pressed Declare / Not an incident / Escalate;
* ``ack_timeout``: a page was not answered in time (a timer job fired);
* ``digest_timeout``: nobody answered a storm digest in time.

A step never sees a whole alert group: it gets the delivery's own alerts and the
page's ``PageAlerts`` (counts, the alerts shown, the worst firing one), which the
store reads by index. A storm digest is its ``Digest`` row; ``digest_parts`` renders
the parts whose lines changed. So the work of a step depends on what it was given,
not on how big the group or the digest already is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from router.core import duties, keys
from router.core.alerts import Alert, AlertChange, AlertStatus, Truncation, short_hash
from router.core.digest import PART_SIZE, Digest, DigestLine
from router.core.events import (
    Declared,
    Dismissed,
    Escalated,
    EscalationExhausted,
    NobodyOnCall,
    PageAllResolved,
    PageFolded,
    PageOpened,
    PageRefired,
    Unauthorized,
)
from router.core.incident import Incident, TimelineEntry
from router.core.jobs import (
    AckTimeout,
    DigestTimeout,
    Job,
    PagerDutyEvent,
    SlackDm,
    SlackPost,
    SlackUpdate,
)
from router.core.messages import digest_part, page_message, refire_message, reminder_message
from router.core.oncall import ENG_PRIMARY, ESCALATION_ORDER
from router.core.page import (
    CONFIDENTIAL_TITLE,
    ROUTER_DEDUP_PREFIX,
    Decision,
    Page,
    PageAlerts,
    PagedPerson,
    PageStatus,
)
from router.core.policy import Outcome, Policy
from router.core.severity import pagerduty_severity


@dataclass(frozen=True)
class Storm:
    """How many pages the assignee got one by one in the current window, and the
    window's digest so far (None until a page is folded)."""

    recent_pages: int = 0
    digest: Digest | None = None


def _working_copy(page: Page) -> Page:
    """A copy to change: a step changes fields by assignment, and only ``paged`` in
    place, so that list is the one thing copied (a deep copy cost more than the step)."""
    return page.model_copy(update={"paged": list(page.paged)})


def page_key(group_key: str, now: datetime) -> str:
    # Deterministic, so replicas racing on one group compute the same key.
    return "p" + short_hash(f"{group_key}|{now.isoformat()}")


def ack_timer_key(page: Page, level: int) -> str:
    return keys.page_ack_timer(page.key, level)


def digest_key(user: str, now: datetime, policy: Policy) -> str:
    """The digest of ``user``'s storm window at ``now``."""
    return keys.digest(user, int(now.timestamp()) // policy.paging.storm_window_seconds)


def _pd_job(page: Page, action: str, policy: Policy, alerts: PageAlerts) -> list[Job]:
    if not policy.pagerduty:
        return []
    event = PagerDutyEvent(event_action=action, dedup_key=page.pagerduty_dedup_key)
    if action == "trigger":
        first = alerts.worst or (alerts.shown[0] if alerts.shown else None)
        summary = {
            "summary": page.title[:1024],
            "source": (first.labels.get("instance") or first.source.value) if first else "router",
            "severity": pagerduty_severity(page.suggestion.severity),
            "custom_details": {"alerts": alerts.firing, "clause": page.suggestion.clause},
        }
        event = PagerDutyEvent(
            event_action=action, dedup_key=page.pagerduty_dedup_key, payload=summary
        )
    return [event.job(keys.page_pagerduty(page.key, action, page.version))]


def _dm(
    page: Page, role: str, user: str, now: datetime, alerts: PageAlerts, policy: Policy
) -> tuple[PagedPerson, Job]:
    key = keys.page_dm(page.key, len(page.paged), user)
    person = PagedPerson(role=role, user=user, at=now, dm_job=key)
    page.paged.append(person)
    text, blocks = page_message(page, alerts, policy.paging.max_alerts_shown)
    return person, SlackDm(user=user, role=role, text=text, blocks=blocks).job(key)


def _page_again(page: Page, why: str, text: str, blocks: list[dict[str, object]]) -> list[Job]:
    """A new DM to everyone already paged (a re-page, counted as one)."""
    return [
        SlackDm(user=person.user, role=person.role, text=text, blocks=blocks).job(
            keys.again(person.dm_job, why)
        )
        for person in page.paged
    ]


def _refresh(page: Page, alerts: PageAlerts, policy: Policy) -> list[Job]:
    """Edit every DM of this page in place to show its current state. The store keeps
    one pending edit per message and gives it the newest state (coalesced edits)."""
    text, blocks = page_message(page, alerts, policy.paging.max_alerts_shown)
    return [
        SlackUpdate(target=p.dm_job, seq=page.version, text=text, blocks=blocks).job(
            keys.edit(p.dm_job, page.version)
        )
        for p in page.paged
    ]


def _operator_notice(policy: Policy, key: str, text: str) -> list[Job]:
    if not policy.operator_channel:
        return []
    return [SlackPost(channel=policy.operator_channel, text=text).job(key)]


def _title(alerts: Sequence[Alert]) -> str:
    names = sorted({a.name for a in alerts})
    title = names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} other alerts"
    instances = sorted({a.labels["instance"] for a in alerts if "instance" in a.labels})
    if len(names) == 1 and len(instances) == 1:
        title += f" on {instances[0]}"
    # Label values have no length limit; Slack's message text has (40,000 characters).
    return title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 1] + "…"


_TITLE_MAX = 200


# -- alerts arrived -----------------------------------------------------------


def alerts_arrived(
    page: Page | None,
    changes: Sequence[AlertChange],
    delivery: Sequence[Alert],
    alerts: PageAlerts | None,
    now: datetime,
    policy: Policy,
    storm: Storm,
    incident_open: bool = True,
    truncation: Truncation | None = None,
) -> Outcome:
    """Alerts of one group were recorded.

    ``page`` is the group's active page, if any; ``alerts`` what it holds now,
    this delivery included (``PageAlerts``; given whenever there is a page);
    ``delivery`` the group's pageable alerts in this delivery, each as it stands now
    (what a new page would hold); ``changes`` what this delivery changed;
    ``incident_open`` whether the incident declared from ``page`` is still open;
    ``truncation`` the alerts of the group the sender left out of this delivery.
    """
    something_new = any(c in (AlertChange.NEW, AlertChange.REFIRED) for c in changes)
    firing_now = any(a.status is AlertStatus.FIRING for a in delivery)

    if page is None:
        if not (something_new and firing_now):
            return Outcome()  # repeats or resolutions of alerts nobody was paged for
        return _open_page(delivery, now, policy, storm, truncation)
    # Dismissed, or its incident is over: something new firing deserves a fresh look.
    finished = page.status is PageStatus.DISMISSED or (
        page.status is PageStatus.DECLARED and not incident_open
    )
    if finished and something_new and firing_now:
        retired = page.model_copy(update={"active": False, "version": page.version + 1})
        outcome = _open_page(delivery, now, policy, storm, truncation)
        outcome.retire = retired
        return outcome
    if page.status is PageStatus.DECLARED and not incident_open:
        # Its incident is closed: the page steps aside quietly (no notes to a thread
        # nobody reads), and the next firing of the group pages afresh.
        return Outcome(page=page.model_copy(update={"active": False, "version": page.version + 1}))
    if alerts is None:
        raise ValueError("a page's alerts are needed to update it")
    return _update_page(page, changes, alerts, now, policy, truncation)


def _open_page(
    delivery: Sequence[Alert],
    now: datetime,
    policy: Policy,
    storm: Storm,
    truncation: Truncation | None = None,
) -> Outcome:
    alerts = PageAlerts.of(delivery, policy.paging.max_alerts_shown, policy.severity)
    firing = [a for a in delivery if a.status is AlertStatus.FIRING]
    group_key = firing[0].group_key
    # A confidential report's name is its title: alert quality counts it by a placeholder.
    confidential = any(a.labels.get("confidential") == "true" for a in firing)
    page = Page(
        key=page_key(group_key, now),
        group_key=group_key,
        source=firing[0].source.value,
        title=_title(firing),
        alert_name=CONFIDENTIAL_TITLE if confidential else min(a.name for a in firing),
        confidential=confidential,
        opened_at=now,
        suggestion=alerts.suggestion(policy.severity, truncation),
        counts=alerts.counts,
        truncation=truncation,
    )
    page.pagerduty_dedup_key = f"{ROUTER_DEDUP_PREFIX}{page.key}"
    outcome = Outcome(page=page, new_page=True, events=[PageOpened()])
    role, user = first_on_call(policy, now)
    if user is None:
        # Nobody is on call: never silent. The operator channel hears it.
        outcome.jobs += _operator_notice(
            policy,
            keys.page_notice(page.key, "nobody"),
            f":warning: Nobody is on call for any role; a page "
            f"({page.key}) was not delivered to anyone.",
        )
        outcome.events.append(NobodyOnCall())
        return outcome
    page.assignee = user
    if storm.recent_pages >= policy.paging.storm_limit:
        return _fold(page, user, now, policy, storm, outcome)
    _, dm = _dm(page, role, user, now, alerts, policy)
    outcome.jobs.append(dm)
    outcome.jobs += _pd_job(page, "trigger", policy, alerts)
    outcome.jobs.append(_ack_timer(page, now, policy))
    return outcome


def on_call_after(
    level: int, now: datetime, policy: Policy, skip: Iterable[str] = ()
) -> tuple[str | None, str | None]:
    """(role, person) of the first configured role after ``ESCALATION_ORDER[level]``
    with someone on call who is not in ``skip``; (None, None) when there is nobody."""
    skipped = set(skip)
    for role in ESCALATION_ORDER[level + 1 :]:
        if role in policy.schedule.roles():
            user = policy.schedule.who_is_on(role, now)
            if user is not None and user not in skipped:
                return role, user
    return None, None


def first_on_call(policy: Policy, now: datetime) -> tuple[str, str | None]:
    found = _FIRST_ON_CALL.get(id(policy))
    if found is not None and found[0] is policy and found[1] == now:
        return found[2]  # a step asks twice (storm control, then the page), a batch often
    role, user = on_call_after(-1, now, policy)
    _FIRST_ON_CALL[id(policy)] = (policy, now, (role or ENG_PRIMARY, user))
    return role or ENG_PRIMARY, user


_FIRST_ON_CALL: dict[int, tuple[Policy, datetime, tuple[str, str | None]]] = {}


def _fold(
    page: Page, user: str, now: datetime, policy: Policy, storm: Storm, outcome: Outcome
) -> Outcome:
    """Storm control: past the limit, new pages join one digest instead of paging.

    The page becomes the digest's next line; ``digest_parts`` (called once the step's
    changes are stored) renders the messages whose lines changed."""
    first = storm.digest is None
    if storm.digest is None:
        key = digest_key(user, now, policy)
        assignee = PagedPerson(role=ENG_PRIMARY, user=user, at=now, dm_job=key)
        digest = Digest(key=key, assignee=user, opened_at=now, paged=[assignee])
    else:
        digest = storm.digest.model_copy(update={"paged": list(storm.digest.paged)})
    digest.pages += 1
    digest.version += 1
    page.digest_key = digest.key
    page.digest_position = digest.pages
    page.paged.append(PagedPerson(role=ENG_PRIMARY, user=user, at=now, dm_job=digest.key))
    outcome.digest = digest
    if first:
        # The digest escalates as one: if nobody answers it, the next level gets one
        # digest of what is still open (not a page each), and PagerDuty rings once.
        outcome.jobs.append(_digest_timer(digest.key, 0, now, policy))
        if policy.pagerduty:
            outcome.jobs.append(
                PagerDutyEvent(
                    event_action="trigger",
                    dedup_key=f"{ROUTER_DEDUP_PREFIX}{digest.key}",
                    payload={
                        "summary": "Alert storm: suspected incidents folded into a digest",
                        "source": "incident-router",
                        "severity": "critical",
                    },
                ).job(keys.digest_pagerduty(digest.key))
            )
    outcome.events.append(PageFolded())
    return outcome


def digest_parts(
    digest: Digest, lines: Mapping[int, Sequence[DigestLine]], console_url: str | None = None
) -> tuple[Digest, list[Job]]:
    """The messages of ``digest`` whose lines changed (``lines``: part -> its lines):
    a DM for a part not posted yet (after the part before it, so they read in order),
    an edit for one already posted. Returns the digest to store (its version is the
    edits' ``seq``) and the jobs."""
    digest = digest.model_copy(update={"version": digest.version + 1})
    jobs = []
    for part in sorted(lines):
        text, blocks = digest_part(
            digest.assignee, digest.pages, part, lines[part], console_url=console_url
        )
        key = keys.digest_part(digest.key, part)
        if part >= digest.parts_posted:
            dm = SlackDm(user=digest.assignee, role="digest", text=text, blocks=blocks)
            if part > 0:  # after the part before it, so they read in order
                after = keys.digest_part(digest.key, part - 1)
                dm = SlackDm(
                    user=digest.assignee, role="digest", text=text, blocks=blocks, after=after
                )
            jobs.append(dm.job(key))
            digest.parts_posted = part + 1
        else:
            seq = digest.version
            edit = SlackUpdate(target=key, seq=seq, text=text, blocks=blocks)
            jobs.append(edit.job(keys.edit(key, seq)))
    return digest, jobs


def _digest_timer(digest: str, level: int, now: datetime, policy: Policy) -> Job:
    return DigestTimeout(digest=digest, level=level).job(
        keys.digest_ack_timer(digest, level),
        due_at=now + timedelta(seconds=policy.paging.ack_timeout_seconds),
    )


def digest_timeout(
    digest: Digest, level: int, waiting: Sequence[DigestLine], now: datetime, policy: Policy
) -> Outcome:
    """Nobody answered a storm digest: the next level gets one digest of the pages
    still waiting for a decision (``waiting``), and may decide on them."""
    if digest.level != level or not waiting:
        return Outcome()  # stale, or nothing left to decide
    role, user = on_call_after(level, now, policy, digest.paged_users)
    if role is None or user is None:
        return Outcome(
            jobs=_operator_notice(
                policy,
                keys.derived(digest.key, "exhausted"),
                f":warning: A storm digest ({len(waiting)} pages) was escalated to every "
                "on-call level without a decision.",
            ),
            events=[EscalationExhausted()],
        )
    key = keys.digest_escalated(digest.key, user)
    digest = digest.model_copy(update={"paged": list(digest.paged)})
    digest.paged.append(PagedPerson(role=role, user=user, at=now, dm_job=key))
    digest.level = ESCALATION_ORDER.index(role)
    digest.version += 1
    outcome = Outcome(digest=digest, events=[Escalated("timeout", role)])
    for part, start in enumerate(range(0, len(waiting), PART_SIZE)):
        text, blocks = digest_part(
            user, len(waiting), part, waiting[start : start + PART_SIZE],
            escalated_from=digest.assignee, console_url=policy.console_url,
        )  # fmt: skip
        after = keys.digest_part(key, part - 1) if part > 0 else None
        dm = SlackDm(user=user, role=role, text=text, blocks=blocks)
        if after is not None:
            dm = SlackDm(user=user, role=role, text=text, blocks=blocks, after=after)
        outcome.jobs.append(dm.job(keys.digest_part(key, part)))
    outcome.jobs.append(_digest_timer(digest.key, digest.level, now, policy))
    return outcome


def _ack_timer(page: Page, now: datetime, policy: Policy) -> Job:
    return AckTimeout(page=page.key, level=page.level).job(
        ack_timer_key(page, page.level),
        due_at=now + timedelta(seconds=policy.paging.ack_timeout_seconds),
    )


def _update_page(
    page: Page,
    changes: Sequence[AlertChange],
    alerts: PageAlerts,
    now: datetime,
    policy: Policy,
    truncation: Truncation | None = None,
) -> Outcome:
    if (
        all(c is AlertChange.REPEAT for c in changes)
        and page.counts == alerts.counts
        and truncation == page.truncation
    ):
        return Outcome()  # Alertmanager resent the group; nothing to tell anyone
    page = _working_copy(page)
    page.version += 1
    page.counts = alerts.counts
    # Each message carries the whole group: its count of cut alerts is the current one.
    page.truncation = truncation
    was_resolved = page.all_resolved
    page.all_resolved = alerts.firing == 0
    outcome = Outcome(page=page)
    if page.status is PageStatus.OPEN and alerts.firing:
        # The suggestion follows the evidence while nobody has decided yet: the worst
        # firing alert's (an indexed row, not a pass over the group).
        page.suggestion = alerts.suggestion(policy.severity, truncation)
    if page.status is PageStatus.DISMISSED and page.all_resolved:
        page.active = False  # dismissed and quiet: the group may page afresh later
    if page.digest_key is None:
        outcome.jobs += _refresh(page, alerts, policy)
    if page.all_resolved and not was_resolved:
        outcome.events.append(PageAllResolved())
        outcome.jobs += _pd_job(page, "resolve", policy, alerts)
        # Resolved before anyone answered: stop escalating to the next level.
        outcome.cancel += _cancel_timers(page) if page.status is PageStatus.OPEN else []
    elif was_resolved and alerts.firing and page.status is PageStatus.OPEN:
        # Firing again before anyone answered: page again, and escalate again if unanswered.
        outcome.events.append(PageRefired())
        outcome.jobs += _pd_job(page, "trigger", policy, alerts)
        outcome.jobs.append(_ack_timer(page, now, policy))
        outcome.jobs += _page_again(page, f"refired:v{page.version}", *refire_message(page))
    if page.status is PageStatus.DECLARED and page.incident_number is not None:
        outcome.jobs += _thread_notes(page, changes, alerts)
        outcome.timeline += [
            TimelineEntry(
                at=now,
                actor="router",
                kind="alerts_changed",
                data={"firing": alerts.firing, "resolved": alerts.resolved},
            )
        ]
    return outcome


def _thread_notes(page: Page, changes: Sequence[AlertChange], alerts: PageAlerts) -> list[Job]:
    new = sum(1 for c in changes if c in (AlertChange.NEW, AlertChange.REFIRED))
    resolved = sum(1 for c in changes if c is AlertChange.RESOLVED)
    parts = []
    if new:
        parts.append(f"{new} alert(s) started firing")
    if resolved:
        parts.append(f"{resolved} alert(s) resolved")
    if not parts:
        return []
    status = "all alerts resolved" if alerts.firing == 0 else f"{alerts.firing} still firing"
    return [
        SlackPost(
            channel=None,
            thread_of=_announce_key(page.incident_number),
            text=f"Alerts: {', '.join(parts)}; {status}.",
        ).job(keys.page_thread(page.key, page.version))
    ]


def _announce_key(number: int | None) -> str:
    return keys.announcement(number)


# -- decisions ----------------------------------------------------------------


def decide(
    page: Page,
    decision: Decision,
    actor: str,
    now: datetime,
    policy: Policy,
    alerts: PageAlerts,
    incident_number: int | None = None,
    reason: str | None = None,
    expected_level: int | None = None,
    deciders: Iterable[str] = (),
) -> Outcome:
    """A person pressed a button on a page. ``expected_level``: the escalation level
    the page showed when Escalate was pressed (a second click must not escalate twice).
    ``deciders``: who else was sent the page (a digest's escalations)."""
    if not page.may_decide(actor, policy.responders | frozenset(deciders)):
        return Outcome(
            refusal="Only the people paged for this and the configured responders "
            "can decide on it.",
            events=[Unauthorized()],
        )
    if page.status is PageStatus.DECLARED:
        return Outcome(
            refusal=f"Already declared as INC-{page.incident_number} by <@{page.decided_by}>."
        )
    if decision is Decision.ESCALATE:
        if page.status is not PageStatus.OPEN:
            return Outcome(refusal="This page was already answered; nothing to escalate.")
        if expected_level is not None and expected_level != page.level:
            paged = ", ".join(f"<@{p.user}> ({p.role})" for p in page.paged)
            return Outcome(refusal=f"Already escalated: paged {paged}.")
        outcome = _escalate(page, now, policy, alerts, cause="button", actor=actor)
        if outcome.page is None:
            outcome.refusal = "There is nobody further to escalate to."
        return outcome
    if decision is Decision.DISMISS:
        if page.status is PageStatus.DISMISSED:
            return Outcome(refusal=f"Already dismissed by <@{page.decided_by}>.")
        return _dismiss(page, actor, now, policy, alerts, reason)
    if incident_number is None:
        raise ValueError("declaring needs the next incident number")
    return _declare(page, actor, now, policy, alerts, incident_number)


def _decided(page: Page, status: PageStatus, actor: str, now: datetime) -> Page:
    page = _working_copy(page)
    page.status = status
    page.decided_by = actor
    page.decided_at = now
    page.version += 1
    return page


def _cancel_timers(page: Page) -> list[str]:
    return [ack_timer_key(page, level) for level in range(len(ESCALATION_ORDER) + 1)]


def _dismiss(
    page: Page,
    actor: str,
    now: datetime,
    policy: Policy,
    alerts: PageAlerts,
    reason: str | None,
) -> Outcome:
    page = _decided(page, PageStatus.DISMISSED, actor, now)
    page.reason = reason
    if page.all_resolved:
        page.active = False
    outcome = Outcome(page=page, cancel=_cancel_timers(page), events=[Dismissed()])
    outcome.jobs += _refresh(page, alerts, policy) if page.digest_key is None else []
    outcome.jobs += _pd_job(page, "resolve", policy, alerts)
    return outcome


def _declare(
    page: Page, actor: str, now: datetime, policy: Policy, alerts: PageAlerts, number: int
) -> Outcome:
    page = _decided(page, PageStatus.DECLARED, actor, now)
    page.incident_number = number
    incident = Incident(
        number=number,
        title=page.title,
        commander=actor,
        severity=page.suggestion.severity,
        severity_reason=page.suggestion.clause,
        suggestion=page.suggestion,
        declared_at=now,
        declared_by=actor,
        page_key=page.key,
        group_key=page.group_key,
        announce_job=_announce_key(number),
        truncation=page.truncation,
        confidential=_confidential(page, alerts, policy),
    )
    outcome = Outcome(
        page=page,
        incident=incident,
        new_incident=True,
        cancel=_cancel_timers(page),
        events=[Declared()],
    )
    outcome.jobs += _refresh(page, alerts, policy) if page.digest_key is None else []
    outcome.jobs += _pd_job(page, "acknowledge", policy, alerts)
    # The commander's duties start now: announcement, tracking issue, reminders.
    duties.announce(
        incident, actor, duties.Context(now, policy, alerts), outcome,
        invitees=page.paged_users, page=page.key,
    )  # fmt: skip
    return outcome


def _confidential(page: Page, alerts: PageAlerts, policy: Policy) -> bool:
    """A security rule's evidence (a rule marked confidential) makes the incident
    confidential, and so does a report whose reporter said so (label confidential)."""
    if policy.severity.confidential(page.suggestion.rule):
        return True
    shown = [*alerts.shown, *([alerts.worst] if alerts.worst else [])]
    return any(a.labels.get("confidential") == "true" for a in shown)


# -- escalation ---------------------------------------------------------------


def ack_timeout(
    page: Page, level: int, now: datetime, policy: Policy, alerts: PageAlerts
) -> Outcome:
    """Nobody decided in time: page again and page the next level."""
    if page.status is not PageStatus.OPEN or page.level != level or page.all_resolved:
        # decided, escalated by hand, or resolved on its own: the timer is stale
        return Outcome()
    return _escalate(page, now, policy, alerts, cause="timeout", actor="router")


def _escalate(
    page: Page, now: datetime, policy: Policy, alerts: PageAlerts, cause: str, actor: str
) -> Outcome:
    page = _working_copy(page)
    outcome = Outcome()
    # Page everyone already paged again, before the next level hears.
    outcome.jobs += _page_again(page, f"remind:{page.level}", *reminder_message(page))
    next_role, next_user = on_call_after(page.level, now, policy, page.paged_users)
    page.version += 1
    if next_user is not None and next_role is not None:
        page.level = ESCALATION_ORDER.index(next_role)
        _, dm = _dm(page, next_role, next_user, now, alerts, policy)
        outcome.jobs.append(dm)
        outcome.events.append(Escalated(cause, next_role))
        outcome.jobs += _refresh(page, alerts, policy)
        outcome.jobs.append(_ack_timer(page, now, policy))
    elif cause == "button":
        return Outcome(events=[EscalationExhausted()])
    else:
        outcome.jobs += _operator_notice(
            policy,
            keys.page_notice(page.key, "exhausted"),
            f":warning: Page {page.key} was escalated to every on-call level without a decision.",
        )
        outcome.events += [Escalated(cause, None), EscalationExhausted()]
    outcome.page = page
    outcome.timeline.append(
        TimelineEntry(at=now, actor=actor, kind="page_escalated", data={"to": next_role or ""})
    )
    return outcome
