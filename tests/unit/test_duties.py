"""The Incident Commander's duties as pure steps (policy: "After declaration")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from router.core import duties
from router.core.duties import Context
from router.core.incident import Flag, Incident, IncidentStatus
from router.core.jobs import JobKind
from router.core.oncall import OncallConfig, Schedule
from router.core.page import PageAlerts
from router.core.policy import Outcome, Policy
from router.core.policy_config import IncidentConfig, PagingConfig, VendorConfig
from router.core.severity import DEFAULT_RULES, Severity, suggest

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
IC, OTHER, COMMS, LEAD, RESPONDER, STRANGER = "U0IC", "U0OTHER", "U0COMMS", "U0LEAD", "U0R", "U0X"


def make_policy(github: bool = True, **incident: object) -> Policy:
    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    oncall = OncallConfig.model_validate({
        "rotations": {"eng-primary": {"members": [IC], **rotation},
                      "eng-secondary": {"members": [OTHER], **rotation},
                      "leadership": {"members": [LEAD], **rotation}},
        "responders": [RESPONDER, COMMS]})  # fmt: skip
    config = IncidentConfig.model_validate(
        {"vendors": {"AWS": {"contact": "Enterprise support +1 555", "url": "https://aws/support"}},
         "bcp_dr_url": "https://wiki/bcp", **incident})  # fmt: skip
    return Policy(
        schedule=Schedule(oncall),
        paging=PagingConfig(),
        severity=DEFAULT_RULES,
        responders=frozenset(oncall.responders),
        incident_channel="C0INC",
        github=github,
        incident=config,
    )


POLICY = make_policy()


def ctx(policy: Policy = POLICY, now: datetime = NOW) -> Context:
    return Context(now, policy)


def declared(severity: Severity = Severity.HIGH, policy: Policy = POLICY) -> Incident:
    outcome = duties.declare(7, "Checkout errors", IC, ctx(policy), suggest([], DEFAULT_RULES))
    assert outcome.incident is not None
    return outcome.incident.model_copy(update={"severity": severity})


def kinds(outcome: Outcome) -> list[JobKind]:
    return [job.kind for job in outcome.jobs]


def thread_texts(outcome: Outcome) -> str:
    return " ".join(str(j.payload.get("text")) for j in outcome.jobs if j.payload.get("thread_of"))


# -- declaring -----------------------------------------------------------------


def test_a_person_declares_and_is_commander_with_announcement() -> None:
    outcome = duties.declare(3, "Payments down", RESPONDER, ctx(), suggest([], DEFAULT_RULES))
    incident = outcome.incident
    assert incident is not None and outcome.new_incident
    assert (incident.ref, incident.commander, incident.status) == (
        "INC-3", RESPONDER, IncidentStatus.ACTIVE,
    )  # fmt: skip
    announce = next(j for j in outcome.jobs if j.key == "incident:3:announce")
    assert announce.payload["channel"] == "C0INC" and "INC-3" in announce.payload["text"]
    assert [e.kind for e in outcome.timeline] == ["declared"]


def test_tracking_issue_opens_automatically_at_or_above_the_threshold() -> None:
    high = duties.Outcome()
    duties.announce(declared(Severity.HIGH), IC, ctx(), high)
    low = duties.Outcome()
    duties.announce(declared(Severity.LOW), IC, ctx(), low)
    issue = next(j for j in high.jobs if j.kind is JobKind.GITHUB_ISSUE)
    assert issue.payload["labels"] == ["incident", "severity:high"]
    assert "Commander's checklist" in issue.payload["body"]
    assert "BCP/DR policy" in issue.payload["body"]
    # unique to this incident, not just its number (a new store counts from 1 again)
    assert (
        issue.payload["marker"]
        == f"incident-router:incident:7:tracking-issue:{NOW.timestamp():.0f}"
    )
    assert JobKind.GITHUB_ISSUE not in kinds(low)


def test_no_tracking_issue_without_github() -> None:
    outcome = duties.Outcome()
    duties.announce(declared(Severity.CRITICAL), IC, ctx(make_policy(github=False)), outcome)
    assert JobKind.GITHUB_ISSUE not in kinds(outcome)


def test_declaration_arms_the_reminders() -> None:
    outcome = duties.Outcome()
    duties.announce(declared(Severity.CRITICAL), IC, ctx(), outcome)
    timers = {j.payload["event"]: j.due_at for j in outcome.jobs if j.kind is JobKind.TIMER}
    assert timers["incident_status"] == NOW + timedelta(minutes=30)
    assert timers["incident_escalation"] == NOW + timedelta(minutes=60)
    assert timers["incident_handoff"] == datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def test_end_of_work_day_skips_weekends() -> None:
    friday_evening = datetime(2026, 3, 6, 19, 0, tzinfo=UTC)
    end = duties.end_of_work_day(friday_evening, ctx(now=friday_evening))
    assert end == datetime(2026, 3, 9, 18, 0, tzinfo=UTC)  # Monday


# -- severity, roles, handoff --------------------------------------------------


def test_severity_change_needs_a_reason_and_is_recorded() -> None:
    incident = declared(Severity.MEDIUM)
    refused = duties.change_severity(incident, IC, Severity.CRITICAL, "  ", ctx())
    assert refused.refusal is not None and refused.incident is None
    outcome = duties.change_severity(incident, IC, Severity.CRITICAL, "EU checkout down", ctx())
    assert outcome.incident is not None
    assert outcome.incident.severity is Severity.CRITICAL
    assert outcome.incident.severity_reason == "EU checkout down"
    entry = outcome.timeline[0]
    assert (entry.kind, entry.data) == (
        "severity_changed", {"from": "medium", "to": "critical", "reason": "EU checkout down"},
    )  # fmt: skip
    assert "from *medium* to *critical*" in thread_texts(outcome)
    # crossing the threshold opens the tracking issue now
    assert JobKind.GITHUB_ISSUE in kinds(outcome)


def test_severity_change_with_a_tracking_issue_relabels_it_and_comments() -> None:
    incident = declared().model_copy(update={"tracking_issue_job": "incident:7:tracking-issue"})
    outcome = duties.change_severity(incident, IC, Severity.CRITICAL, "worse", ctx())
    update = next(j for j in outcome.jobs if j.kind is JobKind.GITHUB_UPDATE)
    # only the severity label is swapped; labels people added stay
    assert update.payload["remove_labels"] == ["severity:high"]
    assert update.payload["add_labels"] == ["severity:critical"]
    assert "labels" not in update.payload
    comment = next(j for j in outcome.jobs if j.kind is JobKind.GITHUB_COMMENT)
    assert comment.payload["issue"] == "incident:7:tracking-issue"
    assert "severity high -> critical: worse" in comment.payload["body"]


def test_the_announcement_is_edited_to_show_the_new_state() -> None:
    outcome = duties.appoint_comms_lead(declared(), IC, COMMS, ctx())
    edit = next(j for j in outcome.jobs if j.kind is JobKind.SLACK_UPDATE)
    assert edit.payload["target"] == "incident:7:announce"
    assert edit.payload["seq"] == outcome.incident.version  # type: ignore[union-attr]
    assert f"<@{COMMS}>" in str(edit.payload["blocks"])


def test_handoff_is_only_an_offer_until_the_new_commander_accepts() -> None:
    offered = duties.offer_handoff(declared(), IC, OTHER, ctx())
    incident = offered.incident
    assert incident is not None and incident.commander == IC
    assert incident.handoff is not None and incident.handoff.to == OTHER
    dm = next(j for j in offered.jobs if j.kind is JobKind.SLACK_DM)
    assert dm.payload["user"] == OTHER and "incident.accept_handoff" in str(dm.payload["blocks"])
    wrong = duties.accept_handoff(incident, STRANGER, ctx())
    assert wrong.refusal is not None
    accepted = duties.accept_handoff(incident, OTHER, ctx())
    assert accepted.incident is not None
    assert (accepted.incident.commander, accepted.incident.handoff) == (OTHER, None)
    assert accepted.timeline[0].data == {"to": OTHER, "from": IC}


def test_handoff_to_the_commander_is_refused() -> None:
    assert duties.offer_handoff(declared(), IC, IC, ctx()).refusal is not None


# -- escalation, vendors, updates ----------------------------------------------


def test_escalation_pages_leadership_and_tells_the_channel() -> None:
    outcome = duties.escalate(declared(), IC, "need more hands", ctx())
    assert outcome.incident is not None and outcome.incident.escalated
    dm = next(j for j in outcome.jobs if j.kind is JobKind.SLACK_DM)
    assert dm.payload["user"] == LEAD and "need more hands" in dm.payload["text"]
    post = next(j for j in outcome.jobs if j.payload.get("channel") == "C0INC")
    assert f"<@{LEAD}>" in post.payload["text"]


def test_vendor_contact_uses_the_configured_details() -> None:
    outcome = duties.contact_vendor(declared(), IC, "aws", ctx())
    assert outcome.incident is not None and outcome.incident.vendors == ["AWS"]
    assert "Enterprise support +1 555" in thread_texts(outcome)
    unknown = duties.contact_vendor(declared(), IC, "Oracle", ctx())
    assert unknown.refusal is not None and "Known vendors: AWS" in unknown.refusal


def test_status_update_goes_to_the_thread_and_rearms_the_reminder() -> None:
    outcome = duties.status_update(declared(), IC, "rolled back v42", ctx())
    assert "rolled back v42" in thread_texts(outcome)
    assert outcome.cancel_prefixes == ["incident:7:timer:status:"]
    timer = next(j for j in outcome.jobs if j.kind is JobKind.TIMER)
    assert timer.due_at == NOW + timedelta(minutes=60)
    assert timer.key.startswith("incident:7:timer:status:")


def test_data_loss_flag_points_at_the_bcp_dr_policy() -> None:
    outcome = duties.flag(declared(), IC, Flag.DATA_LOSS, ctx())
    assert "https://wiki/bcp" in thread_texts(outcome)
    assert duties.flag(outcome.incident, IC, Flag.DATA_LOSS, ctx()).refusal is not None  # type: ignore[arg-type]


# -- the end -------------------------------------------------------------------


def test_mitigated_then_resolved_without_post_mortem_closes() -> None:
    mitigated = duties.mitigate(declared(Severity.MEDIUM), IC, ctx())
    assert mitigated.incident is not None
    assert mitigated.incident.status is IncidentStatus.MITIGATED
    resolved = duties.resolve(mitigated.incident, IC, "config reverted", ctx())
    incident = resolved.incident
    assert incident is not None and incident.status is IncidentStatus.CLOSED
    notice = next(j for j in resolved.jobs if j.payload.get("channel") == "C0INC")
    assert (
        "INC-7 resolved" in notice.payload["text"] and "config reverted" in notice.payload["text"]
    )
    assert JobKind.GITHUB_ISSUE not in kinds(resolved)
    assert {"incident:7:timer:status:", "incident:7:timer:handoff:"} <= set(
        resolved.cancel_prefixes
    )


def test_critical_resolution_owes_a_post_mortem_prefilled_with_the_timeline() -> None:
    incident = declared(Severity.CRITICAL)
    handoff = duties.offer_handoff(incident, IC, OTHER, ctx())
    accepted = duties.accept_handoff(handoff.incident, OTHER, ctx())  # type: ignore[arg-type]
    history = [*handoff.timeline, *accepted.timeline]
    resolved = duties.resolve(
        accepted.incident, OTHER, "failover done",  # type: ignore[arg-type]
        Context(NOW + timedelta(hours=2), POLICY, PageAlerts(), history),
    )  # fmt: skip
    incident = resolved.incident
    assert incident is not None
    assert (incident.status, incident.postmortem_owed) == (IncidentStatus.RESOLVED, True)
    issue = next(j for j in resolved.jobs if j.kind is JobKind.GITHUB_ISSUE)
    body = issue.payload["body"]
    for section in (
        "## Details",
        "## Timeline",
        "## Impact",
        "## Actions taken",
        "## Root cause(s)",
        "## Follow-up actions",
        "## New risks for the risk register",
    ):
        assert section in body  # fmt: skip
    assert f"{OTHER} accepted; commander was {IC}" in body
    assert "resolved: failover done" in body


@pytest.mark.parametrize("which", [Flag.OUTAGE, Flag.DATA_LOSS])
def test_outage_or_data_loss_flags_owe_a_post_mortem_at_any_severity(which: Flag) -> None:
    incident = declared(Severity.LOW).model_copy(update={"flags": [which]})
    assert duties.resolve(incident, IC, "done", ctx()).incident.postmortem_owed  # type: ignore[union-attr]


def test_customers_affected_reminds_about_customer_communication() -> None:
    incident = declared().model_copy(update={"flags": [Flag.CUSTOMERS]})
    assert "customer communication" in thread_texts(duties.resolve(incident, IC, "ok", ctx()))


def test_post_mortem_done_closes_and_only_when_owed() -> None:
    owed = declared().model_copy(update={
        "status": IncidentStatus.RESOLVED, "postmortem_owed": True,
        "postmortem_job": "incident:7:postmortem"})  # fmt: skip
    outcome = duties.postmortem_done(owed, IC, ctx())
    assert outcome.incident is not None and outcome.incident.status is IncidentStatus.CLOSED
    close = next(j for j in outcome.jobs if j.kind is JobKind.GITHUB_UPDATE)
    assert close.payload == {"issue": "incident:7:postmortem", "state": "closed",
                             "state_reason": "completed"}  # fmt: skip
    assert duties.postmortem_done(declared(), IC, ctx()).refusal is not None


@pytest.mark.parametrize(
    "step",
    [
        lambda i: duties.status_update(i, IC, "x", ctx()),
        lambda i: duties.contact_vendor(i, IC, "AWS", ctx()),
        lambda i: duties.mitigate(i, IC, ctx()),
        lambda i: duties.resolve(i, IC, "again", ctx()),
        lambda i: duties.offer_handoff(i, IC, OTHER, ctx()),
    ],
)
def test_closed_incidents_refuse_changes(step: object) -> None:
    closed = declared().model_copy(update={"status": IncidentStatus.CLOSED})
    assert step(closed).refusal is not None  # type: ignore[operator]


# -- who may act, reminders ---------------------------------------------------


def test_responders_are_commander_comms_on_call_and_configured() -> None:
    incident = declared().model_copy(update={"comms_lead": "U0CL"})
    for person in (IC, "U0CL", OTHER, LEAD, RESPONDER):
        assert duties.may_act(incident, person, ctx()), person
    assert not duties.may_act(incident, STRANGER, ctx())


def test_status_reminder_asks_the_commander_and_rearms() -> None:
    outcome = duties.reminder_due(declared(), "status", ctx())
    assert f"<@{IC}>: time for a status update" in thread_texts(outcome)
    assert any(j.kind is JobKind.TIMER for j in outcome.jobs)
    assert "reminder:status" in outcome.events


def test_escalation_prompt_only_while_critical_and_unmitigated() -> None:
    active = duties.reminder_due(declared(Severity.CRITICAL), "escalation", ctx())
    assert "escalate to leadership" in thread_texts(active)
    mitigated = declared().model_copy(update={"status": IncidentStatus.MITIGATED})
    assert duties.reminder_due(mitigated, "escalation", ctx()).jobs == []


def test_end_of_day_prompt_dms_the_commander_to_hand_off() -> None:
    outcome = duties.reminder_due(declared(), "handoff", ctx(now=NOW.replace(hour=18)))
    dm = next(j for j in outcome.jobs if j.kind is JobKind.SLACK_DM)
    assert dm.payload["user"] == IC and "/incident handoff" in dm.payload["text"]
    timer = next(j for j in outcome.jobs if j.kind is JobKind.TIMER)
    assert timer.due_at == datetime(2026, 3, 3, 18, 0, tzinfo=UTC)


def test_reminders_after_resolution_are_stale() -> None:
    closed = declared().model_copy(update={"status": IncidentStatus.CLOSED})
    assert duties.reminder_due(closed, "status", ctx()).jobs == []


def test_vendor_config_is_strict() -> None:
    with pytest.raises(ValueError):
        VendorConfig.model_validate({"contact": "x", "phone": "y"})


def test_post_mortem_closes_when_its_issue_is_closed() -> None:
    resolved = duties.resolve(declared(Severity.CRITICAL), IC, "fixed", ctx())
    incident = resolved.incident
    assert incident is not None and incident.postmortem_owed
    check = next(j for j in resolved.jobs if j.payload.get("event") == "incident_postmortem")
    assert check.due_at == NOW + timedelta(minutes=60)
    later = NOW + timedelta(hours=1)
    looked = duties.reminder_due(incident, "postmortem", ctx(now=later))
    read = next(j for j in looked.jobs if j.kind is JobKind.GITHUB_UPDATE)
    assert read.payload["read_state"] is True and read.payload["on_result"] == "postmortem_state"
    assert any(j.kind is JobKind.TIMER for j in looked.jobs)  # looks again later
    still_open = duties.postmortem_issue_state(incident, "open", ctx(now=later))
    assert still_open.incident is None
    closed = duties.postmortem_issue_state(incident, "closed", ctx(now=later))
    assert closed.incident is not None and closed.incident.status is IncidentStatus.CLOSED
    assert not closed.incident.postmortem_owed
    assert closed.timeline[0].kind == "postmortem_done" and closed.timeline[0].actor == "router"


def test_no_post_mortem_check_once_done() -> None:
    done = declared().model_copy(update={"postmortem_owed": False, "postmortem_job": "k"})
    assert duties.reminder_due(done, "postmortem", ctx()).jobs == []


def test_severity_can_be_classified_after_the_fact_and_then_owes_a_post_mortem() -> None:
    closed = declared(Severity.MEDIUM).model_copy(update={"status": IncidentStatus.CLOSED})
    outcome = duties.change_severity(closed, IC, Severity.CRITICAL, "it was an outage", ctx())
    incident = outcome.incident
    assert incident is not None and incident.severity is Severity.CRITICAL
    assert (incident.status, incident.postmortem_owed) == (IncidentStatus.RESOLVED, True)
    assert any(j.key == "incident:7:postmortem" for j in outcome.jobs)
    assert not any(j.kind is JobKind.TIMER and "status" in j.key for j in outcome.jobs)


def test_an_outage_flag_after_resolution_owes_a_post_mortem() -> None:
    closed = declared(Severity.LOW).model_copy(update={"status": IncidentStatus.CLOSED})
    outcome = duties.flag(closed, IC, Flag.OUTAGE, ctx())
    assert outcome.incident is not None and outcome.incident.postmortem_owed


def test_raising_to_critical_arms_the_escalation_prompt() -> None:
    outcome = duties.change_severity(declared(Severity.HIGH), IC, Severity.CRITICAL, "x", ctx())
    timer = next(j for j in outcome.jobs if j.payload.get("event") == "incident_escalation")
    assert timer.due_at == NOW + timedelta(minutes=60)


def test_resolving_a_paged_incident_resolves_its_pagerduty_alert() -> None:
    policy = Policy(**{**POLICY.__dict__, "pagerduty": True})
    incident = declared().model_copy(update={"page_key": "p123"})
    outcome = duties.resolve(incident, IC, "done", ctx(policy))
    [event] = [j for j in outcome.jobs if j.kind is JobKind.PAGERDUTY_EVENT]
    assert event.payload == {"event_action": "resolve", "dedup_key": "router:p123"}


def test_leadership_is_not_paged_twice_by_a_double_click() -> None:
    first = duties.escalate(declared(), IC, "help", ctx())
    assert first.incident is not None
    again = duties.escalate(first.incident, IC, "help", ctx(now=NOW + timedelta(minutes=1)))
    assert again.refusal is not None and again.jobs == []
    later = duties.escalate(first.incident, IC, "still", ctx(now=NOW + timedelta(minutes=30)))
    assert later.refusal is None
