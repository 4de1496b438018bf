"""The paging rules, pinned: each test names its rule and asserts exactly what the world
is told (job keys, payloads the adapters read, who is paged), so a broken rule fails.

Written against the survivors of mutation testing (`make mutation`): every test here
fails on a mutant of ``router.core.lifecycle`` that the older tests let through.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from router.core import lifecycle
from router.core.alerts import AlertChange, AlertStatus, Truncation
from router.core.digest import PART_SIZE, Digest
from router.core.jobs import JobKind
from router.core.lifecycle import Storm
from router.core.oncall import OncallConfig, Schedule
from router.core.page import Decision, Page, PageStatus
from router.core.policy import Outcome, Policy
from tests.unit.test_lifecycle import (
    LEAD,
    NOW,
    ONE,
    POLICY,
    PRIMARY,
    RESPONDER,
    SECONDARY,
    alert,
    arrived,
    digest_line,
    make_policy,
    open_page,
    the_page,
    view,
)

CLAUSE_CRITICAL = "critical"  # the built-in rule for severity=critical names no long clause


def rotations(**members: list[str]) -> Policy:
    """POLICY with other rotation members (role -> members), e.g. one person in two."""
    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    oncall = OncallConfig.model_validate(
        {
            "rotations": {
                role.replace("_", "-"): {"members": people, **rotation}
                for role, people in members.items()
            },
            "responders": [RESPONDER],
        }
    )
    return Policy(**{**POLICY.__dict__, "schedule": Schedule(oncall)})


def job(outcome: Outcome, kind: JobKind, index: int = 0):  # type: ignore[no-untyped-def]
    return [j for j in outcome.jobs if j.kind is kind][index]


def opened() -> tuple[Page, Outcome]:
    outcome = open_page()
    assert outcome.page is not None
    return outcome.page, outcome


# -- one page per group --------------------------------------------------------------


@pytest.mark.rule("paging.one-page-per-group")
def test_a_page_is_keyed_by_its_group_and_time_so_replicas_agree() -> None:
    key = lifecycle.page_key("g1", NOW)
    assert key == lifecycle.page_key("g1", NOW) and key.startswith("p") and key[1:].isalnum()
    assert key != lifecycle.page_key("g2", NOW)
    assert key != lifecycle.page_key("g1", NOW + timedelta(seconds=1))
    page, _ = opened()
    assert page.key == key and page.group_key == "g1" and page.source == "alertmanager"
    assert page.opened_at == NOW and page.pagerduty_dedup_key == f"router:{key}"


@pytest.mark.rule("paging.one-page-per-group")
def test_the_page_dm_goes_to_eng_primary_with_its_role_and_a_key_per_person() -> None:
    page, outcome = opened()
    dm = job(outcome, JobKind.SLACK_DM)
    assert dm.key == f"page:{page.key}:dm:0:{PRIMARY}"
    assert set(dm.payload) == {"user", "role", "text", "blocks"}
    assert (dm.payload["user"], dm.payload["role"]) == (PRIMARY, "eng-primary")
    assert "HighLatency on api-1" in dm.payload["text"]
    assert outcome.events == ["page_opened"] and outcome.new_page
    [person] = page.paged
    assert (person.role, person.user, person.at, person.dm_job) == (
        "eng-primary", PRIMARY, NOW, dm.key,
    )  # fmt: skip


@pytest.mark.rule("paging.one-page-per-group")
def test_the_page_title_names_the_alert_and_instance_or_counts_the_others() -> None:
    def title(*alerts) -> str:  # type: ignore[no-untyped-def]
        page = open_page(*alerts).page
        assert page is not None
        return page.title

    assert title(alert("a")) == "HighLatency on api-1"
    assert title(alert("a"), alert("b", instance="api-2")) == "HighLatency"
    assert title(alert("a"), alert("b", alertname="DiskFull")) == "DiskFull and 1 other alerts"
    three = (alert("a"), alert("b", alertname="DiskFull"), alert("c", alertname="CpuHot"))
    assert title(*three) == "CpuHot and 2 other alerts"
    # an alert without an instance label: the name alone
    bare = alert("a")
    bare = bare.model_copy(update={"labels": {"alertname": "HighLatency"}})
    assert title(bare) == "HighLatency"
    # label values have no length limit: the title stops at 200 characters, with an ellipsis
    assert len(title(alert("a", instance="x" * 300))) == 200
    assert title(alert("a", instance="x" * 300)).endswith("x…")
    exact = "HighLatency on " + "y" * (200 - len("HighLatency on "))
    assert title(alert("a", instance="y" * (200 - len("HighLatency on ")))) == exact


@pytest.mark.rule("paging.one-page-per-group")
def test_repeats_or_resolutions_of_a_group_nobody_was_paged_for_page_nobody() -> None:
    resolved = [alert(status=AlertStatus.RESOLVED)]
    assert arrived(None, [AlertChange.NEW], resolved, resolved, NOW, POLICY, Storm()) == Outcome()
    firing = [alert()]
    assert arrived(None, [AlertChange.REPEAT], firing, firing, NOW, POLICY, Storm()) == Outcome()
    refired = arrived(None, [AlertChange.REFIRED], firing, firing, NOW, POLICY, Storm())
    assert refired.new_page


@pytest.mark.rule("paging.one-page-per-group")
def test_a_page_holds_the_alerts_the_sender_left_out() -> None:
    cut = Truncation(count=7)
    outcome = lifecycle.alerts_arrived(
        None, [AlertChange.NEW], [alert()], None, NOW, POLICY, Storm(), truncation=cut
    )
    assert outcome.page is not None and outcome.page.truncation == cut
    assert "7 more not sent by Alertmanager" in str(job(outcome, JobKind.SLACK_DM).payload)


def test_a_page_needs_its_alerts_to_be_updated() -> None:
    page, _ = opened()
    with pytest.raises(ValueError, match="a page's alerts are needed to update it"):
        lifecycle.alerts_arrived(page, [AlertChange.NEW], [alert()], None, NOW, POLICY, Storm())


# -- PagerDuty -------------------------------------------------------------------------


@pytest.mark.rule("paging.pagerduty")
def test_the_pagerduty_trigger_names_the_page_its_worst_alert_and_clause() -> None:
    worst = alert("w", severity="critical", instance="db-1")
    newer = alert("n", severity="info", instance="web-9")
    newer = newer.model_copy(update={"starts_at": NOW})  # shown first: the newest
    outcome = open_page(worst, newer)
    page = outcome.page
    assert page is not None
    pd = job(outcome, JobKind.PAGERDUTY_EVENT)
    assert pd.key == f"page:{page.key}:pd:trigger:v0"
    assert pd.payload == {
        "event_action": "trigger",
        "dedup_key": f"router:{page.key}",
        "payload": {
            "summary": page.title,
            "source": "db-1",  # the worst alert's instance, not the first shown
            "severity": "critical",
            "custom_details": {"alerts": 2, "clause": page.suggestion.clause},
        },
    }
    assert page.suggestion.clause  # the clause travels with the phone call


@pytest.mark.rule("paging.pagerduty")
def test_the_pagerduty_source_is_the_alert_source_when_it_has_no_instance() -> None:
    bare = alert("a", severity="critical")
    bare = bare.model_copy(update={"labels": {"alertname": "X", "severity": "critical"}})
    pd = job(open_page(bare), JobKind.PAGERDUTY_EVENT)
    assert pd.payload["payload"]["source"] == "alertmanager"


@pytest.mark.rule("paging.pagerduty")
def test_declare_acknowledges_and_dismiss_resolves_pagerduty_by_the_page_dedup_key() -> None:
    page, _ = opened()
    declared = lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 7)
    ack = job(declared, JobKind.PAGERDUTY_EVENT)
    assert ack.key == f"page:{page.key}:pd:acknowledge:v1"
    assert ack.payload == {"event_action": "acknowledge", "dedup_key": f"router:{page.key}"}
    dismissed = lifecycle.decide(page, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    resolve = job(dismissed, JobKind.PAGERDUTY_EVENT)
    assert resolve.payload == {"event_action": "resolve", "dedup_key": f"router:{page.key}"}


# -- new alerts edit the page ----------------------------------------------------------


@pytest.mark.rule("paging.new-alerts-edit-the-page")
def test_new_alerts_edit_every_dm_of_the_page_with_a_newer_version() -> None:
    page, _ = opened()
    both = [alert(severity="critical"), alert("f2")]
    outcome = arrived(page, [AlertChange.NEW], both, both[1:], NOW, POLICY, Storm())
    assert outcome.page is not None and outcome.page.version == page.version + 1
    assert outcome.jobs and all(j.kind is JobKind.SLACK_UPDATE for j in outcome.jobs)
    [edit] = outcome.jobs
    dm_key = page.paged[0].dm_job
    assert edit.key == f"{dm_key}:v{page.version + 1}"
    assert edit.payload["target"] == dm_key and edit.payload["seq"] == page.version + 1
    assert set(edit.payload) == {"target", "seq", "text", "blocks"}
    assert "2 firing" in str(edit.payload["blocks"])
    assert outcome.page.counts is not None and outcome.page.counts.firing == 2
    assert outcome.events == [] and outcome.cancel == []
    assert page.version == 0  # the step changed a copy, not the page it was given
    assert len(page.paged) == 1


@pytest.mark.rule("paging.new-alerts-edit-the-page")
def test_a_resent_group_changes_nothing_but_a_new_count_of_cut_alerts_does() -> None:
    page, _ = opened()
    same = [alert(severity="critical")]
    assert arrived(page, [AlertChange.REPEAT], same, same, NOW, POLICY, Storm()) == Outcome()
    cut = lifecycle.alerts_arrived(
        page, [AlertChange.REPEAT], same, view(*same), NOW, POLICY, Storm(),
        truncation=Truncation(count=3),
    )  # fmt: skip
    assert cut.page is not None and cut.page.truncation == Truncation(count=3)
    assert [j.kind for j in cut.jobs] == [JobKind.SLACK_UPDATE]


@pytest.mark.rule("paging.suggested-severity")
def test_the_suggestion_counts_cut_alerts_while_nobody_has_decided() -> None:
    page, _ = opened()
    warning = [alert(severity="warning")]
    outcome = lifecycle.alerts_arrived(
        page, [AlertChange.NEW], warning, view(*warning), NOW, POLICY, Storm(),
        truncation=Truncation(count=2),
    )  # fmt: skip
    assert outcome.page is not None
    assert outcome.page.suggestion == view(*warning).suggestion(
        POLICY.severity, Truncation(count=2)
    )


# -- all resolved, firing again ---------------------------------------------------------


@pytest.mark.rule("paging.all-resolved")
def test_all_resolved_resolves_pagerduty_and_cancels_every_level_of_timer() -> None:
    page, _ = opened()
    resolved = [alert(status=AlertStatus.RESOLVED, severity="critical")]
    outcome = arrived(page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm())
    assert outcome.page is not None and outcome.page.all_resolved
    assert outcome.events == ["page_all_resolved"]
    assert outcome.cancel == [f"page:{page.key}:ack:{level}" for level in range(4)]
    pd = job(outcome, JobKind.PAGERDUTY_EVENT)
    assert pd.key == f"page:{page.key}:pd:resolve:v1" and pd.payload["event_action"] == "resolve"
    assert outcome.page.active and outcome.page.status is PageStatus.OPEN  # still declarable
    # a second resolution of what already resolved: no second notice
    again = arrived(outcome.page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm())
    assert "page_all_resolved" not in again.events and again.cancel == []


@pytest.mark.rule("paging.all-resolved")
def test_a_dismissed_page_that_resolves_retires_but_a_declared_one_stays() -> None:
    page, _ = opened()
    resolved = [alert(status=AlertStatus.RESOLVED, severity="critical")]
    declared = lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1).page
    assert declared is not None
    after = arrived(declared, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm())
    assert after.page is not None and after.page.active
    assert after.cancel == []  # its timers went at the declaration


@pytest.mark.rule("paging.all-resolved")
def test_firing_again_before_a_decision_pages_everyone_paged_again() -> None:
    page, _ = opened()
    resolved = [alert(status=AlertStatus.RESOLVED, severity="critical")]
    quiet = arrived(page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm()).page
    assert quiet is not None
    firing = [alert(severity="critical")]
    later = NOW + timedelta(minutes=1)
    outcome = arrived(quiet, [AlertChange.REFIRED], firing, firing, later, POLICY, Storm())
    assert outcome.events == ["page_refired"]
    dms = [j for j in outcome.jobs if j.kind is JobKind.SLACK_DM]
    assert [(j.key, j.payload["user"], j.payload["role"]) for j in dms] == [
        (f"{quiet.paged[0].dm_job}:refired:v2", PRIMARY, "eng-primary")
    ]
    assert set(dms[0].payload) == {"user", "role", "text", "blocks"}
    assert "Firing again" in str(dms[0].payload["blocks"])  # the message, not only a notification
    timer = job(outcome, JobKind.TIMER)
    assert timer.key == f"page:{page.key}:ack:0" and timer.due_at == later + timedelta(minutes=5)
    assert job(outcome, JobKind.PAGERDUTY_EVENT).key == f"page:{page.key}:pd:trigger:v2"


# -- decisions --------------------------------------------------------------------------


@pytest.mark.rule("paging.decisions")
def test_declare_records_who_and_when_and_cancels_every_timer() -> None:
    page, _ = opened()
    later = NOW + timedelta(minutes=2)
    outcome = lifecycle.decide(page, Decision.DECLARE, PRIMARY, later, POLICY, ONE, 4)
    decided, incident = outcome.page, outcome.incident
    assert decided is not None and incident is not None and outcome.new_incident
    assert (decided.status, decided.decided_by, decided.decided_at) == (
        PageStatus.DECLARED, PRIMARY, later,
    )  # fmt: skip
    assert decided.version == page.version + 1 and decided.incident_number == 4
    assert outcome.cancel == [f"page:{page.key}:ack:{level}" for level in range(4)]
    assert outcome.events[0] == "declared"
    assert (incident.number, incident.title, incident.commander, incident.declared_by) == (
        4, page.title, PRIMARY, PRIMARY,
    )  # fmt: skip
    assert (incident.severity, incident.severity_reason) == (
        page.suggestion.severity, page.suggestion.clause,
    )  # fmt: skip
    assert incident.suggestion == page.suggestion and incident.declared_at == later
    assert (incident.page_key, incident.group_key) == (page.key, page.group_key)
    assert incident.announce_job == "incident:4:announce"
    edit = job(outcome, JobKind.SLACK_UPDATE)
    assert edit.payload["target"] == page.paged[0].dm_job and edit.payload["seq"] == 1
    assert job(outcome, JobKind.SLACK_POST).key == "incident:4:announce"


@pytest.mark.rule("paging.decisions")
def test_declaring_needs_the_next_incident_number() -> None:
    with pytest.raises(ValueError, match="declaring needs the next incident number"):
        lifecycle.decide(the_page(), Decision.DECLARE, PRIMARY, NOW, POLICY, ONE)


@pytest.mark.rule("paging.decisions")
def test_the_refusals_say_who_decided_already() -> None:
    page, _ = opened()
    declared = lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 3).page
    assert declared is not None
    for decision in Decision:
        refused = lifecycle.decide(declared, decision, PRIMARY, NOW, POLICY, ONE, 4)
        assert refused.refusal == f"Already declared as INC-3 by <@{PRIMARY}>."
        assert refused.page is None and refused.jobs == []
    dismissed = lifecycle.decide(page, Decision.DISMISS, RESPONDER, NOW, POLICY, ONE).page
    assert dismissed is not None
    again = lifecycle.decide(dismissed, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE)
    assert again.refusal == f"Already dismissed by <@{RESPONDER}>."
    escalate = lifecycle.decide(dismissed, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE)
    assert escalate.refusal == "This page was already answered; nothing to escalate."


@pytest.mark.rule("paging.decisions")
def test_dismiss_keeps_the_reason_edits_the_dm_and_cancels_every_timer() -> None:
    page, _ = opened()
    outcome = lifecycle.decide(page, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE, reason="test")
    dismissed = outcome.page
    assert dismissed is not None and dismissed.reason == "test" and dismissed.active
    assert (dismissed.status, dismissed.decided_by, dismissed.version) == (
        PageStatus.DISMISSED, PRIMARY, 1,
    )  # fmt: skip
    assert outcome.events == ["dismissed"]
    assert outcome.cancel == [f"page:{page.key}:ack:{level}" for level in range(4)]
    edit = job(outcome, JobKind.SLACK_UPDATE)
    assert edit.payload["target"] == page.paged[0].dm_job
    assert (
        "Not an incident" in str(edit.payload["blocks"])
        or "dismiss" in str(edit.payload["blocks"]).lower()
    )
    # dismissing a page whose alerts all resolved retires it
    resolved = [alert(status=AlertStatus.RESOLVED, severity="critical")]
    quiet = arrived(page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm()).page
    assert quiet is not None
    retired = lifecycle.decide(quiet, Decision.DISMISS, PRIMARY, NOW, POLICY, view(*resolved))
    assert retired.page is not None and not retired.page.active


@pytest.mark.rule("paging.decisions")
def test_a_folded_page_is_decided_without_editing_a_dm_of_its_own() -> None:
    folded = open_page(storm=Storm(recent_pages=9)).page
    assert folded is not None and folded.digest_key is not None
    for decision in (Decision.DISMISS, Decision.DECLARE):
        outcome = lifecycle.decide(folded, decision, PRIMARY, NOW, POLICY, ONE, 1)
        assert JobKind.SLACK_UPDATE not in [j.kind for j in outcome.jobs]


@pytest.mark.rule("paging.who-may-decide")
def test_the_refusal_of_a_stranger_says_who_may_decide() -> None:
    outcome = lifecycle.decide(the_page(), Decision.DECLARE, "U0X", NOW, POLICY, ONE, 1)
    assert outcome.refusal == (
        "Only the people paged for this and the configured responders can decide on it."
    )
    assert outcome.events == ["unauthorized"]


# -- escalation -------------------------------------------------------------------------


@pytest.mark.rule("paging.escalate-button")
def test_a_successful_escalate_carries_no_refusal() -> None:
    """A refusal on a successful Escalate makes ``units.decide`` drop the outcome: the
    button would silently do nothing."""
    page, _ = opened()
    outcome = lifecycle.decide(page, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE)
    assert outcome.refusal is None
    assert outcome.page is not None and outcome.page.level == 1
    assert outcome.events == ["escalated:button"]
    assert outcome.events[0].role == "eng-secondary"
    assert [t.kind for t in outcome.timeline] == ["page_escalated"]
    entry = outcome.timeline[0]
    assert (entry.at, entry.actor, entry.data) == (NOW, PRIMARY, {"to": "eng-secondary"})


@pytest.mark.rule("paging.escalate-button")
def test_escalate_at_the_last_level_says_there_is_nobody_further() -> None:
    page, _ = opened()
    second = lifecycle.decide(page, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE).page
    assert second is not None
    third = lifecycle.decide(second, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE).page
    assert third is not None and third.level == 2
    last = lifecycle.decide(third, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE)
    assert last.refusal == "There is nobody further to escalate to."
    assert last.page is None and last.jobs == [] and last.events == ["escalation_exhausted"]


@pytest.mark.rule("paging.escalate-button")
def test_a_second_click_is_refused_naming_who_was_paged() -> None:
    page, _ = opened()
    escalated = lifecycle.decide(page, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE,
                                 expected_level=0).page  # fmt: skip
    assert escalated is not None
    again = lifecycle.decide(escalated, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE,
                             expected_level=0)  # fmt: skip
    assert again.refusal == (
        f"Already escalated: paged <@{PRIMARY}> (eng-primary), <@{SECONDARY}> (eng-secondary)."
    )
    # the level it shows is the current one: it escalates
    onward = lifecycle.decide(escalated, Decision.ESCALATE, PRIMARY, NOW, POLICY, ONE,
                              expected_level=1)  # fmt: skip
    assert onward.refusal is None and onward.page is not None and onward.page.level == 2


@pytest.mark.rule("paging.ack-timeout-escalates")
def test_a_timeout_reminds_everyone_paged_then_pages_the_next_level() -> None:
    page, _ = opened()
    later = NOW + timedelta(minutes=5)
    outcome = lifecycle.ack_timeout(page, 0, later, POLICY, ONE)
    escalated = outcome.page
    assert escalated is not None and escalated.level == 1 and escalated.version == 1
    assert outcome.events == ["escalated:timeout"]
    assert outcome.events[0].role == "eng-secondary"
    reminder, dm = [j for j in outcome.jobs if j.kind is JobKind.SLACK_DM]
    assert reminder.key == f"{page.paged[0].dm_job}:remind:0"
    assert (reminder.payload["user"], reminder.payload["role"]) == (PRIMARY, "eng-primary")
    assert set(reminder.payload) == {"user", "role", "text", "blocks"}
    assert dm.key == f"page:{page.key}:dm:1:{SECONDARY}"
    assert (dm.payload["user"], dm.payload["role"]) == (SECONDARY, "eng-secondary")
    assert [(p.user, p.role, p.at) for p in escalated.paged] == [
        (PRIMARY, "eng-primary", NOW), (SECONDARY, "eng-secondary", later),
    ]  # fmt: skip
    # the DMs already sent show the new state, and the next level has its own timer
    edits = [j for j in outcome.jobs if j.kind is JobKind.SLACK_UPDATE]
    assert [e.payload["target"] for e in edits] == [p.dm_job for p in escalated.paged]
    timer = job(outcome, JobKind.TIMER)
    assert timer.key == f"page:{page.key}:ack:1"
    assert timer.payload == {"event": "ack_timeout", "page": page.key, "level": 1}
    assert timer.due_at == later + timedelta(minutes=5)
    assert outcome.timeline[0].actor == "router"
    assert page.level == 0 and len(page.paged) == 1  # the given page is not changed


@pytest.mark.rule("paging.ack-timeout-escalates")
def test_a_stale_or_resolved_timer_escalates_nothing() -> None:
    page, _ = opened()
    assert lifecycle.ack_timeout(page, 1, NOW, POLICY, ONE) == Outcome()
    resolved = page.model_copy(update={"all_resolved": True})
    assert lifecycle.ack_timeout(resolved, 0, NOW, POLICY, ONE) == Outcome()


@pytest.mark.rule("paging.escalation-exhausted")
def test_a_timeout_at_the_last_level_tells_the_operator_channel() -> None:
    page, _ = opened()
    for level in (0, 1):
        page = lifecycle.ack_timeout(page, level, NOW, POLICY, ONE).page  # type: ignore[assignment]
    outcome = lifecycle.ack_timeout(page, 2, NOW, POLICY, ONE)
    assert outcome.events == ["escalated:timeout", "escalation_exhausted"]
    notice = job(outcome, JobKind.SLACK_POST)
    assert notice.key == f"page:{page.key}:exhausted"
    assert notice.payload == {
        "channel": "C0OPS",
        "text": f":warning: Page {page.key} was escalated to every on-call level without "
        "a decision.",
    }
    assert outcome.page is not None and outcome.page.level == 2
    assert outcome.timeline[0].data == {"to": ""}
    # everyone was reminded once more
    assert [j.payload["user"] for j in outcome.jobs if j.kind is JobKind.SLACK_DM] == [
        PRIMARY, SECONDARY, LEAD,
    ]  # fmt: skip


@pytest.mark.rule("paging.escalation-exhausted")
def test_without_an_operator_channel_the_exhausted_page_posts_nothing() -> None:
    policy = Policy(**{**POLICY.__dict__, "operator_channel": None})
    page = open_page(policy=policy).page
    for level in (0, 1):
        page = lifecycle.ack_timeout(page, level, NOW, policy, ONE).page  # type: ignore[arg-type]
    assert page is not None
    outcome = lifecycle.ack_timeout(page, 2, NOW, policy, ONE)
    assert JobKind.SLACK_POST not in [j.kind for j in outcome.jobs]


@pytest.mark.rule("paging.never-page-twice")
def test_escalation_skips_someone_already_paged() -> None:
    """One person on call as eng-primary and eng-secondary is paged once: the timeout
    goes on to leadership."""
    policy = rotations(eng_primary=[PRIMARY], eng_secondary=[PRIMARY], leadership=[LEAD])
    page = open_page(policy=policy).page
    assert page is not None
    outcome = lifecycle.ack_timeout(page, 0, NOW, policy, ONE)
    assert outcome.page is not None and outcome.page.level == 2
    assert [p.user for p in outcome.page.paged] == [PRIMARY, LEAD]
    assert outcome.events == ["escalated:timeout"]
    assert outcome.events[0].role == "leadership"


@pytest.mark.rule("paging.never-page-twice")
def test_on_call_after_skips_the_given_people_and_roles_nobody_holds() -> None:
    assert lifecycle.on_call_after(0, NOW, POLICY) == ("eng-secondary", SECONDARY)
    assert lifecycle.on_call_after(0, NOW, POLICY, [SECONDARY]) == ("leadership", LEAD)
    assert lifecycle.on_call_after(0, NOW, POLICY, [SECONDARY, LEAD]) == (None, None)
    assert lifecycle.on_call_after(2, NOW, POLICY) == (None, None)
    no_secondary = rotations(eng_primary=[PRIMARY], leadership=[LEAD])
    assert lifecycle.on_call_after(0, NOW, no_secondary) == ("leadership", LEAD)
    assert lifecycle.first_on_call(no_secondary, NOW) == ("eng-primary", PRIMARY)


@pytest.mark.rule("paging.nobody-on-call")
def test_first_on_call_answers_for_the_policy_and_time_it_was_asked() -> None:
    other = rotations(eng_primary=[SECONDARY], eng_secondary=[PRIMARY])
    assert lifecycle.first_on_call(POLICY, NOW) == ("eng-primary", PRIMARY)
    assert lifecycle.first_on_call(other, NOW) == ("eng-primary", SECONDARY)
    assert lifecycle.first_on_call(POLICY, NOW) == ("eng-primary", PRIMARY)
    # a primary rotation that starts later: at first nobody, then its member
    late = rotations(eng_primary=[PRIMARY])
    late.schedule._rotations["eng-primary"] = Schedule(
        OncallConfig.model_validate(
            {
                "rotations": {
                    "eng-primary": {
                        "members": [PRIMARY],
                        "start": "2026-03-02T11:00:00",
                        "handoff_time": "11:00",
                        "timezone": "UTC",
                    }
                }
            }
        )
    )._rotations["eng-primary"]
    assert lifecycle.first_on_call(late, NOW) == ("eng-primary", None)
    assert lifecycle.first_on_call(late, NOW + timedelta(hours=2)) == ("eng-primary", PRIMARY)


@pytest.mark.rule("paging.nobody-on-call")
def test_with_nobody_on_call_the_operator_hears_which_page_reached_nobody() -> None:
    policy = rotations(eng_primary=[PRIMARY])
    policy.schedule._rotations["eng-primary"] = Schedule(
        OncallConfig.model_validate(
            {
                "rotations": {
                    "eng-primary": {
                        "members": [PRIMARY],
                        "start": "2030-01-01T09:00:00",
                        "handoff_time": "09:00",
                        "timezone": "UTC",
                    }
                }
            }
        )
    )._rotations["eng-primary"]
    outcome = open_page(policy=policy)
    assert outcome.page is not None and outcome.page.assignee is None
    assert outcome.events == ["page_opened", "nobody_on_call"]
    assert outcome.jobs == [
        outcome.jobs[0].model_copy(
            update={
                "kind": JobKind.SLACK_POST,
                "key": f"page:{outcome.page.key}:nobody",
                "payload": {
                    "channel": "C0OPS",
                    "text": f":warning: Nobody is on call for any role; a page "
                    f"({outcome.page.key}) was not delivered to anyone.",
                },
            }
        )
    ]
    assert outcome.jobs[0].kind is JobKind.SLACK_POST


# -- storms -----------------------------------------------------------------------------


@pytest.mark.rule("paging.storm-digest")
def test_the_storm_limit_counts_pages_one_by_one_in_the_window() -> None:
    policy = make_policy(storm_limit=3)
    assert open_page(storm=Storm(recent_pages=2), policy=policy).digest is None
    assert open_page(storm=Storm(recent_pages=3), policy=policy).digest is not None


@pytest.mark.rule("paging.storm-digest")
def test_a_storm_window_has_one_digest_per_person() -> None:
    window = POLICY.paging.storm_window_seconds
    start = NOW.replace(minute=0)
    key = lifecycle.digest_key(PRIMARY, start, POLICY)
    assert key == f"digest:{PRIMARY}:{int(start.timestamp()) // window}"
    assert lifecycle.digest_key(PRIMARY, start + timedelta(seconds=1), POLICY) == key
    assert lifecycle.digest_key(SECONDARY, start, POLICY) != key


@pytest.mark.rule("paging.storm-digest")
def test_the_first_folded_page_starts_the_digest_its_timer_and_one_pagerduty_ring() -> None:
    outcome = open_page(storm=Storm(recent_pages=9))
    page, digest = outcome.page, outcome.digest
    assert page is not None and digest is not None
    key = lifecycle.digest_key(PRIMARY, NOW, POLICY)
    assert (digest.key, digest.assignee, digest.opened_at, digest.pages, digest.version) == (
        key, PRIMARY, NOW, 1, 1,
    )  # fmt: skip
    assert [(p.user, p.role, p.dm_job) for p in digest.paged] == [(PRIMARY, "eng-primary", key)]
    assert [(p.user, p.role, p.dm_job) for p in page.paged] == [(PRIMARY, "eng-primary", key)]
    assert page.assignee == PRIMARY
    assert outcome.events == ["page_opened", "page_folded"]
    timer, ring = outcome.jobs
    assert timer.key == f"{key}:ack:0" and timer.due_at == NOW + timedelta(minutes=5)
    assert timer.payload == {"event": "digest_timeout", "digest": key, "level": 0}
    assert ring.key == f"{key}:pd:trigger"
    assert ring.payload == {
        "event_action": "trigger",
        "dedup_key": f"router:{key}",
        "payload": {
            "summary": "Alert storm: suspected incidents folded into a digest",
            "source": "incident-router",
            "severity": "critical",
        },
    }
    no_pd = Policy(**{**POLICY.__dict__, "pagerduty": False})
    assert [j.kind for j in open_page(storm=Storm(recent_pages=9), policy=no_pd).jobs] == [
        JobKind.TIMER
    ]


@pytest.mark.rule("paging.storm-digest")
def test_a_later_folded_page_joins_the_digest_without_changing_the_given_one() -> None:
    first = open_page(storm=Storm(recent_pages=9)).digest
    assert first is not None
    outcome = open_page(alert(group="g2"), storm=Storm(recent_pages=9, digest=first))
    digest = outcome.digest
    assert digest is not None and outcome.jobs == []
    assert (digest.key, digest.pages, digest.version) == (first.key, 2, 2)
    assert (first.pages, first.version, len(first.paged)) == (1, 1, 1)
    assert outcome.page is not None and outcome.page.digest_position == 2


@pytest.mark.rule("paging.storm-digest")
def test_a_digest_part_is_posted_once_then_edited_with_the_newest_version() -> None:
    digest = Digest(key="digest:U:1", assignee=PRIMARY, opened_at=NOW, pages=2)
    lines = {0: [digest_line(1), digest_line(2)]}
    posted, [dm] = lifecycle.digest_parts(digest, lines)
    assert dm.kind is JobKind.SLACK_DM and dm.key == "digest:U:1"
    assert set(dm.payload) == {"user", "role", "text", "blocks"}
    assert (dm.payload["user"], dm.payload["role"]) == (PRIMARY, "digest")
    assert dm.payload["text"] == "2 more suspected incidents (alert storm: folded into one digest)"
    assert "Group1" in str(dm.payload["blocks"]) and "Group2" in str(dm.payload["blocks"])
    assert (posted.version, posted.parts_posted, digest.version) == (1, 1, 0)
    edited, [edit] = lifecycle.digest_parts(posted, {0: [digest_line(1)]})
    assert edit.kind is JobKind.SLACK_UPDATE and edit.key == "digest:U:1:v2"
    assert edit.payload["target"] == "digest:U:1" and edit.payload["seq"] == 2
    assert edit.payload["text"] == dm.payload["text"] and "Group1" in str(edit.payload["blocks"])
    assert edited.parts_posted == 1


@pytest.mark.rule("paging.storm-digest")
def test_a_digest_part_posted_later_follows_the_one_before_it() -> None:
    digest = Digest(key="digest:U:1", assignee=PRIMARY, opened_at=NOW, pages=101,
                    parts_posted=1)  # fmt: skip
    posted, [dm] = lifecycle.digest_parts(digest, {1: [digest_line(101)]})
    assert dm.kind is JobKind.SLACK_DM and dm.key == "digest:U:1:part:1"
    assert dm.payload["after"] == "digest:U:1" and posted.parts_posted == 2
    assert "Group101" in str(dm.payload["blocks"])
    assert (dm.payload["user"], dm.payload["role"]) == (PRIMARY, "digest")
    assert "101" in dm.payload["text"]


def folded_digest(level: int = 0) -> Digest:
    digest = open_page(storm=Storm(recent_pages=9)).digest
    assert digest is not None
    return digest.model_copy(update={"level": level})


@pytest.mark.rule("paging.digest-escalates")
def test_an_unanswered_digest_goes_to_eng_secondary_then_leadership() -> None:
    digest = folded_digest()
    waiting = [digest_line(1), digest_line(2)]
    later = NOW + timedelta(minutes=5)
    outcome = lifecycle.digest_timeout(digest, 0, waiting, later, POLICY)
    escalated = outcome.digest
    assert escalated is not None and escalated.level == 1
    assert escalated.version == digest.version + 1
    assert outcome.events == ["escalated:timeout"]
    assert outcome.events[0].role == "eng-secondary"
    key = f"{digest.key}:to:{SECONDARY}"
    dm = job(outcome, JobKind.SLACK_DM)
    assert dm.key == key and set(dm.payload) == {"user", "role", "text", "blocks"}
    assert (dm.payload["user"], dm.payload["role"]) == (SECONDARY, "eng-secondary")
    assert dm.payload["text"] == (
        "2 suspected incidents still need a decision (alert storm digest)"
    )
    assert f"<@{PRIMARY}>" in str(dm.payload["blocks"])  # whose digest it was
    assert [(p.user, p.role, p.at, p.dm_job) for p in escalated.paged][1:] == [
        (SECONDARY, "eng-secondary", later, key)
    ]
    assert len(digest.paged) == 1  # the given digest is not changed
    timer = job(outcome, JobKind.TIMER)
    assert timer.key == f"{digest.key}:ack:1" and timer.due_at == later + timedelta(minutes=5)
    # one level at a time: the next timeout goes to leadership, not straight past it
    onward = lifecycle.digest_timeout(escalated, 1, waiting, later, POLICY)
    assert onward.digest is not None and onward.digest.level == 2
    assert job(onward, JobKind.SLACK_DM).payload["user"] == LEAD
    assert onward.events == ["escalated:timeout"]
    assert onward.events[0].role == "leadership"


@pytest.mark.rule("paging.digest-escalates")
def test_an_escalated_digest_of_many_pages_is_posted_in_parts_in_order() -> None:
    digest = folded_digest()
    waiting = [digest_line(i) for i in range(1, PART_SIZE + 3)]
    outcome = lifecycle.digest_timeout(digest, 0, waiting, NOW, POLICY)
    dms = [j for j in outcome.jobs if j.kind is JobKind.SLACK_DM]
    key = f"{digest.key}:to:{SECONDARY}"
    assert [(j.key, j.payload.get("after")) for j in dms] == [
        (key, None), (f"{key}:part:1", key),
    ]  # fmt: skip
    assert "Group100" in str(dms[0]["blocks"] if False else dms[0].payload["blocks"])
    assert "Group101" not in str(dms[0].payload["blocks"])
    assert "Group101" in str(dms[1].payload["blocks"])
    assert [(j.payload["user"], j.payload["role"]) for j in dms] == [
        (SECONDARY, "eng-secondary"), (SECONDARY, "eng-secondary"),
    ]  # fmt: skip
    assert all(j.payload["text"] for j in dms)
    assert str(PART_SIZE + 2) in dms[0].payload["text"]


@pytest.mark.rule("paging.never-page-twice")
def test_an_escalated_digest_skips_people_already_paged() -> None:
    policy = rotations(eng_primary=[PRIMARY], eng_secondary=[PRIMARY], leadership=[LEAD])
    digest = open_page(storm=Storm(recent_pages=9), policy=policy).digest
    assert digest is not None
    outcome = lifecycle.digest_timeout(digest, 0, [digest_line(1)], NOW, policy)
    assert job(outcome, JobKind.SLACK_DM).payload["user"] == LEAD
    assert outcome.digest is not None and outcome.digest.level == 2


@pytest.mark.rule("paging.escalation-exhausted")
def test_a_digest_through_every_level_tells_the_operator_channel() -> None:
    digest = folded_digest(level=2)
    outcome = lifecycle.digest_timeout(digest, 2, [digest_line(1), digest_line(2)], NOW, POLICY)
    assert outcome.events == ["escalation_exhausted"] and outcome.digest is None
    assert [(j.kind, j.key, j.payload) for j in outcome.jobs] == [
        (JobKind.SLACK_POST, f"{digest.key}:exhausted", {
            "channel": "C0OPS",
            "text": ":warning: A storm digest (2 pages) was escalated to every on-call level "
            "without a decision.",
        }),
    ]  # fmt: skip


@pytest.mark.rule("paging.digest-escalates")
def test_a_stale_digest_timer_does_nothing() -> None:
    digest = folded_digest(level=1)
    assert lifecycle.digest_timeout(digest, 0, [digest_line(1)], NOW, POLICY) == Outcome()


# -- decided pages and their incidents ------------------------------------------------


@pytest.mark.rule("paging.page-afresh")
def test_the_retired_page_and_the_quiet_step_aside_carry_a_newer_version() -> None:
    page, _ = opened()
    declared = lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1).page
    assert declared is not None
    firing = [alert("f9")]
    fresh = arrived(declared, [AlertChange.NEW], firing, firing, NOW, POLICY, Storm(),
                    incident_open=False)  # fmt: skip
    assert fresh.retire is not None
    assert (fresh.retire.active, fresh.retire.version) == (False, declared.version + 1)
    repeat = arrived(declared, [AlertChange.REPEAT], firing, firing, NOW, POLICY, Storm(),
                     incident_open=False)  # fmt: skip
    assert repeat.page is not None
    assert (repeat.page.active, repeat.page.version) == (False, declared.version + 1)
    assert repeat.jobs == [] and not repeat.new_page
    # a page's incident is taken as open unless the caller says otherwise
    default = lifecycle.alerts_arrived(
        declared, [AlertChange.NEW], firing, view(alert(), *firing), NOW, POLICY, Storm()
    )
    assert not default.new_page and default.page is not None and default.page.active


@pytest.mark.rule("paging.page-afresh")
def test_a_fresh_page_after_dismissal_keeps_the_cut_alerts_count() -> None:
    page, _ = opened()
    dismissed = lifecycle.decide(page, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE).page
    assert dismissed is not None
    firing = [alert("f9")]
    cut = Truncation(count=4)
    fresh = lifecycle.alerts_arrived(
        dismissed, [AlertChange.NEW], firing, view(*firing), NOW + timedelta(hours=1), POLICY,
        Storm(), truncation=cut,
    )  # fmt: skip
    assert fresh.new_page and fresh.page is not None and fresh.page.truncation == cut


@pytest.mark.rule("paging.new-alerts-edit-the-page")
def test_alerts_of_a_declared_page_are_noted_in_the_incident_thread() -> None:
    page, _ = opened()
    declared = lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 5).page
    assert declared is not None
    new, gone = alert("f2"), alert("f1", AlertStatus.RESOLVED, severity="critical")
    both = arrived(declared, [AlertChange.NEW, AlertChange.RESOLVED], [new, gone], [new, gone],
                   NOW, POLICY, Storm())  # fmt: skip
    note = job(both, JobKind.SLACK_POST)
    assert note.key == f"page:{page.key}:thread:{declared.version + 1}"
    assert note.payload == {
        "channel": None,
        "thread_of": "incident:5:announce",
        "text": "Alerts: 1 alert(s) started firing, 1 alert(s) resolved; 1 still firing.",
    }
    [entry] = both.timeline
    assert (entry.at, entry.actor, entry.kind, entry.data) == (
        NOW, "router", "alerts_changed", {"firing": 1, "resolved": 1},
    )  # fmt: skip
    quiet = arrived(declared, [AlertChange.RESOLVED, AlertChange.RESOLVED],
                    [gone], [gone], NOW, POLICY, Storm())  # fmt: skip
    assert job(quiet, JobKind.SLACK_POST).payload["text"] == (
        "Alerts: 2 alert(s) resolved; all alerts resolved."
    )
    refired = arrived(declared, [AlertChange.REFIRED], [alert()], [alert()], NOW, POLICY,
                      Storm())  # fmt: skip
    assert job(refired, JobKind.SLACK_POST).payload["text"] == (
        "Alerts: 1 alert(s) started firing; 1 still firing."
    )
    # a change that is neither (a count of cut alerts) posts nothing in the thread
    cut = lifecycle.alerts_arrived(
        declared, [AlertChange.REPEAT], [alert()], view(alert()), NOW, POLICY, Storm(),
        truncation=Truncation(count=2),
    )  # fmt: skip
    assert JobKind.SLACK_POST not in [j.kind for j in cut.jobs]


# -- what is not paged --------------------------------------------------------------------


@pytest.mark.rule("paging.vulnerability-not-paged")
def test_a_vulnerability_not_exploited_is_recorded_but_not_pageable() -> None:
    from router.core.triage import TriageConfig, triage

    vulnerable = alert("v", category="vulnerability")
    exploited = alert("x", category="vulnerability", exploited="true")
    other = alert("o")
    kept = triage([vulnerable, exploited, other], TriageConfig())
    assert [(a.fingerprint, a.pageable) for a in kept] == [("v", False), ("x", True), ("o", True)]
    # the page holds only the pageable alerts
    pageable = [a for a in kept if a.pageable]
    outcome = arrived(None, [AlertChange.NEW] * 2, pageable, pageable, NOW, POLICY, Storm())
    assert outcome.page is not None and outcome.page.counts is not None
    assert outcome.page.counts.firing == 2


# -- what the survivors of mutation testing showed unpinned ------------------------------


@pytest.mark.rule("paging.decisions")
def test_a_decision_counts_the_version_on_from_where_the_page_was() -> None:
    page = the_page().model_copy(update={"version": 6})
    for decision in (Decision.DECLARE, Decision.DISMISS, Decision.ESCALATE):
        outcome = lifecycle.decide(page, decision, PRIMARY, NOW, POLICY, ONE, 1)
        assert outcome.page is not None and outcome.page.version == 7
    dismissed = lifecycle.decide(page, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE).page
    assert dismissed is not None and dismissed.decided_at == NOW


@pytest.mark.rule("paging.decisions")
def test_the_incident_keeps_the_cut_alerts_and_names_its_page_and_alerts() -> None:
    cut = Truncation(count=9)
    outcome = lifecycle.alerts_arrived(
        None, [AlertChange.NEW], [alert()], None, NOW, POLICY, Storm(), truncation=cut
    )
    assert outcome.page is not None
    declared = lifecycle.decide(outcome.page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE, 1)
    assert declared.incident is not None and declared.incident.truncation == cut
    assert declared.timeline[0].data["page"] == outcome.page.key
    announce = job(declared, JobKind.SLACK_POST)
    assert "p99 &gt; 1s" in str(announce.payload["blocks"])  # the page's alerts are shown


@pytest.mark.rule("paging.decisions")
def test_a_dismissed_page_that_resolves_is_no_longer_active() -> None:
    page, _ = opened()
    dismissed = lifecycle.decide(page, Decision.DISMISS, PRIMARY, NOW, POLICY, ONE).page
    assert dismissed is not None and dismissed.active is True
    resolved = [alert(status=AlertStatus.RESOLVED, severity="critical")]
    quiet = arrived(dismissed, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm())
    assert quiet.page is not None and quiet.page.active is False
    retired = lifecycle.decide(
        quiet.page.model_copy(update={"status": PageStatus.OPEN}), Decision.DISMISS, PRIMARY,
        NOW, POLICY, view(*resolved),
    )  # fmt: skip
    assert retired.page is not None and retired.page.active is False


@pytest.mark.rule("paging.one-page-per-group")
def test_a_page_shows_at_most_max_alerts_shown_and_counts_the_rest() -> None:
    policy = make_policy(max_alerts_shown=1)
    outcome = open_page(alert("a", instance="api-1"), alert("b", instance="api-2"), policy=policy)
    blocks = str(job(outcome, JobKind.SLACK_DM).payload["blocks"])
    assert ("api-1" in blocks) != ("api-2" in blocks)  # one of the two shown
    assert "1 more" in blocks


@pytest.mark.rule("paging.suggested-severity")
def test_the_group_labels_of_cut_alerts_raise_the_suggestion() -> None:
    cut = Truncation(count=3, labels={"data_loss": "true"})  # decides the first rule
    warning = [alert(severity="warning")]
    opened_cut = lifecycle.alerts_arrived(
        None, [AlertChange.NEW], warning, None, NOW, POLICY, Storm(), truncation=cut
    )
    assert opened_cut.page is not None
    assert opened_cut.page.suggestion.severity.value == "critical"
    page = open_page(alert(severity="warning")).page
    assert page is not None and page.suggestion.severity.value == "medium"
    updated = lifecycle.alerts_arrived(
        page, [AlertChange.NEW], warning, view(*warning), NOW, POLICY, Storm(), truncation=cut
    )
    assert updated.page is not None and updated.page.suggestion.severity.value == "critical"


@pytest.mark.rule("paging.all-resolved")
def test_firing_again_also_edits_the_dms_already_sent() -> None:
    page, _ = opened()
    resolved = [alert(status=AlertStatus.RESOLVED, severity="critical")]
    quiet = arrived(page, [AlertChange.RESOLVED], resolved, resolved, NOW, POLICY, Storm()).page
    assert quiet is not None
    firing = [alert(severity="critical")]
    outcome = arrived(quiet, [AlertChange.REFIRED], firing, firing, NOW, POLICY, Storm())
    assert [j.kind for j in outcome.jobs].count(JobKind.SLACK_UPDATE) == 1
    assert [j.kind for j in outcome.jobs].count(JobKind.PAGERDUTY_EVENT) == 1


def test_the_errors_of_a_wrong_call_say_exactly_what_is_missing() -> None:
    page, _ = opened()
    with pytest.raises(ValueError) as no_alerts:
        lifecycle.alerts_arrived(page, [AlertChange.NEW], [alert()], None, NOW, POLICY, Storm())
    assert str(no_alerts.value) == "a page's alerts are needed to update it"
    with pytest.raises(ValueError) as no_number:
        lifecycle.decide(page, Decision.DECLARE, PRIMARY, NOW, POLICY, ONE)
    assert str(no_number.value) == "declaring needs the next incident number"


@pytest.mark.rule("paging.digest-escalates")
def test_the_digest_messages_name_whose_digest_and_who_it_went_to() -> None:
    digest = Digest(key="digest:U:1", assignee=PRIMARY, opened_at=NOW, pages=1)
    _, [dm] = lifecycle.digest_parts(digest, {0: [digest_line(1)]})
    assert f"<@{PRIMARY}>" in str(dm.payload["blocks"])
    escalated = lifecycle.digest_timeout(folded_digest(), 0, [digest_line(1)], NOW, POLICY)
    assert f"<@{SECONDARY}>" in str(job(escalated, JobKind.SLACK_DM).payload["blocks"])


@pytest.mark.rule("paging.nobody-on-call")
def test_first_on_call_remembers_the_role_it_found_and_not_another_policys_answer() -> None:
    """With eng-primary not started yet, eng-secondary is first, asked once or twice; and
    an answer remembered for an object whose id this policy now has is not used."""
    policy = rotations(eng_primary=[PRIMARY], eng_secondary=[SECONDARY])
    policy.schedule._rotations["eng-primary"] = Schedule(
        OncallConfig.model_validate({"rotations": {"eng-primary": {
            "members": [PRIMARY], "start": "2030-01-01T09:00:00", "handoff_time": "09:00",
            "timezone": "UTC"}}})
    )._rotations["eng-primary"]  # fmt: skip
    assert lifecycle.first_on_call(policy, NOW) == ("eng-secondary", SECONDARY)
    assert lifecycle.first_on_call(policy, NOW) == ("eng-secondary", SECONDARY)
    lifecycle._FIRST_ON_CALL[id(POLICY)] = (policy, NOW, ("eng-secondary", SECONDARY))
    assert lifecycle.first_on_call(POLICY, NOW) == ("eng-primary", PRIMARY)
