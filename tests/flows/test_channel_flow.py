"""Incident channels and forms end to end (issue 13's Done-when): the real app and outbox
worker, the real slack_sdk client against the strict FakeSlack, a frozen clock.

What is asserted is what people see after the last edit: who is in the channel, its
topic and bookmarks, the declaration in #incident-response, what a form answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from router.core import messages
from router.core.channel_names import channel_name
from router.core.jobs import JobStatus
from router.core.modals import simulate_submission
from tests.conftest import am_alert, am_payload
from tests.fakes.slack_api import DEFAULT_SCOPES, FakeSlack
from tests.fakes.slack_socket_mode import APP_TOKEN, FakeSocketMode
from tests.harness import (
    INCIDENTS,
    OPS,
    PRIMARY,
    RESPONDER,
    SECONDARY,
    SLACK_TOKEN,
    STRANGER,
    USERS,
    Harness,
    running_router,
)

GONE = "U0DEPARTED"  # a configured responder whose account was deactivated
CHANNELS: dict[str, Any] = {
    "incident": {"channel": {"mode": "channel", "responders": [RESPONDER, GONE]}}
}


def fake_slack(**options: Any) -> FakeSlack:
    users = {**USERS, GONE: {"name": "departed", "real_name": GONE, "tz": "UTC"}}
    slack = FakeSlack(SLACK_TOKEN, channels=(INCIDENTS, OPS), users=users, **options)
    slack.deactivate_user(GONE)
    return slack


@asynccontextmanager
async def router(
    tmp_path: Path, slack: FakeSlack | None = None, **options: Any
) -> AsyncIterator[Harness]:
    """The router against a started ``slack`` (``fake_slack()`` unless given)."""
    slack = slack or fake_slack()
    await slack.start()
    try:
        async with running_router(tmp_path, slack, **options) as h:
            yield h
    finally:
        await slack.stop()


def declarations(h: Harness) -> list[dict[str, Any]]:
    return h.slack.messages_in(INCIDENTS)


async def declared_from_page(h: Harness, **labels: str) -> str:
    """Page eng-primary (HighLatency on api-1, with ``labels``), press Declare, settle;
    the incident channel's id."""
    await h.alertmanager(am_payload(alerts=[am_alert("f1", **labels)]))
    key = await h.page_key(PRIMARY)
    response = await h.press("page.declare", key, PRIMARY)
    assert (await response.json())["ok"] is True
    await h.settle()
    incident = await h.incident(1)
    assert incident.channel_id is not None, "the channel was not made"
    return incident.channel_id


def topic(h: Harness, channel: str) -> str:
    return str(h.slack.conversations[channel]["topic"]["value"])


# --------------------------------------------------------------------------- declaring


async def test_declaring_from_a_page_makes_a_private_channel_with_its_people(
    tmp_path: Path,
) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        channel = await declared_from_page(h)
        info = h.slack.conversations[channel]
        assert info["name"] == "inc-1-highlatency-on-api-1"
        assert info["is_private"] is True
        # the commander (who was paged) and the configured responder; the deactivated
        # account is skipped without failing the others; nobody else
        assert h.slack.members_of(channel) == {PRIMARY, RESPONDER}
        invite = (await h.store.run(lambda tx: tx.job_by_key("incident:1:invite:declared:v0")))[1]
        assert invite["skipped"] == {GONE: "cant_invite"}
        assert topic(h, channel) == (
            f"INC-1 · critical · IC <@{PRIMARY}> · active · HighLatency on api-1"
        )
        marks = [(b["title"], b["link"]) for b in info["bookmarks"]]
        assert ("Runbook", "https://runbooks/latency") in marks
        # the summary with the controls is in the channel
        [summary] = [m for m in h.slack.messages_in(channel) if m.get("blocks")]
        assert messages.INC_RESOLVE in str(summary["blocks"])
        assert "needs no INC-n" in str(summary["blocks"])
        # #incident-response: the declaration the policy asks for, linking the channel
        [declaration] = declarations(h)
        assert declaration["text"].startswith("INC-1 declared: HighLatency on api-1.")
        assert f"<@{PRIMARY}>" in declaration["text"] and "critical" in declaration["text"]
        assert f"<#{channel}>" in str(declaration["blocks"])
        assert "{channel}" not in str(declaration["blocks"])
        # the record links it too
        timeline = await h.store.run(lambda tx: tx.timeline(1))
        assert any(e.kind == "channel_created" and e.data["channel"] == channel for e in timeline)
        assert await h.jobs(JobStatus.DEAD) == []


async def test_the_tracking_issue_is_bookmarked_and_the_post_mortem_names_the_channel(
    tmp_path: Path,
) -> None:
    async with router(tmp_path, config=CHANNELS, github=True) as h:
        channel = await declared_from_page(h)  # critical: the tracking issue opens itself
        tracking = h.issue_with_marker("incident:1:tracking-issue")
        assert tracking is not None
        marks = [(b["title"], b["link"]) for b in h.slack.conversations[channel]["bookmarks"]]
        assert ("Tracking issue", tracking["html_url"]) in marks
        texts = [m["text"] for m in h.slack.messages_in(channel)]
        assert f"Tracking issue: {tracking['html_url']}" in texts

        await h.command("resolve rolled back", PRIMARY, channel=channel)
        await h.settle()
        postmortem = h.issue_with_marker("incident:1:postmortem")
        assert postmortem is not None
        name = h.slack.conversations[channel]["name"]
        assert f"**Slack channel:** #{name} (`{channel}`)" in postmortem["body"]
        assert "incident channel #inc-1-highlatency-on-api-1" in postmortem["body"]  # timeline
        marks = [b["title"] for b in h.slack.conversations[channel]["bookmarks"]]
        assert "Post-mortem" in marks


async def test_a_confidential_incident_shows_no_title_outside_its_channel(tmp_path: Path) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        # the security-breach rule is marked confidential
        channel = await declared_from_page(h, security="breach", severity="warning")
        incident = await h.incident(1)
        assert incident.confidential is True
        assert h.slack.conversations[channel]["name"] == "inc-1"  # the name carries no title
        [declaration] = declarations(h)
        shown = declaration["text"] + str(declaration["blocks"])
        assert "HighLatency" not in shown and "api-1" not in shown
        assert "INC-1" in shown and f"<@{PRIMARY}>" in shown and "high" in shown
        assert f"<#{channel}>" in shown
        # its own channel still has the whole story
        [summary] = [m for m in h.slack.messages_in(channel) if m.get("blocks")]
        assert "HighLatency on api-1" in summary["text"]

        # resolved: #incident-response hears it, still without the title
        await h.control(messages.INC_RESOLVE, PRIMARY, trigger_id=h.slack.issue_trigger_id())
        status, _ = await h.submit(h.last_view(), PRIMARY, {"summary": "revoked the key"})
        assert status == 200
        await h.settle()
        outside = " ".join(m["text"] for m in declarations(h))
        assert "resolved" in outside and "HighLatency" not in outside
        assert "revoked the key" not in outside
        assert any("revoked the key" in m["text"] for m in h.slack.messages_in(channel))


async def test_a_second_declaration_with_the_same_title_gets_another_channel(
    tmp_path: Path,
) -> None:
    config = {"incident": {"channel": {"mode": "channel", "name_template": "inc-{slug}"}}}
    async with router(tmp_path, config=config) as h:
        for n in (1, 2):
            pressed = await h.press("report.commander", "Checkout is down", RESPONDER,
                                    message_ts=f"17000000{n}0.000100")  # fmt: skip
            assert (await pressed.json())["ok"] is True
            await h.settle()
        first, second = await h.incident(1), await h.incident(2)
        assert (first.channel_name, second.channel_name) == (
            "inc-checkout-is-down",
            "inc-checkout-is-down-2",
        )
        assert first.channel_id != second.channel_id
        assert RESPONDER in h.slack.members_of(str(second.channel_id))


async def test_in_its_channel_incident_needs_no_number_and_invite_adds_people(
    tmp_path: Path,
) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        channel = await declared_from_page(h)
        # a second open incident: outside a channel the number would be needed
        await h.press("report.commander", "Disk full", RESPONDER, message_ts="1700000020.000100")
        await h.settle()
        assert "Several incidents are open" in (await h.command("status", PRIMARY))["text"]

        answer = await h.command("status", PRIMARY, channel=channel)
        assert answer["text"].startswith("*INC-1: HighLatency on api-1*")
        answer = await h.command(f"invite <@{STRANGER}>", PRIMARY, channel=channel)
        assert answer["text"] == f"Inviting <@{STRANGER}> to INC-1's channel."
        answer = await h.command("severity high only the EU region is slow", PRIMARY,
                                 channel=channel)  # fmt: skip
        assert answer["text"] == "Done: severity on INC-1."
        await h.command(f"role comms <@{SECONDARY}>", PRIMARY, channel=channel)
        await h.settle()
        assert h.slack.members_of(channel) == {PRIMARY, RESPONDER, STRANGER, SECONDARY}
        # the topic follows severity; the declaration outside follows it too
        assert topic(h, channel).startswith(f"INC-1 · high · IC <@{PRIMARY}> · active")
        [declaration] = [m for m in declarations(h) if m["text"].startswith("INC-1")]
        fields = [f["text"] for b in declaration["blocks"] for f in b.get("fields", [])]
        assert "*Severity (set by the commander)*\nhigh" in fields
        # posts of the incident go to its channel, not a thread outside
        texts = [m["text"] for m in h.slack.messages_in(channel)]
        assert any("Severity changed from *critical* to *high*" in t for t in texts)
        assert any(f"<@{SECONDARY}> is communications lead" in t for t in texts)


async def test_the_channel_is_archived_days_after_close(tmp_path: Path) -> None:
    config = {"incident": {"channel": {"mode": "channel", "archive_after_days": 2}}}
    async with router(tmp_path, config=config) as h:
        channel = await declared_from_page(h, severity="warning")
        await h.command("resolve it was a deploy", PRIMARY, channel=channel)
        await h.settle()
        assert (await h.incident(1)).status.value == "closed"
        await h.advance(timedelta(days=1).total_seconds())
        await h.settle()
        assert h.slack.conversations[channel]["is_archived"] is False
        await h.advance(timedelta(days=1, minutes=1).total_seconds())
        await h.settle()
        assert h.slack.conversations[channel]["is_archived"] is True
        # the record still names it
        assert "channel_archived" in [e.kind for e in await h.store.run(lambda tx: tx.timeline(1))]
        assert (await h.incident(1)).channel_id == channel


async def test_thread_mode_keeps_everything_in_incident_response(tmp_path: Path) -> None:
    async with router(tmp_path) as h:  # the harness's mode: thread
        await h.alertmanager(am_payload())
        key = await h.page_key(PRIMARY)
        await h.press("page.declare", key, PRIMARY)
        await h.settle()
        assert (await h.incident(1)).channel_job is None
        assert h.slack.calls_to("conversations.create") == []
        assert (await h.announcement(1))["channel"] == INCIDENTS


async def test_a_missing_scope_is_named_at_start_and_when_a_job_needs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    slack = fake_slack(scopes=DEFAULT_SCOPES - {"groups:write"})
    caplog.set_level(logging.ERROR)
    async with router(tmp_path, slack, config=CHANNELS) as h:
        assert any("lacks scopes: groups:write" in r.getMessage() for r in caplog.records)
        await h.alertmanager(am_payload())
        await h.press("page.declare", await h.page_key(PRIMARY), PRIMARY)
        await h.settle()
        dead = {j.key: j.last_error for j in await h.jobs(JobStatus.DEAD)}
        assert "missing_scope (add groups:write to the app)" in str(dead["incident:1:channel"])
        assert any("add groups:write" in m["text"] for m in h.slack.messages_in(OPS))
        # never silent: #incident-response is still told, without a link
        [declaration] = declarations(h)
        assert declaration["text"].startswith("INC-1 declared")
        assert "{channel}" not in str(declaration["blocks"])
        assert "incident:1:declaration" not in dead


# --------------------------------------------------------------------------- forms


async def test_the_declare_form_refuses_bad_input_and_records_what_was_typed(
    tmp_path: Path,
) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        answer = await h.command("declare", RESPONDER, trigger_id=h.slack.issue_trigger_id())
        assert answer["text"] == "Fill in the form to declare."
        view = h.last_view()
        assert view["callback_id"] == "incident.declare"

        status, refused = await h.submit(view, RESPONDER, {"who": "commander", "title": " "})
        assert status == 200
        assert refused == {
            "response_action": "errors",
            "errors": {"title": "Say what is wrong: a short title."},
        }
        assert await h.incidents() == []

        # who may be commander is asked again on submission
        status, refused = await h.submit(view, STRANGER, {"who": "commander", "title": "Down"})
        assert refused["response_action"] == "errors"
        assert "Only responders can be Incident Commander" in refused["errors"]["who"]

        values = {
            "title": "Payments fail in eu-west",
            "description": "card auth 502 since 9:40",
            "severity": "high",
            "confidential": ["confidential"],
            "who": "commander",
        }
        status, answer = await h.submit(view, RESPONDER, values)
        assert (status, answer) == (200, None)  # the form closes
        await h.settle()
        incident = await h.incident(1)
        assert (incident.title, incident.severity.value, incident.commander) == (
            "Payments fail in eu-west",
            "high",
            RESPONDER,
        )
        assert incident.description == "card auth 502 since 9:40" and incident.confidential
        [declared] = [
            e for e in await h.store.run(lambda tx: tx.timeline(1)) if e.kind == "declared"
        ]
        assert declared.data["description"] == "card auth 502 since 9:40"
        assert h.slack.members_of(str(incident.channel_id)) == {RESPONDER}
        [declaration] = declarations(h)
        assert "Payments" not in declaration["text"] + str(declaration["blocks"])
        # a second submission of the same form (a retry) declares nothing more
        await h.submit(view, RESPONDER, values)
        await h.settle()
        assert len(await h.incidents()) == 1


async def test_a_refused_form_corrected_and_submitted_again_goes_through(
    tmp_path: Path,
) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        await h.command("declare", STRANGER, trigger_id=h.slack.issue_trigger_id())
        view = h.last_view()
        asked = {"who": "commander", "title": "Checkout is down"}
        status, refused = await h.submit(view, STRANGER, asked)
        assert status == 200 and refused["response_action"] == "errors"
        assert "Only responders can be Incident Commander" in refused["errors"]["who"]
        # Slack retrying that same submission gets the same answer, not a closed form
        assert await h.submit(view, STRANGER, asked) == (200, refused)

        # the person does as told: the same form, now asking to page the on-call
        status, answer = await h.submit(view, STRANGER, {**asked, "who": "page"})
        assert (status, answer) == (200, None)  # the form closes
        await h.settle()
        assert await h.page_key(PRIMARY)  # the on-call is paged, with a Declare button
        assert await h.incidents() == []


async def test_an_accepted_form_retried_by_slack_is_applied_once(tmp_path: Path) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        await h.command("declare", RESPONDER, trigger_id=h.slack.issue_trigger_id())
        view = h.last_view()
        values = {"who": "commander", "title": "Checkout is down"}
        assert await h.submit(view, RESPONDER, values) == (200, None)
        assert await h.submit(view, RESPONDER, values) == (200, None)  # the retry closes too
        await h.settle()
        assert [i.title for i in await h.incidents()] == ["Checkout is down"]
        assert len(declarations(h)) == 1


async def test_not_an_incident_form_records_the_reason_and_the_note(tmp_path: Path) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        await h.alertmanager(am_payload())
        key = await h.page_key(PRIMARY)
        response = await h.press("page.dismiss", key, PRIMARY,
                                 trigger_id=h.slack.issue_trigger_id())  # fmt: skip
        assert (await response.json())["forms_opened"] == 1
        view = h.last_view()
        assert view["callback_id"] == "page.dismiss"
        # nothing decided yet: the page still waits
        assert (await h.store.run(lambda tx: tx.page(key))).status.value == "open"

        status, refused = await h.submit(view, PRIMARY, {})
        assert refused["errors"] == {
            "reason": "Choose a reason or write a note: why is it not an incident?"
        }
        status, refused = await h.submit(view, STRANGER, {"note": "nothing"})
        assert "Only the people paged" in refused["errors"]["reason"]

        status, answer = await h.submit(
            view, PRIMARY, {"reason": "0", "note": "load test from the perf team"}
        )
        assert (status, answer) == (200, None)
        await h.settle()
        page = await h.store.run(lambda tx: tx.page(key))
        reason = f"{messages.DISMISS_REASONS[0]}: load test from the perf team"
        assert (page.status.value, page.reason) == ("dismissed", reason)
        # the page the on-call reads, after the last edit, says so
        dm = h.slack.dms_to(PRIMARY)[0]
        current = h.slack.message(dm["channel"], dm["ts"])
        assert current is not None and "load test from the perf team" in str(current["blocks"])


async def test_resolve_and_status_update_forms(tmp_path: Path) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        channel = await declared_from_page(h)
        # Status update from the controls
        await h.control(messages.INC_UPDATE, PRIMARY, trigger_id=h.slack.issue_trigger_id())
        update = h.last_view()
        assert update["callback_id"] == "incident.update"
        _, refused = await h.submit(update, PRIMARY, {"update": "   "})
        assert refused["errors"] == {"update": "Write the update: what changed, what is next."}
        assert (await h.submit(update, PRIMARY, {"update": "rolled back 4.2"}))[1] is None
        await h.settle()
        assert any("rolled back 4.2" in m["text"] for m in h.slack.messages_in(channel))

        # Resolve: critical, so the post-mortem is owed and pre-filled
        await h.control(messages.INC_RESOLVE, PRIMARY, trigger_id=h.slack.issue_trigger_id())
        form = h.last_view()
        assert form["callback_id"] == "incident.resolve"
        _, refused = await h.submit(form, STRANGER, {"summary": "x", "postmortem": ["owed"]})
        assert "Only responders of INC-1" in refused["errors"]["summary"]
        _, refused = await h.submit(form, PRIMARY, {"summary": "fixed", "postmortem": []})
        assert refused["errors"] == {
            "postmortem": "The policy owes a post-mortem: the incident is critical."
        }
        assert (await h.incident(1)).open
        values = {"summary": "rolled back", "impact": "EU checkout slow for 20 min",
                  "postmortem": ["owed"]}  # fmt: skip
        assert (await h.submit(form, PRIMARY, values))[1] is None
        await h.settle()
        incident = await h.incident(1)
        assert (incident.status.value, incident.postmortem_owed) == ("resolved", True)
        assert (incident.resolution, incident.customer_impact) == (
            "rolled back",
            "EU checkout slow for 20 min",
        )
        [resolved] = [
            e for e in await h.store.run(lambda tx: tx.timeline(1)) if e.kind == "resolved"
        ]
        assert resolved.data["impact"] == "EU checkout slow for 20 min"
        assert topic(h, channel).startswith(
            f"INC-1 · critical · IC <@{PRIMARY}> · resolved, post-mortem owed"
        )


async def test_an_expired_trigger_gets_an_ephemeral_answer_and_changes_nothing(
    tmp_path: Path,
) -> None:
    async with router(tmp_path, config=CHANNELS) as h:
        await declared_from_page(h)
        now = [0.0]
        h.slack.trigger_clock = lambda: now[0]
        trigger = h.slack.issue_trigger_id()
        now[0] = 3.5  # Slack took too long to deliver the press
        answer = await h.control(
            messages.INC_RESOLVE, PRIMARY, trigger_id=trigger, response_name="late"
        )
        assert "Slack allows 3 seconds to open a form" in answer["replies"][0]
        await h.settle()
        [reply] = h.slack.responses_for("late")
        assert reply["response_type"] == "ephemeral"
        assert "`/incident resolve <summary> INC-1`" in reply["text"]
        assert (await h.incident(1)).status.value == "active"
        assert (
            h.sample("router_slack_forms_total", {"form": "incident.resolve", "outcome": "failed"})
            == 1
        )


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_carries_commands_and_forms_through_the_same_handlers(
    tmp_path: Path,
) -> None:
    users = {**USERS, GONE: {"name": "departed", "real_name": GONE, "tz": "UTC"}}
    slack = FakeSocketMode(token=SLACK_TOKEN, channels=(INCIDENTS, OPS), users=users)
    await slack.start()
    config = {**CHANNELS, "slack": {"socket_mode": True}}
    try:
        async with running_router(tmp_path, slack, config=config, app_token=APP_TOKEN) as h:
            await slack.wait_for(lambda: slack.open_connections())
            assert h.sample("router_slack_socket_connected") == 1

            async def ack_of(envelope: str) -> Any:
                """What the router answered in the envelope's acknowledgement."""
                await slack.wait_for(lambda: envelope in slack.acks)
                return slack.acks[envelope]

            # /incident declare, no title: the form opens, the answer comes in the ack
            command = slack.slash_command("declare", user=RESPONDER)
            sent = await slack.send_envelope("slash_commands", command)
            assert (await ack_of(sent))["text"] == "Fill in the form to declare."
            view = h.last_view()
            bad = simulate_submission(view, user=RESPONDER, values={"who": "commander"},
                                      view_id=view["id"], strict=False)  # fmt: skip
            sent = await slack.send_envelope("interactive", bad)
            assert await ack_of(sent) == {
                "response_action": "errors",
                "errors": {"title": "Say what is wrong: a short title."},
            }
            values = {"who": "commander", "title": "Queue stuck"}
            good = simulate_submission(view, user=RESPONDER, view_id=view["id"], values=values)
            sent = await slack.send_envelope("interactive", good)
            assert await ack_of(sent) is None  # the form closes
            await h.settle()
            incident = await h.incident(1)
            assert (incident.title, incident.commander) == ("Queue stuck", RESPONDER)
            # the same authorization: a stranger is refused
            sent = await slack.send_envelope(
                "slash_commands", slack.slash_command("resolve INC-1 done", user=STRANGER)
            )
            assert "Only responders of INC-1" in (await ack_of(sent))["text"]
            assert (await h.incident(1)).open
            assert h.sample("router_slack_socket_acks_total", {"outcome": "answered"}) == 3
            # acknowledged quickly (well within Slack's 3 seconds)
            assert h.sample("router_slack_socket_ack_seconds_bucket", {"le": "2.5"}) == 4

            # reconnects with a fresh URL when Slack asks for a new connection
            await slack.disconnect("refresh_requested")
            await slack.wait_for(
                lambda: h.sample("router_slack_socket_reconnects_total", {"reason": "refresh"})
            )
            await asyncio.sleep(0)
    finally:
        await slack.stop()


def test_channel_names_follow_the_template_the_config_checks() -> None:
    # the template the example config documents makes Slack-valid names
    assert channel_name("inc-{number}-{slug}", number=12, title="Zürich DB: down!") == (
        "inc-12-zurich-db-down"
    )


async def test_check_config_names_the_scope_the_token_lacks(tmp_path: Path) -> None:
    """``router check-config`` asks Slack (auth.test) which scopes the token holds."""
    import os
    import sys

    slack = fake_slack(scopes=DEFAULT_SCOPES - {"groups:write", "bookmarks:read"})
    await slack.start()
    try:
        config = tmp_path / "router.yaml"
        config.write_text(f"slack: {{api_url: '{slack.base_url}'}}\n")
        env = {"PATH": os.environ.get("PATH", ""), "SLACK_BOT_TOKEN": SLACK_TOKEN,
               "SLACK_SIGNING_SECRET": "s", "ALERTMANAGER_TOKEN": "t"}  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "router", "--config", str(config), "check-config",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await slack.stop()
    assert process.returncode == 0, err.decode()
    assert (
        "warning: the Slack bot token lacks scopes: groups:write, bookmarks:read "
        "(for private incident channels)"
    ) in err.decode()
    assert SLACK_TOKEN not in out.decode() + err.decode()  # secrets stay masked
    assert [c.method for c in slack.calls] == ["auth.test"]


async def test_the_console_links_the_incident_channel(tmp_path: Path) -> None:
    web = {"public_url": "http://router.test", "auth": {"mode": "proxy",
           "trusted_proxies": ["127.0.0.1/32"]}}  # fmt: skip
    async with router(tmp_path, config={**CHANNELS, "web": web}) as h:
        channel = await declared_from_page(h)
        page = await h.client.get(
            "/ui/incidents/1", headers={"Accept": "text/html", "X-Forwarded-User": PRIMARY}
        )
        assert page.status == 200
        html = await page.text()
        assert f"https://slack.com/archives/{channel}" in html
        assert "#inc-1-highlatency-on-api-1" in html
        # the summary in the channel links the console
        [summary] = [m for m in h.slack.messages_in(channel) if m.get("blocks")]
        assert "http://router.test/ui/incidents/1|INC-1 in the console" in str(summary["blocks"])
