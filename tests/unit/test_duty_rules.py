"""The Incident Commander's duties, pinned: each test names the duty it holds and asserts
exactly what the step records and tells (thread posts, DMs, issue jobs, timers, replies),
so a broken duty fails.

Written against the survivors of mutation testing (`make mutation`): every test here
fails on a mutant of ``router.core.duties`` that the older tests let through.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from router.core import duties
from router.core.incident import Flag, Handoff, Incident, IncidentStatus
from router.core.jobs import Job, JobKind
from router.core.policy import Outcome, Policy
from router.core.policy_config import IncidentConfig, VendorConfig, WorkHoursConfig
from router.core.reports import describe
from router.core.severity import DEFAULT_RULES, Severity, suggest
from tests.unit.test_duties import (
    IC,
    LEAD,
    NOW,
    OTHER,
    POLICY,
    RESPONDER,
    STRANGER,
    ctx,
    make_policy,
)

TS = f"{NOW.timestamp():.0f}"


def incident(severity: Severity = Severity.MEDIUM, **changes: Any) -> Incident:
    """INC-7, declared at NOW by IC, version 0 (so a step's keys end in :v1)."""
    outcome = duties.declare(7, "Checkout errors", IC, ctx(), suggest([], DEFAULT_RULES))
    assert outcome.incident is not None
    return outcome.incident.model_copy(update={"severity": severity, **changes})


def tracked(severity: Severity = Severity.MEDIUM, **changes: Any) -> Incident:
    return incident(severity, tracking_issue_job="incident:7:tracking-issue", **changes)


def with_policy(**changes: Any) -> Policy:
    return Policy(**{**POLICY.__dict__, **changes})


def of(outcome: Outcome, kind: JobKind) -> list[Job]:
    return [j for j in outcome.jobs if j.kind is kind]


def thread(outcome: Outcome) -> list[tuple[str, str]]:
    """(key, text) of the step's posts in the incident's thread."""
    return [
        (j.key, j.payload["text"])
        for j in of(outcome, JobKind.SLACK_POST)
        if j.payload.get("thread_of") == "incident:7:announce" and "fill_from" not in j.payload
    ]


def timers(outcome: Outcome) -> list[tuple[str, dict[str, Any], datetime | None]]:
    return [(j.key, j.payload, j.due_at) for j in of(outcome, JobKind.TIMER)]


def timer(what: str, due: datetime) -> tuple[str, dict[str, Any], datetime]:
    key = f"incident:7:timer:{what}:{due.timestamp():.0f}"
    return key, {"event": f"incident_{what}", "incident": 7}, due


def assert_thread_job(job: Job) -> None:
    assert set(job.payload) == {"channel", "thread_of", "text"} and job.payload["channel"] is None


# -- who may act ------------------------------------------------------------------------


@pytest.mark.rule("duty.who-may-act")
def test_responders_are_the_configured_group_and_whoever_is_on_call() -> None:
    c = ctx()
    assert duties.is_responder(RESPONDER, c)
    assert duties.is_responder(LEAD, c)  # on call for leadership
    assert not duties.is_responder(STRANGER, c)
    inc = incident(comms_lead="U0COMMSLEAD")
    assert duties.may_act(inc, "U0COMMSLEAD", c) and duties.may_act(inc, IC, c)
    assert not duties.may_act(inc, STRANGER, c)


@pytest.mark.rule("duty.who-may-act")
def test_a_refusal_changes_nothing_and_counts_only_who_acted() -> None:
    assert duties.refuse("no") == Outcome(refusal="no")
    assert duties.refuse("no", unauthorized=True) == Outcome(refusal="no", events=["unauthorized"])
    wrong = duties.accept_handoff(incident(), STRANGER, ctx())
    assert wrong.refusal == "There is no handoff of INC-7 waiting for you."
    assert wrong.events == ["unauthorized"] and wrong.incident is None


# -- declaring ---------------------------------------------------------------------------


@pytest.mark.rule("duty.declare")
def test_declaring_posts_the_announcement_and_records_commander_and_clause() -> None:
    suggestion = suggest([], DEFAULT_RULES)
    outcome = duties.declare(7, "Checkout errors", RESPONDER, ctx(), suggestion)
    inc = outcome.incident
    assert inc is not None and outcome.new_incident and outcome.events == ["declared"]
    assert (inc.number, inc.title, inc.commander, inc.declared_by, inc.declared_at) == (
        7, "Checkout errors", RESPONDER, RESPONDER, NOW,
    )  # fmt: skip
    assert (inc.severity, inc.severity_reason, inc.suggestion) == (
        suggestion.severity, suggestion.clause, suggestion,
    )  # fmt: skip
    assert inc.announce_job == "incident:7:announce"
    assert outcome.reply == "Declared INC-7; you are Incident Commander."
    [announce] = [j for j in outcome.jobs if j.key == "incident:7:announce"]
    assert announce.kind is JobKind.SLACK_POST
    assert set(announce.payload) == {"channel", "text", "blocks"}
    assert announce.payload["channel"] == "C0INC" and "INC-7" in announce.payload["text"]
    [entry] = outcome.timeline
    assert (entry.at, entry.actor, entry.kind) == (NOW, RESPONDER, "declared")
    assert entry.data == {
        "commander": RESPONDER, "severity": "low", "clause": suggestion.clause,
    }  # fmt: skip


@pytest.mark.rule("duty.declare")
def test_without_an_incident_channel_the_operator_hears_nobody_was_told() -> None:
    policy = with_policy(incident_channel=None, operator_channel="C0OPS")
    outcome = duties.declare(7, "Checkout errors", IC, ctx(policy), suggest([], DEFAULT_RULES))
    posts = of(outcome, JobKind.SLACK_POST)
    assert [(j.key, j.payload) for j in posts] == [
        ("incident:7:announce:nochannel", {
            "channel": "C0OPS",
            "text": "INC-7 was declared but slack.incident_channel is not configured: "
            "#incident-response was not told.",
        })
    ]  # fmt: skip
    silent = with_policy(incident_channel=None, operator_channel=None)
    quiet = duties.declare(7, "x", IC, ctx(silent), suggest([], DEFAULT_RULES))
    assert of(quiet, JobKind.SLACK_POST) == []


@pytest.mark.rule("duty.declare")
def test_a_declaration_from_a_page_records_the_page_in_its_first_entry() -> None:
    step = Outcome()
    duties.announce(incident(), IC, ctx(), step, page="p123")
    assert step.timeline[0].data["page"] == "p123"


# -- severity -----------------------------------------------------------------------------


@pytest.mark.rule("duty.classify-severity")
def test_a_severity_change_posts_records_and_swaps_only_the_severity_label() -> None:
    outcome = duties.change_severity(tracked(), IC, Severity.LOW, "  contained  ", ctx())
    inc = outcome.incident
    assert inc is not None and inc.version == 1
    assert (inc.severity, inc.severity_reason) == (Severity.LOW, "contained")
    assert outcome.events == ["severity:low"]
    assert thread(outcome) == [(
        "incident:7:thread:severity:v1",
        f"Severity changed from *medium* to *low* by <@{IC}>: contained",
    )]  # fmt: skip
    [entry] = outcome.timeline
    assert (entry.kind, entry.actor, entry.data) == (
        "severity_changed", IC, {"to": "low", "reason": "contained", "from": "medium"},
    )  # fmt: skip
    comment, labels = of(outcome, JobKind.GITHUB_COMMENT), of(outcome, JobKind.GITHUB_UPDATE)
    assert [(j.key, j.payload) for j in comment] == [(
        "incident:7:comment:severity_changed:v1", {
            "issue": "incident:7:tracking-issue",
            "body": describe(entry),
            "marker": f"incident-router:incident:7:comment:severity_changed:v1:{TS}",
        },
    )]  # fmt: skip
    assert [(j.key, j.payload) for j in labels] == [(
        "incident:7:labels:v1", {
            "issue": "incident:7:tracking-issue",
            "remove_labels": ["severity:medium"],
            "add_labels": ["severity:low"],
        },
    )]  # fmt: skip


@pytest.mark.rule("duty.classify-severity")
def test_a_severity_change_needs_a_reason_and_a_new_level() -> None:
    assert duties.change_severity(incident(), IC, Severity.HIGH, "  ", ctx()) == Outcome(
        refusal="Say why: `/incident severity <level> <reason>`."
    )
    same = duties.change_severity(incident(), IC, Severity.MEDIUM, "why", ctx())
    assert same == Outcome(refusal="INC-7 is already medium.")


@pytest.mark.rule("duty.tracking-issue")
def test_raising_severity_to_exactly_the_threshold_opens_the_tracking_issue() -> None:
    """``tracking_issue_at: high``: raising to high opens it, as declaring at high does."""
    outcome = duties.change_severity(incident(Severity.MEDIUM), IC, Severity.HIGH, "worse", ctx())
    [issue] = of(outcome, JobKind.GITHUB_ISSUE)
    assert issue.key == "incident:7:tracking-issue"
    assert outcome.incident is not None
    assert outcome.incident.tracking_issue_job == "incident:7:tracking-issue"
    assert outcome.events == ["severity:high", "tracking_issue"]
    assert outcome.timeline[-1].actor == "router"
    below = duties.change_severity(incident(Severity.LOW), IC, Severity.MEDIUM, "x", ctx())
    assert of(below, JobKind.GITHUB_ISSUE) == []
    never = make_policy(tracking_issue_at=None)
    off = duties.change_severity(incident(), IC, Severity.CRITICAL, "x", ctx(never))
    assert of(off, JobKind.GITHUB_ISSUE) == []
    closed = incident(Severity.LOW, status=IncidentStatus.CLOSED)
    late = duties.change_severity(closed, IC, Severity.HIGH, "found later", ctx())
    assert of(late, JobKind.GITHUB_ISSUE) == []  # no ongoing work after the end


@pytest.mark.rule("duty.tracking-issue")
def test_declaring_at_the_threshold_opens_the_issue_as_the_router() -> None:
    step = Outcome()
    duties.announce(incident(Severity.HIGH), IC, ctx(), step)
    assert [e.actor for e in step.timeline if e.kind == "tracking_issue"] == ["router"]


@pytest.mark.rule("duty.status-updates")
def test_a_severity_change_rearms_the_status_reminder_at_the_new_cadence() -> None:
    later = NOW + timedelta(minutes=5)
    outcome = duties.change_severity(incident(), IC, Severity.HIGH, "x", ctx(now=later))
    assert outcome.cancel_prefixes == ["incident:7:timer:status:"]
    assert timers(outcome) == [timer("status", later + timedelta(minutes=60))]


@pytest.mark.rule("duty.escalate-to-leadership")
def test_raising_to_critical_arms_the_escalation_prompt_only_while_active() -> None:
    active = duties.change_severity(incident(), IC, Severity.CRITICAL, "x", ctx())
    assert timer("escalation", NOW + timedelta(minutes=60)) in timers(active)
    mitigated = incident(status=IncidentStatus.MITIGATED)
    quiet = duties.change_severity(mitigated, IC, Severity.CRITICAL, "x", ctx())
    assert [t[0] for t in timers(quiet)] == [timer("status", NOW + timedelta(minutes=30))[0]]
    high = duties.change_severity(incident(), IC, Severity.HIGH, "x", ctx())
    assert "escalation" not in str(timers(high))


# -- roles and handoff ---------------------------------------------------------------------


@pytest.mark.rule("duty.appoint-roles")
def test_the_comms_lead_is_appointed_posted_and_recorded() -> None:
    outcome = duties.appoint_comms_lead(tracked(), IC, "U0C", ctx())
    assert outcome.incident is not None and outcome.incident.comms_lead == "U0C"
    assert outcome.events == ["comms_lead"]
    assert thread(outcome) == [(
        "incident:7:thread:comms:v1", f"<@U0C> is communications lead (appointed by <@{IC}>).",
    )]  # fmt: skip
    assert [(e.kind, e.data) for e in outcome.timeline] == [("comms_lead", {"user": "U0C"})]
    assert [j.key for j in of(outcome, JobKind.GITHUB_COMMENT)] == [
        "incident:7:comment:comms_lead:v1"
    ]


@pytest.mark.rule("duty.who-may-act")
@pytest.mark.parametrize("status", [IncidentStatus.RESOLVED, IncidentStatus.CLOSED])
def test_steps_of_an_open_incident_name_its_state_when_it_is_over(
    status: IncidentStatus,
) -> None:
    over = incident(status=status, handoff=Handoff(to=OTHER, offered_by=IC, offered_at=NOW))
    text = f"INC-7 is {status.value}; this needs an open incident."
    for step in (
        duties.appoint_comms_lead(over, IC, "U0C", ctx()),
        duties.offer_handoff(over, IC, OTHER, ctx()),
        duties.accept_handoff(over, OTHER, ctx()),
        duties.escalate(over, IC, "help", ctx()),
    ):
        assert step == Outcome(refusal=text)


@pytest.mark.rule("duty.handoff")
def test_a_handoff_offer_dms_the_new_commander_and_keeps_the_old_one() -> None:
    outcome = duties.offer_handoff(tracked(), IC, OTHER, ctx())
    inc = outcome.incident
    assert inc is not None and inc.commander == IC
    assert inc.handoff == Handoff(to=OTHER, offered_by=IC, offered_at=NOW)
    assert outcome.events == ["handoff_offered"]
    [dm] = of(outcome, JobKind.SLACK_DM)
    assert dm.key == "incident:7:handoff-offer:v1"
    assert set(dm.payload) == {"user", "role", "text", "blocks"}
    assert (dm.payload["user"], dm.payload["role"]) == (OTHER, "handoff")
    assert "INC-7" in dm.payload["text"]
    assert thread(outcome) == [(
        "incident:7:thread:handoff:v1",
        f"<@{IC}> offered the commander role to <@{OTHER}>; <@{IC}> stays commander until "
        "they accept.",
    )]  # fmt: skip
    assert [(e.kind, e.data) for e in outcome.timeline] == [("handoff_offered", {"to": OTHER})]
    assert outcome.reply == f"Offered INC-7 to <@{OTHER}>; you stay commander until they accept."
    assert [j.key for j in of(outcome, JobKind.GITHUB_COMMENT)] == [
        "incident:7:comment:handoff_offered:v1"
    ]


@pytest.mark.rule("duty.handoff")
def test_the_new_commander_accepts_and_the_thread_says_who_was_commander() -> None:
    offered = duties.offer_handoff(incident(), IC, OTHER, ctx()).incident
    assert offered is not None
    outcome = duties.accept_handoff(offered, OTHER, ctx())
    inc = outcome.incident
    assert inc is not None and (inc.commander, inc.handoff, inc.version) == (OTHER, None, 2)
    assert outcome.events == ["handoff_accepted"]
    assert thread(outcome) == [(
        "incident:7:thread:handoff-accepted:v2",
        f"<@{OTHER}> is now Incident Commander (was <@{IC}>).",
    )]  # fmt: skip
    assert [(e.kind, e.data) for e in outcome.timeline] == [
        ("handoff_accepted", {"to": OTHER, "from": IC})
    ]
    assert outcome.reply == "You are now Incident Commander of INC-7."


# -- escalation to leadership ----------------------------------------------------------------


@pytest.mark.rule("duty.escalate-to-leadership")
def test_escalation_dms_leadership_and_posts_in_the_channel() -> None:
    outcome = duties.escalate(tracked(), IC, "  need a decision  ", ctx())
    inc = outcome.incident
    assert inc is not None and inc.escalated and inc.escalated_at == NOW
    assert outcome.events == ["escalated_to_leadership"] and outcome.reply is None
    [dm] = of(outcome, JobKind.SLACK_DM)
    assert (dm.key, dm.payload) == ("incident:7:escalate-dm:v1", {
        "user": LEAD,
        "role": "leadership",
        "text": f"INC-7 (medium) was escalated to you by <@{IC}>: need a decision. "
        f"Commander: <@{IC}>.",
    })  # fmt: skip
    [post] = [j for j in of(outcome, JobKind.SLACK_POST) if "thread_of" not in j.payload]
    assert (post.key, post.payload) == ("incident:7:escalate-post:v1", {
        "channel": "C0INC",
        "text": f":arrow_double_up: INC-7 escalated to leadership (<@{LEAD}>) by <@{IC}>: "
        "need a decision",
    })  # fmt: skip
    assert [(e.kind, e.data) for e in outcome.timeline] == [
        ("escalated", {"to": LEAD, "note": "need a decision"})
    ]
    assert [j.key for j in of(outcome, JobKind.GITHUB_COMMENT)] == [
        "incident:7:comment:escalated:v1"
    ]


@pytest.mark.rule("duty.escalate-to-leadership")
def test_an_escalation_without_a_note_or_a_leader_still_says_why_and_is_posted() -> None:
    from router.core.oncall import OncallConfig, Schedule
    from tests.unit.test_duties import COMMS

    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    no_lead = Schedule(OncallConfig.model_validate({
        "rotations": {"eng-primary": {"members": [IC], **rotation}},
        "responders": [RESPONDER, COMMS]}))  # fmt: skip
    outcome = duties.escalate(incident(), IC, " ", ctx(with_policy(schedule=no_lead)))
    assert of(outcome, JobKind.SLACK_DM) == []
    [post] = of(outcome, JobKind.SLACK_POST)
    assert post.payload["text"] == (
        f":arrow_double_up: INC-7 escalated to leadership (nobody is on call for leadership) "
        f"by <@{IC}>: the response needs more support"
    )
    assert outcome.timeline[0].data == {"to": "", "note": "the response needs more support"}
    assert outcome.reply == (
        "Nobody is on call for leadership: the escalation was posted in the channel."
    )


@pytest.mark.rule("duty.escalate-to-leadership")
def test_a_second_escalation_within_ten_minutes_is_a_double_click() -> None:
    first = duties.escalate(incident(), IC, "help", ctx()).incident
    assert first is not None
    nine = duties.escalate(first, IC, "again", ctx(now=NOW + timedelta(minutes=9, seconds=59)))
    assert nine == Outcome(refusal="Leadership was brought into INC-7 9 min ago.")
    ten = duties.escalate(first, IC, "again", ctx(now=NOW + timedelta(minutes=10)))
    assert ten.refusal is None and ten.incident is not None


# -- vendors, updates, flags ------------------------------------------------------------------


@pytest.mark.rule("duty.contact-vendors")
def test_a_vendor_contact_is_posted_with_its_details_and_recorded_once() -> None:
    vendors = {
        "AWS": VendorConfig(contact="Enterprise support +1 555", url="https://aws/support",
                            notes="account 42"),
        "Fastly": VendorConfig(contact="support@fastly"),
    }  # fmt: skip
    policy = with_policy(incident=IncidentConfig(vendors=vendors))
    outcome = duties.contact_vendor(tracked(), IC, " aws ", ctx(policy))
    inc = outcome.incident
    assert inc is not None and inc.vendors == ["AWS"] and outcome.events == ["vendor"]
    details = "Enterprise support +1 555 — https://aws/support (account 42)"
    assert thread(outcome) == [(
        "incident:7:thread:vendor:AWS:v1", f"Vendor *AWS* contacted by <@{IC}>. Contact: {details}",
    )]  # fmt: skip
    assert outcome.reply == f"Recorded contact with AWS. Contact details: {details}"
    assert [(e.kind, e.data) for e in outcome.timeline] == [("vendor_contacted", {"vendor": "AWS"})]
    again = duties.contact_vendor(inc, IC, "AWS", ctx(policy)).incident
    assert again is not None and again.vendors == ["AWS"]
    bare = duties.contact_vendor(incident(), IC, "fastly", ctx(policy))
    assert bare.reply == "Recorded contact with Fastly. Contact details: support@fastly"
    unknown = duties.contact_vendor(incident(), IC, " Acme ", ctx(policy))
    assert unknown == Outcome(refusal="Unknown vendor 'Acme'. Known vendors: AWS, Fastly.")
    none = with_policy(incident=IncidentConfig())
    assert duties.contact_vendor(incident(), IC, "AWS", ctx(none)).refusal == (
        "Unknown vendor 'AWS'. Known vendors: none configured (incident.vendors)."
    )
    closed = incident(status=IncidentStatus.CLOSED)
    assert duties.contact_vendor(closed, IC, "AWS", ctx(policy)) == Outcome(
        refusal="INC-7 is closed."
    )
    resolved = incident(status=IncidentStatus.RESOLVED)
    assert duties.contact_vendor(resolved, IC, "AWS", ctx(policy)).refusal is None


@pytest.mark.rule("duty.status-updates")
def test_a_status_update_is_posted_recorded_and_the_next_reminder_counts_from_it() -> None:
    later = NOW + timedelta(minutes=20)
    outcome = duties.status_update(tracked(Severity.HIGH), IC, "  rolling back  ", ctx(now=later))
    inc = outcome.incident
    assert inc is not None and inc.last_update_at == later and outcome.events == ["status_update"]
    assert thread(outcome) == [
        ("incident:7:thread:update:v1", f":memo: Update from <@{IC}>: rolling back")
    ]
    assert [(e.kind, e.data) for e in outcome.timeline] == [
        ("status_update", {"text": "rolling back"})
    ]
    assert outcome.cancel_prefixes == ["incident:7:timer:status:"]
    assert timers(outcome) == [timer("status", later + timedelta(minutes=60))]
    assert duties.status_update(incident(), IC, " ", ctx()) == Outcome(
        refusal="Write the update: `/incident update <text>`."
    )
    closed = incident(status=IncidentStatus.CLOSED)
    assert duties.status_update(closed, IC, "x", ctx()) == Outcome(refusal="INC-7 is closed.")
    resolved = duties.status_update(incident(status=IncidentStatus.RESOLVED), IC, "x", ctx())
    assert resolved.incident is not None and timers(resolved) == []  # no reminders after


@pytest.mark.rule("duty.flags")
def test_a_flag_is_posted_and_recorded_and_data_loss_points_to_bcp_dr() -> None:
    outcome = duties.flag(tracked(), IC, Flag.DATA_LOSS, ctx())
    inc = outcome.incident
    assert inc is not None and inc.flags == [Flag.DATA_LOSS] and outcome.events == ["flagged"]
    assert thread(outcome) == [
        ("incident:7:thread:flag:data-loss:v1", f"Flagged *data-loss* by <@{IC}>."),
        ("incident:7:thread:bcp:v1",
         "Data or processes were disrupted: recovery follows the BCP/DR policy: https://wiki/bcp"),
    ]  # fmt: skip
    assert [(e.kind, e.data) for e in outcome.timeline] == [("flagged", {"flag": "data-loss"})]
    outage = duties.flag(incident(), IC, Flag.OUTAGE, ctx())
    assert [k for k, _ in thread(outage)] == ["incident:7:thread:flag:outage:v1"]
    no_bcp = with_policy(incident=IncidentConfig())
    quiet = duties.flag(incident(), IC, Flag.DATA_LOSS, ctx(no_bcp))
    assert [k for k, _ in thread(quiet)] == ["incident:7:thread:flag:data-loss:v1"]
    assert duties.flag(inc, IC, Flag.DATA_LOSS, ctx()) == Outcome(
        refusal="INC-7 is already flagged data-loss."
    )


@pytest.mark.rule("duty.flags")
@pytest.mark.parametrize("status", [IncidentStatus.ACTIVE, IncidentStatus.MITIGATED,
                                    IncidentStatus.RESOLVED])  # fmt: skip
def test_customers_can_be_flagged_until_the_incident_is_closed(status: IncidentStatus) -> None:
    outcome = duties.flag(incident(status=status), IC, Flag.CUSTOMERS, ctx())
    assert outcome.refusal is None and outcome.incident is not None
    assert outcome.incident.flags == [Flag.CUSTOMERS]
    closed = duties.flag(incident(status=IncidentStatus.CLOSED), IC, Flag.CUSTOMERS, ctx())
    assert closed == Outcome(refusal="INC-7 is closed.")


# -- tracking issue ----------------------------------------------------------------------------


@pytest.mark.rule("duty.tracking-issue")
def test_the_tracking_issue_on_request_and_its_link_in_the_thread() -> None:
    outcome = duties.open_tracking_issue(incident(Severity.LOW), RESPONDER, ctx())
    inc = outcome.incident
    assert inc is not None and inc.tracking_issue_job == "incident:7:tracking-issue"
    assert outcome.events == ["tracking_issue"]
    assert outcome.reply == "Opening the tracking issue; its link will be posted in the thread."
    [issue] = of(outcome, JobKind.GITHUB_ISSUE)
    assert issue.key == "incident:7:tracking-issue"
    assert set(issue.payload) == {"title", "body", "labels", "marker"}
    assert "INC-7" in issue.payload["title"] and "Checkout errors" in issue.payload["title"]
    assert issue.payload["labels"] == ["incident", "severity:low"]
    link = next(j for j in of(outcome, JobKind.SLACK_POST) if "fill_from" in j.payload)
    assert (link.key, link.payload) == ("incident:7:tracking-issue:link", {
        "channel": None, "thread_of": "incident:7:announce",
        "fill_from": "incident:7:tracking-issue", "text": "Tracking issue: {html_url}",
    })  # fmt: skip
    [entry] = outcome.timeline
    assert (entry.at, entry.actor, entry.kind) == (NOW, RESPONDER, "tracking_issue")
    assert duties.open_tracking_issue(inc, IC, ctx()) == Outcome(
        refusal="INC-7 already has a tracking issue."
    )
    no_github = make_policy(github=False)
    assert duties.open_tracking_issue(incident(), IC, ctx(no_github)) == Outcome(
        refusal="GitHub is not configured (github.repo and GITHUB_TOKEN)."
    )


@pytest.mark.rule("duty.tracking-issue")
def test_every_step_is_mirrored_to_the_issue_and_edits_the_announcement() -> None:
    outcome = duties.mitigate(tracked(), IC, ctx())
    [edit] = of(outcome, JobKind.SLACK_UPDATE)
    assert edit.key == "incident:7:announce-update:v1"
    assert set(edit.payload) == {"target", "seq", "text", "blocks"}
    assert (edit.payload["target"], edit.payload["seq"]) == ("incident:7:announce", 1)
    assert "INC-7" in edit.payload["text"]
    no_channel = with_policy(incident_channel=None)
    assert of(duties.mitigate(tracked(), IC, ctx(no_channel)), JobKind.SLACK_UPDATE) == []
    untracked = duties.mitigate(incident(), IC, ctx())
    assert of(untracked, JobKind.GITHUB_COMMENT) == []


# -- the end --------------------------------------------------------------------------------


@pytest.mark.rule("duty.mitigate")
def test_mitigated_is_posted_and_ends_the_escalation_prompt() -> None:
    later = NOW + timedelta(minutes=12)
    outcome = duties.mitigate(tracked(), IC, ctx(now=later))
    inc = outcome.incident
    assert inc is not None and (inc.status, inc.mitigated_at) == (IncidentStatus.MITIGATED, later)
    assert outcome.events == ["mitigated"]
    assert outcome.cancel_prefixes == ["incident:7:timer:escalation:"]
    assert thread(outcome) == [
        ("incident:7:thread:mitigated:v1", f":large_yellow_circle: Mitigated, says <@{IC}>.")
    ]
    assert [e.kind for e in outcome.timeline] == ["mitigated"]
    again = duties.mitigate(inc, IC, ctx())
    assert again == Outcome(refusal="INC-7 is mitigated, not active.")


@pytest.mark.rule("duty.resolve")
def test_resolving_tells_every_destination_and_stops_every_reminder() -> None:
    offered = tracked(handoff=Handoff(to=OTHER, offered_by=IC, offered_at=NOW))
    later = NOW + timedelta(hours=1)
    outcome = duties.resolve(offered, IC, "  rolled back  ", ctx(now=later))
    inc = outcome.incident
    assert inc is not None
    assert (inc.status, inc.resolved_at, inc.mitigated_at, inc.closed_at) == (
        IncidentStatus.CLOSED, later, later, later,
    )  # fmt: skip
    assert (inc.resolution, inc.handoff) == ("rolled back", None)
    assert outcome.events == ["resolved"]
    assert outcome.cancel_prefixes == [
        "incident:7:timer:status:", "incident:7:timer:escalation:", "incident:7:timer:handoff:",
    ]  # fmt: skip
    notice = f":white_check_mark: *INC-7 resolved* (Checkout errors), by <@{IC}>: rolled back"
    [channel] = [j for j in of(outcome, JobKind.SLACK_POST) if "thread_of" not in j.payload]
    assert (channel.key, channel.payload) == (
        "incident:7:resolved-notice:v1", {"channel": "C0INC", "text": notice},
    )  # fmt: skip
    assert thread(outcome) == [("incident:7:thread:resolved:v1", notice)]
    assert [(e.kind, e.data) for e in outcome.timeline] == [
        ("resolved", {"summary": "rolled back"})
    ]
    close = [j for j in of(outcome, JobKind.GITHUB_UPDATE)]
    assert [(j.key, j.payload) for j in close] == [("incident:7:close-tracking:v1", {
        "issue": "incident:7:tracking-issue", "state": "closed", "state_reason": "completed",
    })]  # fmt: skip
    assert [j.key for j in of(outcome, JobKind.GITHUB_COMMENT)] == [
        "incident:7:comment:resolved:v1"
    ]


@pytest.mark.rule("duty.resolve")
def test_resolving_keeps_an_earlier_mitigation_time_and_needs_a_summary() -> None:
    mitigated = duties.mitigate(incident(), IC, ctx()).incident
    assert mitigated is not None
    later = NOW + timedelta(hours=2)
    outcome = duties.resolve(mitigated, IC, "done", ctx(now=later))
    assert outcome.incident is not None and outcome.incident.mitigated_at == NOW
    assert duties.resolve(incident(), IC, "  ", ctx()) == Outcome(
        refusal="Summarise the resolution: `/incident resolve <summary>`."
    )
    closed = incident(status=IncidentStatus.CLOSED)
    assert duties.resolve(closed, IC, "x", ctx()) == Outcome(refusal="INC-7 is already closed.")
    no_channel = duties.resolve(incident(), IC, "done", ctx(with_policy(incident_channel=None)))
    assert [j.key for j in of(no_channel, JobKind.SLACK_POST)] == ["incident:7:thread:resolved:v1"]


@pytest.mark.rule("duty.resolve")
def test_resolving_with_customers_affected_asks_the_commander_to_tell_them() -> None:
    outcome = duties.resolve(incident(flags=[Flag.CUSTOMERS]), IC, "done", ctx())
    assert (
        "incident:7:thread:customers:v1",
        f"<@{IC}>: customers were affected. Decide on customer communication (public "
        "communication is optional) and tell the affected customers it is resolved.",
    ) in thread(outcome)


@pytest.mark.rule("duty.resolve")
def test_resolving_a_paged_incident_resolves_its_pagerduty_alert_only_with_pagerduty() -> None:
    paged = incident(page_key="p1")
    with_pd = ctx(with_policy(pagerduty=True))
    [pd] = of(duties.resolve(paged, IC, "done", with_pd), JobKind.PAGERDUTY_EVENT)
    assert (pd.key, pd.payload) == (
        "incident:7:pd-resolve:v1", {"event_action": "resolve", "dedup_key": "router:p1"},
    )  # fmt: skip
    assert of(duties.resolve(incident(), IC, "done", with_pd), JobKind.PAGERDUTY_EVENT) == []
    without = ctx(with_policy(pagerduty=False))
    assert of(duties.resolve(paged, IC, "done", without), JobKind.PAGERDUTY_EVENT) == []


@pytest.mark.rule("duty.postmortem")
def test_an_outage_owes_a_post_mortem_issue_and_stays_resolved_until_it_is_done() -> None:
    outcome = duties.resolve(incident(Severity.CRITICAL), IC, "done", ctx())
    inc = outcome.incident
    assert inc is not None and inc.postmortem_owed
    assert (inc.status, inc.closed_at) == (IncidentStatus.RESOLVED, None)
    assert inc.postmortem_job == "incident:7:postmortem"
    assert outcome.events == ["resolved", "postmortem_owed"]
    [issue] = of(outcome, JobKind.GITHUB_ISSUE)
    assert issue.key == "incident:7:postmortem" and "Post-mortem" in issue.payload["title"]
    assert issue.payload["marker"] == f"incident-router:incident:7:postmortem:{TS}"
    link = next(j for j in of(outcome, JobKind.SLACK_POST) if "fill_from" in j.payload)
    assert link.payload["text"] == "Post-mortem: {html_url}"
    assert (
        "incident:7:thread:postmortem:v1",
        f"<@{IC}>: a post-mortem is owed (production outage or data loss). "
        "The post-mortem issue is being opened with the timeline.",
    ) in thread(outcome)
    assert timers(outcome) == [timer("postmortem", NOW + timedelta(minutes=60))]


@pytest.mark.rule("duty.postmortem")
def test_without_github_the_post_mortem_is_owed_and_done_by_command() -> None:
    policy = make_policy(github=False)
    outcome = duties.resolve(incident(Severity.CRITICAL), IC, "done", ctx(policy))
    inc = outcome.incident
    assert inc is not None and inc.postmortem_owed and inc.postmortem_job is None
    assert of(outcome, JobKind.GITHUB_ISSUE) == [] and timers(outcome) == []
    assert (
        "incident:7:thread:postmortem:v1",
        f"<@{IC}>: a post-mortem is owed (production outage or data loss). GitHub is not "
        "configured: write it where your team keeps them, then `/incident postmortem done`.",
    ) in thread(outcome)
    later = NOW + timedelta(days=2)
    done = duties.postmortem_done(inc, RESPONDER, ctx(policy, now=later))
    closed = done.incident
    assert closed is not None and not closed.postmortem_owed
    assert (closed.status, closed.closed_at) == (IncidentStatus.CLOSED, later)
    assert done.events == ["postmortem_done"]
    assert thread(done) == [(
        f"incident:7:thread:closed:v{closed.version}",
        f"Post-mortem done (<@{RESPONDER}>); INC-7 is closed.",
    )]  # fmt: skip
    assert [e.kind for e in done.timeline] == ["postmortem_done"]
    assert of(done, JobKind.GITHUB_UPDATE) == []  # no issue to close


@pytest.mark.rule("duty.postmortem")
def test_post_mortem_done_closes_its_issue_and_a_closed_issue_closes_the_incident() -> None:
    owed = duties.resolve(incident(Severity.CRITICAL), IC, "done", ctx()).incident
    assert owed is not None
    done = duties.postmortem_done(owed, IC, ctx())
    assert done.incident is not None
    v = done.incident.version
    assert [(j.key, j.payload) for j in of(done, JobKind.GITHUB_UPDATE)] == [(
        f"incident:7:close-postmortem:v{v}", {
            "issue": "incident:7:postmortem", "state": "closed", "state_reason": "completed",
        },
    )]  # fmt: skip
    closed = duties.postmortem_issue_state(owed, "closed", ctx())
    assert closed.incident is not None and closed.incident.status is IncidentStatus.CLOSED
    assert thread(closed) == [(
        f"incident:7:thread:closed:v{closed.incident.version}",
        "The post-mortem issue was closed; INC-7 is closed.",
    )]  # fmt: skip
    assert closed.timeline[0].actor == "router"
    assert duties.postmortem_issue_state(owed, "open", ctx()) == Outcome()
    assert duties.postmortem_done(incident(), IC, ctx()) == Outcome(
        refusal="INC-7 owes no post-mortem."
    )


@pytest.mark.rule("duty.postmortem")
def test_a_late_change_owes_the_post_mortem_once() -> None:
    closed = duties.resolve(incident(Severity.LOW), IC, "done", ctx()).incident
    assert closed is not None and closed.status is IncidentStatus.CLOSED
    raised = duties.change_severity(closed, IC, Severity.CRITICAL, "it was worse", ctx())
    inc = raised.incident
    assert inc is not None and inc.postmortem_owed and inc.status is IncidentStatus.RESOLVED
    assert "postmortem_owed" in raised.events and timers(raised)[-1][1]["event"] == (
        "incident_postmortem"
    )
    assert raised.cancel_prefixes == []  # no reminders re-armed after the end
    again = duties.flag(inc, IC, Flag.OUTAGE, ctx())
    assert "postmortem_owed" not in again.events and of(again, JobKind.GITHUB_ISSUE) == []


# -- reminders --------------------------------------------------------------------------------


@pytest.mark.rule("duty.status-updates")
def test_the_status_reminder_asks_the_commander_and_rearms() -> None:
    later = NOW + timedelta(minutes=30)
    outcome = duties.reminder_due(incident(Severity.CRITICAL), "status", ctx(now=later))
    assert outcome.events == ["reminder:status"]
    assert thread(outcome) == [(
        "incident:7:thread:remind-status:v1",
        f"<@{IC}>: time for a status update on INC-7 (`/incident update <text>`).",
    )]  # fmt: skip
    assert timers(outcome) == [timer("status", later + timedelta(minutes=30))]
    low = duties.reminder_due(incident(Severity.LOW), "status", ctx())
    assert timers(low) == []  # low: no reminders
    resolved = incident(status=IncidentStatus.RESOLVED)
    assert duties.reminder_due(resolved, "status", ctx()) == Outcome()
    assert duties.reminder_due(incident(), "unknown", ctx()) == Outcome()


@pytest.mark.rule("duty.escalate-to-leadership")
def test_the_escalation_prompt_asks_only_while_critical_active_and_not_escalated() -> None:
    outcome = duties.reminder_due(incident(Severity.CRITICAL), "escalation", ctx())
    assert outcome.events == ["reminder:escalation"]
    assert thread(outcome) == [(
        "incident:7:thread:remind-escalate:v1",
        f"<@{IC}>: INC-7 is critical and not mitigated yet. If the response is insufficient, "
        "escalate to leadership: `/incident escalate <note>`.",
    )]  # fmt: skip
    for quiet in (
        incident(Severity.CRITICAL, status=IncidentStatus.MITIGATED),
        incident(Severity.CRITICAL, escalated=True),
        incident(Severity.HIGH),
    ):
        assert duties.reminder_due(quiet, "escalation", ctx()) == Outcome()


@pytest.mark.rule("duty.handoff")
def test_the_end_of_day_prompt_dms_the_commander_and_arms_the_next_one() -> None:
    evening = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    outcome = duties.reminder_due(incident(), "handoff", ctx(now=evening))
    assert outcome.events == ["reminder:handoff"]
    [dm] = of(outcome, JobKind.SLACK_DM)
    assert (dm.key, dm.payload) == ("incident:7:remind-handoff:v1", {
        "user": IC, "role": "reminder",
        "text": "The working day is ending and INC-7 is still open. Hand it off if you are "
        "leaving: `/incident handoff @someone`.",
    })  # fmt: skip
    assert timers(outcome) == [timer("handoff", datetime(2026, 3, 3, 18, 0, tzinfo=UTC))]
    # a timer that fires a little late still arms the next day's, not today's again
    late = duties.reminder_due(incident(), "handoff", ctx(now=evening + timedelta(seconds=30)))
    assert timers(late) == [timer("handoff", datetime(2026, 3, 3, 18, 0, tzinfo=UTC))]
    none = with_policy(incident=IncidentConfig(work_hours=None))
    assert timers(duties.reminder_due(incident(), "handoff", ctx(none))) == []


@pytest.mark.rule("duty.postmortem")
def test_the_post_mortem_check_reads_its_issue_state_and_looks_again() -> None:
    owed = duties.resolve(incident(Severity.CRITICAL), IC, "done", ctx()).incident
    assert owed is not None
    later = NOW + timedelta(hours=1)
    outcome = duties.reminder_due(owed, "postmortem", ctx(now=later))
    read, again = outcome.jobs
    assert (read.kind, read.key) == (
        JobKind.GITHUB_UPDATE, f"incident:7:postmortem:state:{later.timestamp():.0f}",
    )  # fmt: skip
    assert read.payload == {
        "issue": "incident:7:postmortem", "read_state": True,
        "on_result": "postmortem_state", "incident": 7,
    }  # fmt: skip
    assert (again.key, again.payload, again.due_at) == timer(
        "postmortem", later + timedelta(minutes=60)
    )
    off = with_policy(incident=IncidentConfig(postmortem_check_minutes=0))
    assert duties.reminder_due(owed, "postmortem", ctx(off, now=later)).jobs == [read]
    assert duties.reminder_due(incident(), "postmortem", ctx()) == Outcome()


@pytest.mark.rule("duty.status-updates")
def test_declaring_arms_status_escalation_and_handoff_timers_by_severity() -> None:
    step = Outcome()
    duties.announce(incident(Severity.CRITICAL), IC, ctx(), step)
    assert timers(step) == [
        timer("status", NOW + timedelta(minutes=30)),
        timer("escalation", NOW + timedelta(minutes=60)),
        timer("handoff", datetime(2026, 3, 2, 18, 0, tzinfo=UTC)),
    ]
    no_prompt = with_policy(incident=IncidentConfig(escalate_critical_after_minutes=0,
                                                    work_hours=None))  # fmt: skip
    quiet = Outcome()
    duties.announce(incident(Severity.CRITICAL), IC, ctx(no_prompt), quiet)
    assert [t[1]["event"] for t in timers(quiet)] == ["incident_status"]


@pytest.mark.rule("duty.handoff")
def test_the_end_of_the_working_day_is_local_and_strictly_after_now() -> None:
    berlin = with_policy(incident=IncidentConfig(work_hours=WorkHoursConfig(
        timezone="Europe/Berlin", end="17:30", days=("mon", "wed"))))  # fmt: skip
    c = ctx(berlin)
    monday_end = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 17:30 CET
    assert duties.end_of_work_day(NOW, c) == monday_end
    assert duties.end_of_work_day(NOW, c).tzinfo is UTC  # type: ignore[union-attr]
    # exactly at the end it is the next working day's (Wednesday: Tuesday is off)
    assert duties.end_of_work_day(monday_end, c) == datetime(2026, 3, 4, 16, 30, tzinfo=UTC)
    every = with_policy(incident=IncidentConfig(work_hours=WorkHoursConfig(
        days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"))))  # fmt: skip
    assert duties.end_of_work_day(datetime(2026, 3, 4, 19, 0, tzinfo=UTC), ctx(every)) == (
        datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
    )
    # a working day a week ahead is still found
    sunday = with_policy(incident=IncidentConfig(work_hours=WorkHoursConfig(days=("mon",))))
    assert duties.end_of_work_day(datetime(2026, 3, 2, 18, 0, tzinfo=UTC), ctx(sunday)) == (
        datetime(2026, 3, 9, 18, 0, tzinfo=UTC)
    )
    nodays = with_policy(incident=IncidentConfig(work_hours=WorkHoursConfig(days=())))
    assert duties.end_of_work_day(NOW, ctx(nodays)) is None


@pytest.mark.rule("duty.status-updates")
def test_the_timeline_shows_its_newest_fifty_entries_escaped_and_changes_nothing() -> None:
    from router.core.incident import TimelineEntry

    entries = [
        TimelineEntry(at=NOW + timedelta(minutes=i), actor=IC, kind="status_update",
                      data={"text": f"entry-{i:02d} <b>"})
        for i in range(55)
    ]  # fmt: skip
    shown = duties.show_timeline(
        incident(title="Checkout <errors> & more"), duties.Context(NOW, POLICY, timeline=entries)
    )
    assert (shown.jobs, shown.incident, shown.events, shown.timeline) == ([], None, [], [])
    assert shown.reply is not None
    head, earlier, *lines = shown.reply.split("\n")
    assert head == "*INC-7: Checkout &lt;errors&gt; &amp; more*, timeline"
    assert earlier == "- …5 earlier entries (all of them go in the post-mortem)"
    assert len(lines) == 50
    assert "entry-05 &lt;b&gt;" in lines[0] and "entry-54 &lt;b&gt;" in lines[-1]
    empty = duties.show_timeline(incident(), ctx())
    assert empty.reply == "*INC-7: Checkout errors*, timeline\n- (nothing recorded yet)"


# -- what the survivors of mutation testing showed unpinned ------------------------------


@pytest.mark.rule("duty.flags")
def test_a_step_changes_a_copy_never_the_incident_it_was_given() -> None:
    given = incident()
    flagged = duties.flag(given, IC, Flag.OUTAGE, ctx()).incident
    contacted = duties.contact_vendor(given, IC, "AWS", ctx()).incident
    assert flagged is not None and flagged.flags == [Flag.OUTAGE]
    assert contacted is not None and contacted.vendors == ["AWS"]
    assert (given.flags, given.vendors, given.version) == ([], [], 0)


@pytest.mark.rule("duty.status-updates")
def test_a_one_minute_cadence_still_reminds_and_a_severity_left_out_does_not() -> None:
    every_minute = with_policy(incident=IncidentConfig(
        status_update_minutes={Severity.CRITICAL: 1}, escalate_critical_after_minutes=1,
        postmortem_check_minutes=1, work_hours=None))  # fmt: skip
    step = Outcome()
    duties.announce(incident(Severity.CRITICAL), IC, ctx(every_minute), step)
    assert timers(step) == [
        timer("status", NOW + timedelta(minutes=1)),
        timer("escalation", NOW + timedelta(minutes=1)),
    ]
    high = Outcome()
    duties.announce(incident(Severity.HIGH), IC, ctx(every_minute), high)
    assert timers(high) == []  # HIGH is not in the cadence: no reminders
    owed = duties.resolve(incident(Severity.CRITICAL), IC, "done", ctx(every_minute))
    assert timer("postmortem", NOW + timedelta(minutes=1)) in timers(owed)


@pytest.mark.rule("duty.postmortem")
def test_a_resolution_owing_a_post_mortem_still_tells_everyone_it_is_resolved() -> None:
    outcome = duties.resolve(tracked(Severity.CRITICAL), IC, "done", ctx())
    keys = [j.key for j in outcome.jobs]
    assert "incident:7:resolved-notice:v1" in keys and "incident:7:thread:resolved:v1" in keys
    assert "incident:7:close-tracking:v1" in keys and "incident:7:postmortem" in keys
    [issue] = of(outcome, JobKind.GITHUB_ISSUE)
    assert issue.payload["labels"] and all(isinstance(x, str) for x in issue.payload["labels"])
    done = duties.postmortem_done(outcome.incident, IC, ctx())  # type: ignore[arg-type]
    assert done.incident is not None and done.incident.postmortem_owed is False


@pytest.mark.rule("duty.who-may-act")
def test_thread_posts_carry_no_channel_of_their_own() -> None:
    for job_ in of(duties.mitigate(incident(), IC, ctx()), JobKind.SLACK_POST):
        assert_thread_job(job_)


@pytest.mark.rule("duty.escalate-to-leadership")
def test_the_double_click_refusal_counts_whole_minutes() -> None:
    first = duties.escalate(incident(), IC, "help", ctx()).incident
    assert first is not None
    five = duties.escalate(first, IC, "again", ctx(now=NOW + timedelta(minutes=5)))
    assert five.refusal == "Leadership was brought into INC-7 5 min ago."


@pytest.mark.rule("duty.handoff")
@pytest.mark.parametrize("day", ["fri", "sat", "sun"])
def test_each_named_day_can_be_a_working_day(day: str) -> None:
    policy = with_policy(incident=IncidentConfig(work_hours=WorkHoursConfig(days=(day,))))
    end = duties.end_of_work_day(NOW, ctx(policy))  # NOW: Monday 2 March 2026
    expected = {"fri": 6, "sat": 7, "sun": 8}[day]
    assert end == datetime(2026, 3, expected, 18, 0, tzinfo=UTC)


@pytest.mark.rule("duty.handoff")
def test_the_working_day_is_the_local_one_even_a_week_ahead() -> None:
    """Auckland (UTC+13 in March): Monday 11:00 there is Sunday 22:00 UTC. With Monday
    the only working day and its end passed, the next end is next Monday's."""
    auckland = with_policy(incident=IncidentConfig(work_hours=WorkHoursConfig(
        timezone="Pacific/Auckland", end="10:00", days=("mon",))))  # fmt: skip
    now = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
    assert duties.end_of_work_day(now, ctx(auckland)) == datetime(2026, 3, 8, 21, 0, tzinfo=UTC)
