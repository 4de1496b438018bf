"""The paging policy, as pure transitions: (state, event) -> (new state, jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from router.core import lifecycle
from router.core.alerts import Alert, AlertChange, AlertStatus, Source
from router.core.digest import PART_SIZE, Digest, DigestLine, positions
from router.core.jobs import JobKind
from router.core.lifecycle import Storm
from router.core.oncall import OncallConfig, Schedule
from router.core.page import CONFIDENTIAL_TITLE, Decision, Page, PageAlerts, PageStatus
from router.core.policy import Outcome, Policy
from router.core.policy_config import PagingConfig
from router.core.severity import DEFAULT_RULES, Severity

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PRIMARY, SECONDARY, LEAD, RESPONDER, STRANGER = "U0PRIMARY", "U0SECOND", "U0LEAD", "U0RESP", "U0X"


def make_policy(**paging: int) -> Policy:
    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    oncall = OncallConfig.model_validate(
        {
            "rotations": {
                "eng-primary": {"members": [PRIMARY], **rotation},
                "eng-secondary": {"members": [SECONDARY], **rotation},
                "leadership": {"members": [LEAD], **rotation},
            },
            "responders": [RESPONDER],
        }
    )
    return Policy(
        schedule=Schedule(oncall),
        paging=PagingConfig(**paging),  # type: ignore[arg-type]
        severity=DEFAULT_RULES,
        responders=frozenset(oncall.responders),
        incident_channel="C0INCIDENT",
        operator_channel="C0OPS",
        pagerduty=True,
    )


POLICY = make_policy()


def alert(fp: str = "f1", status: AlertStatus = AlertStatus.FIRING, group: str = "g1",
          **labels: str) -> Alert:  # fmt: skip
    return Alert(
        source=Source.ALERTMANAGER,
        group_key=group,
        fingerprint=fp,
        status=status,
        starts_at=NOW - timedelta(minutes=5),
        labels={"alertname": "HighLatency", "instance": "api-1", **labels},
        annotations={"summary": "p99 > 1s"},
    )


NO_STORM = Storm()


def view(*alerts: Alert, policy: Policy = POLICY) -> PageAlerts:
    """A page's alerts as the store reads them for a step (counts, shown, worst)."""
    return PageAlerts.of(alerts, policy.paging.max_alerts_shown, policy.severity)


ONE = view(alert())  # a page's alerts: one firing


def arrived(
    page: Page | None,
    changes: list[AlertChange],
    page_alerts: Sequence[Alert],
    delivery: Sequence[Alert],
    now: datetime,
    policy: Policy,
    storm: Storm,
    incident_open: bool = True,
) -> Outcome:
    """``alerts_arrived`` given the page's alerts after the delivery (``page_alerts``)."""
    alerts = view(*page_alerts, policy=policy) if page is not None else None
    return lifecycle.alerts_arrived(
        page, changes, delivery, alerts, now, policy, storm, incident_open
    )


def open_page(*alerts: Alert, storm: Storm = NO_STORM, policy: Policy = POLICY) -> Outcome:
    alerts = alerts or (alert(severity="critical"),)
    changes = [AlertChange.NEW] * len(alerts)
    return arrived(None, changes, alerts, alerts, NOW, policy, storm)


def kinds(outcome: Outcome) -> list[JobKind]:
    return [job.kind for job in outcome.jobs]


def the_page() -> Page:
    page = open_page().page
    assert page is not None
    return page


# -- a page per group ---------------------------------------------------------


def test_firing_alerts_open_one_page_that_dms_eng_primary() -> None:
    outcome = open_page(alert("a", severity="critical"), alert("b"))
    page = outcome.page
    assert page is not None and outcome.new_page
    assert page.status is PageStatus.OPEN and page.assignee == PRIMARY
    dms = [job for job in outcome.jobs if job.kind is JobKind.SLACK_DM]
    assert [job.payload["user"] for job in dms] == [PRIMARY]
    assert page.paged[0].role == "eng-primary"
    assert "HighLatency" in dms[0].payload["text"]


def test_page_carries_severity_suggestion_with_clause() -> None:
    page = open_page(alert(data_loss="true")).page
    assert page is not None
    assert page.suggestion.severity is Severity.CRITICAL
    assert page.suggestion.clause == "customer or other critical data lost or corrupted"


def test_page_message_has_the_three_buttons() -> None:
    dm = next(j for j in open_page().jobs if j.kind is JobKind.SLACK_DM)
    actions = next(b for b in dm.payload["blocks"] if b["type"] == "actions")
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == ["page.declare", "page.dismiss", "page.dismiss_reason", "page.escalate"]


def test_page_starts_an_ack_timer_and_pagerduty_trigger() -> None:
    outcome = open_page()
    timer = next(j for j in outcome.jobs if j.kind is JobKind.TIMER)
    assert timer.due_at == NOW + timedelta(seconds=300)
    assert timer.payload == {"event": "ack_timeout", "page": outcome.page.key, "level": 0}  # type: ignore[union-attr]
    pd = next(j for j in outcome.jobs if j.kind is JobKind.PAGERDUTY_EVENT)
    assert pd.payload["event_action"] == "trigger"
    assert pd.payload["payload"]["severity"] in {"critical", "error", "warning", "info"}


def test_no_pagerduty_jobs_when_not_configured() -> None:
    policy = make_policy()
    policy = Policy(**{**policy.__dict__, "pagerduty": False})
    assert JobKind.PAGERDUTY_EVENT not in kinds(open_page(policy=policy))


def test_new_alerts_in_the_same_group_update_the_page_not_page_again() -> None:
    page = the_page()
    more = [alert("f1"), alert("f2")]
    outcome = arrived(page, [AlertChange.REPEAT, AlertChange.NEW], more, more, NOW, POLICY, Storm())
    assert JobKind.SLACK_DM not in kinds(outcome)
    assert kinds(outcome) == [JobKind.SLACK_UPDATE]
    assert outcome.jobs[0].payload["target"] == page.paged[0].dm_job
    assert outcome.page is not None and outcome.page.version == page.version + 1


def test_repeats_change_nothing() -> None:
    page = the_page()
    outcome = arrived(page, [AlertChange.REPEAT], [alert()], [alert()], NOW, POLICY, Storm())
    assert outcome.page is None and outcome.jobs == []


def test_only_resolutions_without_a_page_do_not_page() -> None:
    resolved = [alert(status=AlertStatus.RESOLVED)]
    outcome = arrived(None, [AlertChange.NEW], resolved, resolved, NOW, POLICY, Storm())
    assert outcome.page is None and outcome.jobs == []


def test_all_alerts_resolved_before_a_decision_says_so_and_can_still_be_declared() -> None:
    page = the_page()
    resolved = [alert(status=AlertStatus.RESOLVED)]
    outcome = arrived(page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm())
    assert outcome.page is not None and outcome.page.all_resolved
    assert outcome.page.status is PageStatus.OPEN
    update = next(j for j in outcome.jobs if j.kind is JobKind.SLACK_UPDATE)
    texts = " ".join(str(b) for b in update.payload["blocks"])
    assert "All alerts have resolved" in texts and "page.declare" in texts
    pd = next(j for j in outcome.jobs if j.kind is JobKind.PAGERDUTY_EVENT)
    assert pd.payload["event_action"] == "resolve"
    declared = lifecycle.decide(
        outcome.page, Decision.DECLARE, PRIMARY, NOW, POLICY, view(*resolved), 1
    )
    assert declared.incident is not None


# -- decisions ----------------------------------------------------------------


def test_a_confidential_report_opens_a_page_listed_by_a_placeholder() -> None:
    secret = open_page(alert(severity="critical", confidential="true"))
    assert secret.page is not None and secret.page.confidential
    assert secret.page.alert_name == CONFIDENTIAL_TITLE  # alert quality never names it
    plain = open_page(alert(severity="critical", confidential="false"))
    assert plain.page is not None and not plain.page.confidential
    assert plain.page.alert_name == "HighLatency"


def test_a_report_marked_confidential_declares_a_confidential_incident() -> None:
    page = the_page()
    secret = view(alert(confidential="true"))
    outcome = lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, secret, 42)
    assert outcome.incident is not None and outcome.incident.confidential
    plain = view(alert(confidential="false"))
    other = lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, plain, 43)
    assert other.incident is not None and not other.incident.confidential


def test_declare_names_the_confirmer_commander_and_announces() -> None:
    page = the_page()
    outcome = lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 42)
    incident = outcome.incident
    assert incident is not None
    assert (incident.ref, incident.commander, incident.declared_by) == ("INC-42", PRIMARY, PRIMARY)
    assert incident.severity is page.suggestion.severity
    assert outcome.page is not None and outcome.page.status is PageStatus.DECLARED
    announce = next(j for j in outcome.jobs if j.kind is JobKind.SLACK_POST)
    assert announce.payload["channel"] == "C0INCIDENT"
    assert announce.key == "incident:42:announce"
    assert "INC-42" in announce.payload["text"] and f"<@{PRIMARY}>" in announce.payload["text"]
    blocks = str(announce.payload["blocks"])
    assert page.suggestion.clause in blocks
    assert lifecycle.ack_timer_key(page, 0) in outcome.cancel
    assert [e.kind for e in outcome.timeline] == ["declared"]
    pd = next(j for j in outcome.jobs if j.kind is JobKind.PAGERDUTY_EVENT)
    assert pd.payload["event_action"] == "acknowledge"


def test_declare_updates_the_page_to_show_who_decided() -> None:
    outcome = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 7)
    update = next(j for j in outcome.jobs if j.kind is JobKind.SLACK_UPDATE)
    blocks = str(update.payload["blocks"])
    assert "INC-7" in blocks and f"<@{PRIMARY}>" in blocks
    assert "page.dismiss" not in blocks


def test_a_responder_may_declare() -> None:
    outcome = lifecycle.decide(the_page(), Decision.DECLARE, RESPONDER, NOW, POLICY, ONE, 1)
    assert outcome.incident is not None and outcome.incident.commander == RESPONDER


def test_someone_not_paged_nor_responder_is_refused_and_nothing_changes() -> None:
    outcome = lifecycle.decide(the_page(), Decision.DECLARE, STRANGER, NOW, POLICY, ONE, 1)
    assert outcome.refusal is not None and "Only the people paged" in outcome.refusal
    assert outcome.page is None and outcome.incident is None and outcome.jobs == []


def test_declare_twice_is_refused() -> None:
    first = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1)
    assert first.page is not None
    again = lifecycle.decide(first.page, Decision.DECLARE, RESPONDER, NOW, POLICY, ONE, 2)
    assert again.refusal == f"Already declared as INC-1 by <@{PRIMARY}>."
    assert again.incident is None


def test_dismiss_after_declare_is_refused() -> None:
    first = lifecycle.decide(the_page(), Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    declared = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1)
    assert first.refusal is None
    assert declared.page is not None
    late = lifecycle.decide(declared.page, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    assert late.refusal is not None and late.page is None


def test_dismiss_records_the_reason_and_cancels_the_timer() -> None:
    page = the_page()
    outcome = lifecycle.decide(
        page, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE, reason="false positive"
    )
    assert outcome.page is not None
    assert (outcome.page.status, outcome.page.reason) == (PageStatus.DISMISSED, "false positive")
    assert outcome.page.active  # alerts still fire: the group stays with this page
    assert lifecycle.ack_timer_key(page, 0) in outcome.cancel
    assert outcome.incident is None
    assert "false positive" in str(outcome.jobs[0].payload["blocks"])


def test_dismiss_twice_is_refused() -> None:
    first = lifecycle.decide(the_page(), Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    assert first.page is not None
    again = lifecycle.decide(first.page, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    assert again.refusal is not None and again.page is None


def test_declare_after_dismiss_is_allowed_people_change_their_minds() -> None:
    dismissed = lifecycle.decide(the_page(), Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    assert dismissed.page is not None
    outcome = lifecycle.decide(dismissed.page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 3)
    assert outcome.incident is not None


def test_repeats_after_dismissal_do_not_page_again_but_new_alerts_do() -> None:
    dismissed = lifecycle.decide(the_page(), Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    page = dismissed.page
    assert page is not None
    later = NOW + timedelta(hours=4)
    repeat = arrived(page, [AlertChange.REPEAT], [alert()], [alert()], later, POLICY, Storm())
    assert repeat.jobs == []
    new = [alert(), alert("f2")]
    fresh = arrived(page, [AlertChange.REPEAT, AlertChange.NEW], new, new, later, POLICY, Storm())
    assert fresh.new_page and fresh.retire is not None and not fresh.retire.active
    assert JobKind.SLACK_DM in kinds(fresh)


def test_dismissed_page_retires_when_all_alerts_resolve() -> None:
    dismissed = lifecycle.decide(the_page(), Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    assert dismissed.page is not None
    resolved = [alert(status=AlertStatus.RESOLVED)]
    outcome = arrived(
        dismissed.page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm()
    )
    assert outcome.page is not None and not outcome.page.active


def test_alerts_after_declaration_go_to_the_incident_thread() -> None:
    declared = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 5)
    assert declared.page is not None
    alerts = [alert(), alert("f2")]
    outcome = arrived(
        declared.page, [AlertChange.REPEAT, AlertChange.NEW], alerts, alerts, NOW, POLICY, Storm()
    )
    thread = next(j for j in outcome.jobs if j.kind is JobKind.SLACK_POST)
    assert thread.payload["thread_of"] == "incident:5:announce"
    assert "1 alert(s) started firing" in thread.payload["text"]
    assert outcome.timeline and outcome.timeline[0].kind == "alerts_changed"


# -- escalation ---------------------------------------------------------------


def test_ack_timeout_pages_again_and_pages_eng_secondary() -> None:
    page = the_page()
    later = NOW + timedelta(seconds=300)
    outcome = lifecycle.ack_timeout(page, 0, later, POLICY, ONE)
    dms = [j for j in outcome.jobs if j.kind is JobKind.SLACK_DM]
    assert [j.payload["user"] for j in dms] == [PRIMARY, SECONDARY]
    assert "Still waiting" in dms[0].payload["text"]
    assert outcome.page is not None and outcome.page.level == 1
    assert [p.role for p in outcome.page.paged] == ["eng-primary", "eng-secondary"]
    timer = next(j for j in outcome.jobs if j.kind is JobKind.TIMER)
    assert timer.payload["level"] == 1 and timer.due_at == later + timedelta(seconds=300)
    assert "escalated:timeout" in outcome.events


def test_second_timeout_pages_leadership_and_secondary_may_decide() -> None:
    first = lifecycle.ack_timeout(the_page(), 0, NOW, POLICY, ONE)
    assert first.page is not None
    second = lifecycle.ack_timeout(first.page, 1, NOW, POLICY, ONE)
    assert second.page is not None
    assert [p.user for p in second.page.paged] == [PRIMARY, SECONDARY, LEAD]
    decided = lifecycle.decide(second.page, Decision.DECLARE, SECONDARY, NOW, POLICY, ONE, 9)
    assert decided.incident is not None and decided.incident.commander == SECONDARY


def test_timeout_after_everyone_was_paged_tells_the_operator() -> None:
    page = the_page()
    for level in range(2):
        outcome = lifecycle.ack_timeout(page, level, NOW, POLICY, ONE)
        assert outcome.page is not None
        page = outcome.page
    last = lifecycle.ack_timeout(page, 2, NOW, POLICY, ONE)
    assert "escalation_exhausted" in last.events
    notice = next(j for j in last.jobs if j.kind is JobKind.SLACK_POST)
    assert notice.payload["channel"] == "C0OPS"
    assert JobKind.TIMER not in kinds(last)


def test_stale_timer_after_a_decision_does_nothing() -> None:
    declared = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1)
    assert declared.page is not None
    outcome = lifecycle.ack_timeout(declared.page, 0, NOW, POLICY, ONE)
    assert outcome.page is None and outcome.jobs == []


def test_stale_timer_after_manual_escalation_does_nothing() -> None:
    escalated = lifecycle.decide(the_page(), Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE)
    assert escalated.page is not None and escalated.page.level == 1
    outcome = lifecycle.ack_timeout(escalated.page, 0, NOW, POLICY, ONE)
    assert outcome.page is None and outcome.jobs == []


def test_escalate_button_pages_the_next_level_now() -> None:
    outcome = lifecycle.decide(the_page(), Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE)
    assert outcome.page is not None and outcome.page.paged_users == [PRIMARY, SECONDARY]
    assert "escalated:button" in outcome.events


def test_escalate_by_a_stranger_is_refused() -> None:
    outcome = lifecycle.decide(the_page(), Decision.ESCALATE, STRANGER, NOW, POLICY, ONE)
    assert outcome.refusal is not None and outcome.jobs == []


# -- storm control -----------------------------------------------------------


def test_under_the_storm_limit_pages_are_sent_one_by_one() -> None:
    outcome = open_page(storm=Storm(recent_pages=4), policy=make_policy(storm_limit=5))
    assert outcome.page is not None and outcome.page.digest_key is None


def test_past_the_storm_limit_pages_fold_into_one_digest() -> None:
    policy = make_policy(storm_limit=2)
    first = open_page(alert(group="g1"), storm=Storm(recent_pages=2), policy=policy)
    page1, digest = first.page, first.digest
    assert page1 is not None and digest is not None
    assert (page1.digest_key, page1.digest_position, digest.pages) == (digest.key, 1, 1)
    # one timer and one PagerDuty trigger for the digest as a whole; its message is
    # rendered from its lines once the step is stored (digest_parts)
    assert kinds(first) == [JobKind.TIMER, JobKind.PAGERDUTY_EVENT]
    second = open_page(
        alert(group="g2", alertname="DiskFull"), storm=Storm(recent_pages=2, digest=digest),
        policy=policy,
    )  # fmt: skip
    assert second.page is not None and second.digest is not None
    assert (second.page.digest_position, second.digest.pages, kinds(second)) == (2, 2, [])
    lines = {0: [DigestLine.of(page1), DigestLine.of(second.page)]}
    posted, jobs = lifecycle.digest_parts(second.digest, lines)
    [dm] = jobs
    assert (dm.kind, dm.key, dm.payload["user"]) == (JobKind.SLACK_DM, digest.key, PRIMARY)
    listed = str(dm.payload["blocks"])
    assert "HighLatency" in listed and "DiskFull" in listed  # nothing dropped
    assert posted.parts_posted == 1 and posted.version == second.digest.version + 1
    # once posted, a change of its lines edits it, with a newer version each time
    edited, [edit] = lifecycle.digest_parts(posted, lines)
    assert edit.kind is JobKind.SLACK_UPDATE
    assert (edit.payload["target"], edit.payload["seq"]) == (digest.key, edited.version)


def test_a_digest_part_after_the_first_is_posted_after_it() -> None:
    digest = Digest(key="digest:U:1", assignee=PRIMARY, opened_at=NOW, pages=150)
    lines = {p: [digest_line(i) for i in positions(p)][: 150 - p * PART_SIZE] for p in (0, 1)}
    posted, jobs = lifecycle.digest_parts(digest, lines)
    assert [(j.kind, j.key, j.payload.get("after")) for j in jobs] == [
        (JobKind.SLACK_DM, "digest:U:1", None),
        (JobKind.SLACK_DM, "digest:U:1:part:1", "digest:U:1"),
    ]
    assert posted.parts_posted == 2


def digest_line(position: int, status: PageStatus = PageStatus.OPEN) -> DigestLine:
    return DigestLine(position=position, page_key=f"p{position}", title=f"Group{position}",
                      severity=Severity.HIGH, firing=1, resolved=0, status=status)  # fmt: skip


def test_folded_pages_can_be_declared_by_the_assignee() -> None:
    folded = open_page(storm=Storm(recent_pages=9)).page
    assert folded is not None
    outcome = lifecycle.decide(folded, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1)
    assert outcome.incident is not None


def test_nobody_on_call_is_never_silent() -> None:
    oncall = OncallConfig.model_validate({"rotations": {"eng-primary": {
        "members": [PRIMARY], "start": "2030-01-01T09:00:00", "handoff_time": "09:00",
        "timezone": "UTC"}}})  # fmt: skip
    policy = Policy(**{**POLICY.__dict__, "schedule": Schedule(oncall)})
    outcome = open_page(policy=policy)
    assert "nobody_on_call" in outcome.events
    assert outcome.jobs[0].payload["channel"] == "C0OPS"


@pytest.mark.parametrize("decision", list(Decision))
def test_unknown_actor_never_changes_state(decision: Decision) -> None:
    outcome = lifecycle.decide(the_page(), decision, STRANGER, NOW, POLICY, ONE, 1)
    assert outcome.refusal and not outcome.jobs and outcome.page is None


# -- after the end; resolving on its own ----------------------------------------


def test_a_group_pages_afresh_once_its_incident_is_over() -> None:
    declared = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1)
    assert declared.page is not None
    later = NOW + timedelta(days=14)
    again = [alert("f1-later")]
    fresh = arrived(
        declared.page, [AlertChange.NEW], again, again, later, POLICY, Storm(), incident_open=False
    )
    assert fresh.new_page and fresh.retire is not None and not fresh.retire.active
    assert JobKind.SLACK_DM in kinds(fresh)
    # while the incident is open, the same delivery only goes to its thread
    during = arrived(
        declared.page, [AlertChange.NEW], again, again, later, POLICY, Storm(), incident_open=True
    )
    assert not during.new_page and JobKind.SLACK_DM not in kinds(during)


def test_resolutions_after_the_incident_ends_retire_the_page_quietly() -> None:
    declared = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1)
    assert declared.page is not None
    resolved = [alert(status=AlertStatus.RESOLVED)]
    outcome = arrived(
        declared.page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm(),
        incident_open=False,
    )  # fmt: skip
    assert outcome.page is not None and not outcome.page.active and outcome.jobs == []


def test_resolving_on_its_own_stops_the_escalation() -> None:
    page = the_page()
    resolved = [alert(status=AlertStatus.RESOLVED)]
    outcome = arrived(page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm())
    assert lifecycle.ack_timer_key(page, 0) in outcome.cancel
    assert outcome.page is not None
    stale = lifecycle.ack_timeout(outcome.page, 0, NOW, POLICY, view(*resolved))
    assert stale.jobs == [] and stale.page is None


def test_firing_again_before_a_decision_pages_again_and_rearms_the_timer() -> None:
    page = the_page()
    resolved = [alert(status=AlertStatus.RESOLVED)]
    quiet = arrived(page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm())
    assert quiet.page is not None
    again = [alert("f2")]
    refired = arrived(
        quiet.page, [AlertChange.NEW], [*resolved, *again], again, NOW, POLICY, Storm()
    )
    dms = [j for j in refired.jobs if j.kind is JobKind.SLACK_DM]
    assert [j.payload["user"] for j in dms] == [PRIMARY]
    assert "Firing again" in dms[0].payload["text"]
    assert any(j.kind is JobKind.TIMER for j in refired.jobs)
    triggers = [j for j in refired.jobs if j.payload.get("event_action") == "trigger"]
    # a new PagerDuty event, not the first trigger again: its key carries the version
    assert refired.page is not None and refired.page.version == 2
    assert [t.key for t in triggers] == [f"page:{page.key}:pd:trigger:v2"]


def test_pagerduty_is_resolved_when_a_declared_page_resolves() -> None:
    declared = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1)
    assert declared.page is not None
    resolved = [alert(status=AlertStatus.RESOLVED)]
    outcome = arrived(
        declared.page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm()
    )
    assert [
        j.payload["event_action"] for j in outcome.jobs if j.kind is JobKind.PAGERDUTY_EVENT
    ] == ["resolve"]


def test_a_second_click_on_escalate_does_not_escalate_twice() -> None:
    page = the_page()
    first = lifecycle.decide(page, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE,
                             expected_level=0)  # fmt: skip
    assert first.page is not None and first.page.level == 1
    again = lifecycle.decide(first.page, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE,
                             expected_level=0)  # fmt: skip
    assert again.refusal is not None and again.refusal.startswith("Already escalated")
    # from the refreshed page (level 1) a deliberate escalation goes on to leadership
    onward = lifecycle.decide(first.page, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE,
                              expected_level=1)  # fmt: skip
    assert onward.page is not None and onward.page.paged_users[-1] == LEAD


def test_an_unanswered_digest_goes_to_the_next_level_as_one_digest() -> None:
    policy = make_policy(storm_limit=1)
    one = open_page(alert(group="g1"), storm=Storm(recent_pages=1), policy=policy)
    assert one.page is not None and one.digest is not None
    two = open_page(
        alert(group="g2", alertname="DiskFull"), storm=Storm(recent_pages=1, digest=one.digest),
        policy=policy,
    )  # fmt: skip
    assert two.page is not None and two.digest is not None
    decided = lifecycle.decide(two.page, Decision.DISMISS, PRIMARY, NOW, policy,
                               view(alert(), policy=policy))  # fmt: skip
    assert decided.page is not None
    lines = [DigestLine.of(one.page), DigestLine.of(decided.page)]
    later = NOW + timedelta(seconds=300)
    outcome = lifecycle.digest_timeout(
        two.digest, 0, [line for line in lines if line.waiting], later, policy
    )
    [dm] = [j for j in outcome.jobs if j.kind is JobKind.SLACK_DM]
    assert dm.payload["user"] == SECONDARY
    listed = str(dm.payload["blocks"])
    assert "HighLatency" in listed and "DiskFull" not in listed  # only the page still open
    assert outcome.digest is not None and outcome.digest.paged_users == [PRIMARY, SECONDARY]
    timer = next(j for j in outcome.jobs if j.kind is JobKind.TIMER)
    assert timer.payload == {"event": "digest_timeout", "digest": two.digest.key, "level": 1}
    # the next level can now decide on the folded page; before, it could not
    alerts = view(alert(), policy=policy)
    assert lifecycle.decide(one.page, Decision.DECLARE, SECONDARY, later, policy, alerts, 1,
                            deciders=outcome.digest.paged_users).incident is not None  # fmt: skip
    assert lifecycle.decide(one.page, Decision.DECLARE, SECONDARY, later, policy, alerts, 1
                            ).refusal is not None  # fmt: skip
    # the same timer again (a stale one) escalates no further
    again = lifecycle.digest_timeout(outcome.digest, 0, lines[:1], later, policy)
    assert again.jobs == [] and again.digest is None


def test_a_digest_with_nothing_open_escalates_no_further() -> None:
    folded = open_page(storm=Storm(recent_pages=9))
    assert folded.digest is not None
    assert lifecycle.digest_timeout(folded.digest, 0, [], NOW, POLICY).jobs == []


# -- the suggestion follows the evidence, from the worst firing alert ------------------


def test_the_suggestion_falls_when_its_evidence_resolves() -> None:
    critical, warning = alert("c", severity="critical"), alert("w", severity="warning")
    page = open_page(critical, warning).page
    assert page is not None and page.suggestion.severity is Severity.CRITICAL
    resolved = alert("c", AlertStatus.RESOLVED, severity="critical")
    outcome = arrived(page, [AlertChange.RESOLVED], [resolved, warning], [resolved], NOW,
                      POLICY, Storm())  # fmt: skip
    assert outcome.page is not None and outcome.page.suggestion.severity is Severity.MEDIUM
    assert outcome.page.counts is not None
    assert (outcome.page.counts.firing, outcome.page.counts.resolved) == (1, 1)


def test_after_a_decision_the_suggestion_stays() -> None:
    declared = lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY,
                                view(alert(severity="critical")), 1)  # fmt: skip
    assert declared.page is not None
    low = alert("l", severity="info")
    outcome = arrived(declared.page, [AlertChange.NEW], [alert(), low], [low], NOW, POLICY,
                      Storm())  # fmt: skip
    assert outcome.page is not None
    assert outcome.page.suggestion == declared.page.suggestion
