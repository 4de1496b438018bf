"""Incident channels as pure steps: what a declaration, a change and the end ask Slack for
(``incident.channel.mode: channel``), without a network or a clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from router.core import duties, lifecycle, messages
from router.core.channel_jobs import CHANNEL_PLACEHOLDER, channel_key
from router.core.commands import HELP, VERB, Command, UsageError, parse
from router.core.duties import Context
from router.core.incident import Incident, IncidentStatus
from router.core.jobs import Job, JobKind
from router.core.page import Decision, Page, PageAlerts
from router.core.policy import Outcome, Policy
from router.core.policy_config import ChannelConfig
from router.core.severity import DEFAULT_RULES, Severity, Suggestion, suggest
from tests.unit.test_duties import IC, OTHER, RESPONDER, make_policy

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEAM = "U0TEAMMATE"


def channel_policy(**channel: object) -> Policy:
    config = ChannelConfig.model_validate({"responders": [TEAM], **channel})
    return dataclasses.replace(make_policy(github=False), channels=config)


def declare(policy: Policy, **options: object) -> Outcome:
    return duties.declare(
        7, "Checkout errors", IC, Context(NOW, policy), suggest([], DEFAULT_RULES), **options
    )  # type: ignore[arg-type]


def jobs_of(outcome: Outcome, kind: JobKind) -> list[Job]:
    return [j for j in outcome.jobs if j.kind is kind]


def test_a_declaration_makes_the_channel_then_its_people_topic_summary_and_declaration() -> None:
    outcome = declare(channel_policy())
    incident = outcome.incident
    assert incident is not None and incident.channel_job == channel_key(7)
    [create] = jobs_of(outcome, JobKind.SLACK_CHANNEL)
    assert create.payload == {
        "name": "inc-7-checkout-errors",
        "private": True,
        "incident": 7,
        "on_result": "incident_channel",
    }
    # everything else acts on the channel that job makes
    [invite] = jobs_of(outcome, JobKind.SLACK_INVITE)
    assert invite.payload == {"channel_of": create.key, "users": [IC, TEAM]}
    [topic] = jobs_of(outcome, JobKind.SLACK_TOPIC)
    assert topic.payload["topic"] == f"INC-7 · low · IC <@{IC}> · active · Checkout errors"
    assert incident.topic == topic.payload["topic"]
    posts = {j.key: j.payload for j in jobs_of(outcome, JobKind.SLACK_POST)}
    summary = posts[incident.announce_job]
    assert summary["channel_of"] == create.key and "incident.resolve" in str(summary["blocks"])
    declaration = posts["incident:7:declaration"]
    assert declaration["channel"] == "C0INC" and declaration["replace_from"] == create.key
    assert f"<#{CHANNEL_PLACEHOLDER}>" in str(declaration["blocks"])
    assert "Checkout errors" in declaration["text"]


def test_the_channel_summary_is_the_announcement_with_the_controls_and_console_link() -> None:
    policy = dataclasses.replace(channel_policy(), console_url="https://router.example")
    outcome = declare(policy, description="Checkout returns 502", confidential=True)
    incident = outcome.incident
    assert incident is not None
    [summary] = [j for j in jobs_of(outcome, JobKind.SLACK_POST) if j.key == incident.announce_job]
    text, blocks = messages.announcement(
        incident, PageAlerts(), policy.paging.max_alerts_shown, policy.console_url,
        in_channel=True,
    )  # fmt: skip
    assert (summary.payload["text"], summary.payload["blocks"]) == (text, blocks)
    assert "https://router.example" in str(blocks)
    # the channel's own jobs come first, then what acts on it
    assert [j.kind for j in outcome.jobs][:2] == [JobKind.SLACK_CHANNEL, JobKind.SLACK_INVITE]
    [entry] = outcome.timeline
    assert entry.kind == "declared"
    assert entry.data["confidential"] == "true"
    assert entry.data["description"] == "Checkout returns 502"
    plain = declare(policy).timeline[0]
    assert "confidential" not in plain.data and "description" not in plain.data


def test_thread_mode_asks_for_no_channel() -> None:
    outcome = declare(make_policy(github=False))
    assert outcome.incident is not None and outcome.incident.channel_job is None
    assert jobs_of(outcome, JobKind.SLACK_CHANNEL) == []
    [announce] = jobs_of(outcome, JobKind.SLACK_POST)
    assert announce.payload["channel"] == "C0INC"


def test_a_confidential_declaration_names_no_title_outside_the_channel() -> None:
    outcome = declare(channel_policy(), confidential=True)
    [create] = jobs_of(outcome, JobKind.SLACK_CHANNEL)
    assert create.payload["name"] == "inc-7"
    [topic] = jobs_of(outcome, JobKind.SLACK_TOPIC)
    assert "Checkout" not in topic.payload["topic"]
    declaration = next(j for j in outcome.jobs if j.key == "incident:7:declaration")
    assert "Checkout" not in str(declaration.payload)
    summary = next(j for j in outcome.jobs if j.key == "incident:7:announce")
    assert "Checkout errors" in summary.payload["text"]  # its own channel has it all


def test_a_security_rule_makes_the_incident_from_a_page_confidential() -> None:
    policy = channel_policy()
    breach = Suggestion(
        severity=Severity.HIGH, clause="suspected severe security breach", rule="security-breach"
    )
    page = Page(key="p1", group_key="g", source="alertmanager", title="Odd logins",
                opened_at=NOW, suggestion=breach)  # fmt: skip
    outcome = lifecycle.decide(
        page, Decision.DECLARE, RESPONDER, NOW, policy, PageAlerts(), incident_number=3
    )
    assert outcome.incident is not None and outcome.incident.confidential


def test_the_topic_follows_severity_and_commander_and_only_when_they_change() -> None:
    policy = channel_policy()
    ctx = Context(NOW, policy)
    incident = declare(policy).incident
    assert incident is not None
    raised = duties.change_severity(incident, IC, Severity.CRITICAL, "worse", ctx)
    [topic] = jobs_of(raised, JobKind.SLACK_TOPIC)
    assert topic.payload["topic"].startswith(f"INC-7 · critical · IC <@{IC}> · active")
    after = raised.incident
    assert after is not None
    update = duties.status_update(after, IC, "still looking", ctx)
    assert jobs_of(update, JobKind.SLACK_TOPIC) == []  # nothing the topic says changed
    edited = [j.payload["target"] for j in jobs_of(update, JobKind.SLACK_UPDATE)]
    assert edited == ["incident:7:announce"]  # the summary; the declaration is as it was
    edited = [j.payload["target"] for j in jobs_of(raised, JobKind.SLACK_UPDATE)]
    assert sorted(edited) == ["incident:7:announce", "incident:7:declaration"]
    offered = duties.offer_handoff(after, IC, OTHER, ctx)
    [invite] = jobs_of(offered, JobKind.SLACK_INVITE)
    assert invite.payload["users"] == [OTHER]  # they read the channel before accepting


def test_invite_adds_one_person_and_needs_a_channel() -> None:
    policy = channel_policy()
    incident = declare(policy).incident
    assert incident is not None
    outcome = duties.invite(incident, IC, RESPONDER, Context(NOW, policy))
    after = outcome.incident
    assert after is not None and after.version == incident.version + 1
    [invite] = jobs_of(outcome, JobKind.SLACK_INVITE)
    assert invite.payload["users"] == [RESPONDER]
    assert invite.key == f"incident:7:invite:invite:v{after.version}"
    [entry] = outcome.timeline
    assert (entry.actor, entry.kind, entry.data) == (IC, "invited", {"user": RESPONDER})
    [said] = [j for j in outcome.jobs if j.key.startswith("incident:7:thread:")]
    assert said.payload["text"] == f"<@{IC}> invited <@{RESPONDER}>."
    assert said.key == f"incident:7:thread:invite:v{after.version}"
    assert outcome.reply == f"Inviting <@{RESPONDER}> to INC-7's channel."
    assert [type(e).__name__ for e in outcome.events] == ["Invited"]
    closed = incident.model_copy(update={"status": IncidentStatus.CLOSED})
    assert duties.invite(closed, IC, RESPONDER, Context(NOW, policy)).refusal == "INC-7 is closed."
    threaded = declare(make_policy(github=False)).incident
    assert threaded is not None
    refused = duties.invite(threaded, IC, RESPONDER, Context(NOW, make_policy(github=False)))
    assert refused.refusal == "INC-7 has no channel of its own (incident.channel.mode)."


def test_the_channel_is_archived_after_the_configured_days_and_never_with_zero() -> None:
    for days, due in ((3, NOW + timedelta(days=3)), (0, None)):
        policy = channel_policy(archive_after_days=days)
        incident = declare(policy).incident
        assert incident is not None
        closed = duties.resolve(incident, IC, "fixed", Context(NOW, policy))
        assert closed.incident is not None and closed.incident.status is IncidentStatus.CLOSED
        timers = [j for j in jobs_of(closed, JobKind.TIMER) if "archive" in j.key]
        assert [t.due_at for t in timers] == ([due] if due else [])
    fired = duties.reminder_due(closed.incident, "archive", Context(NOW, policy))
    [archive] = jobs_of(fired, JobKind.SLACK_ARCHIVE)
    assert archive.payload == {"channel_of": channel_key(7)}
    assert fired.incident is not None and fired.incident.version == closed.incident.version + 1
    [entry] = fired.timeline
    assert (entry.at, entry.actor, entry.kind) == (NOW, "router", "channel_archived")
    assert [type(e).__name__ for e in fired.events] == ["ChannelArchived"]


def test_an_archive_timer_of_a_reopened_incident_does_nothing() -> None:
    policy = channel_policy(archive_after_days=1)
    incident: Incident | None = declare(policy).incident
    assert incident is not None
    resolved = incident.model_copy(update={"status": IncidentStatus.RESOLVED})
    assert duties.reminder_due(resolved, "archive", Context(NOW, policy)).jobs == []


def test_invite_is_a_row_of_the_verbs_table() -> None:

    assert parse(f"invite <@{RESPONDER}|someone>") == Command("invite", user=RESPONDER)
    assert parse("invite INC-3 <@U0TEAMMATE>") == Command("invite", 3, user=TEAM)
    assert "• `invite [INC-n] <@user>`: add someone to the incident's channel" in HELP
    assert VERB["invite"].responders_only
    with pytest.raises(UsageError, match="mention one person"):
        parse("invite everyone")
    # declare without a title: the handler opens the form
    assert parse("declare") == Command("declare", text="")


def test_every_channel_job_reads_back_into_its_typed_payload() -> None:
    from router.core.jobs import PAYLOADS, JobKind, timer

    policy = channel_policy(archive_after_days=1)
    outcome = declare(policy, confidential=True)
    incident = outcome.incident
    assert incident is not None
    closed = duties.resolve(incident, IC, "fixed", Context(NOW, policy))
    made = [*outcome.jobs, *closed.jobs]
    assert {j.kind for j in made} >= {JobKind.SLACK_CHANNEL, JobKind.SLACK_INVITE,
                                      JobKind.SLACK_TOPIC, JobKind.TIMER}  # fmt: skip
    for job in made:
        if job.kind is JobKind.TIMER:
            event = timer(job)
            assert event is not None and event.job(job.key).payload == job.payload
        else:  # what is stored is what the model reads: nothing lost, nothing added
            assert PAYLOADS[job.kind].of(job).job(job.key).payload == job.payload, job.key
