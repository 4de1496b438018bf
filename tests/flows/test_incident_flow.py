"""The commander's duties end to end: the real app, the real outbox worker, the real
slack_sdk and PyGithub clients against the loopback fakes, a frozen clock.

People act as Slack delivers it: signed ``/incident`` slash commands and signed
button presses (``tests.harness``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from router.core import messages
from router.core.jobs import JobStatus
from tests.conftest import AM_TOKEN, T0, am_alert, am_payload
from tests.harness import (
    GITHUB_TOKEN,
    INCIDENTS,
    LEAD,
    OPS,
    PRIMARY,
    RESPONDER,
    SECONDARY,
    SIGNING_SECRET,
    SLACK_TOKEN,
    STRANGER,
    Harness,
    fake_github,
    running_router,
)

VENDORS = {
    "Acme Cloud": {
        "contact": "support line +1 555 0100, account 4711",
        "url": "https://support.acme-cloud.example",
    }
}
CONFIG: dict[str, Any] = {
    "incident": {
        "vendors": VENDORS,
        "risk_register_url": "https://wiki.example/risk-register",
        "bcp_dr_url": "https://wiki.example/bcp-dr",
    }
}
POSTMORTEM_SECTIONS = (
    "## Details",
    "## Timeline",
    "## Impact",
    "## Actions taken",
    "## Root cause(s)",
    "## Follow-up actions",
    "## New risks for the risk register",
)


async def declare_from_page(h: Harness, user: str = PRIMARY, index: int = 0) -> None:
    """Page eng-primary with the critical HighLatency alert and press Declare."""
    key = await h.page_key(PRIMARY, index)
    response = await h.press("page.declare", key, user, response_name=f"declare-{index}")
    assert response.status == 200
    assert (await response.json())["ok"] is True
    await h.settle()


async def thread_count(h: Harness, number: int = 1) -> int:
    await h.settle()
    return len(await h.thread(number))


# --------------------------------------------------------------------------- 1. end to end


async def test_a_critical_incident_from_page_to_post_mortem(tmp_path: Path) -> None:
    async with running_router(tmp_path, github=True, config=CONFIG) as h:
        assert h.github is not None
        gh, repo = h.github, h.repo
        await h.alertmanager(am_payload())
        await declare_from_page(h)

        # INC-1, critical: announced, and the tracking issue opened on its own (private repo)
        incident = await h.incident(1)
        assert (incident.severity.value, incident.commander) == ("critical", PRIMARY)
        announced = await h.announcement(1)
        assert "INC-1 declared" in announced["text"] and f"<@{PRIMARY}>" in announced["text"]
        tracking = h.issue_with_marker("incident:1:tracking-issue")
        assert tracking is not None
        assert gh.calls_to("GET", rf"^/repos/{repo}$")[0].response["private"] is True
        assert tracking["title"].startswith("INC-1: HighLatency")
        assert [label["name"] for label in tracking["labels"]] == ["incident", "severity:critical"]
        assert "## Commander's checklist" in tracking["body"]
        link = await h.wait_thread("Tracking issue: ")
        assert tracking["html_url"] in link
        number = tracking["number"]

        # severity: thread message, relabelled issue, a timeline comment on the issue
        await h.advance(60)
        answer = await h.command("severity high only the EU region is degraded", PRIMARY)
        assert answer["response_type"] == "ephemeral"
        assert answer["text"] == "Done: severity on INC-1."
        await h.settle()
        changed = await h.wait_thread("Severity changed")
        assert "from *critical* to *high*" in changed
        assert "only the EU region is degraded" in changed
        tracking = gh.issue(repo, number)
        assert [label["name"] for label in tracking["labels"]] == ["incident", "severity:high"]
        comments = [c["body"] for c in gh.comments(repo, number)]
        assert any(
            "severity critical -> high: only the EU region is degraded" in c for c in comments
        )
        assert "Severity (set by the commander)" in str((await h.announcement(1))["blocks"])

        # the communications lead
        await h.advance(60)
        answer = await h.command(f"role comms <@{RESPONDER}>", PRIMARY)
        assert answer["text"] == "Done: comms on INC-1."
        assert f"<@{RESPONDER}> is communications lead" in await h.wait_thread(
            "communications lead"
        )
        assert (await h.incident(1)).comms_lead == RESPONDER

        # handoff: offered, the old commander stays until the new one accepts
        await h.advance(60)
        answer = await h.command(f"handoff <@{SECONDARY}|second>", PRIMARY)
        assert answer["text"] == (
            f"Offered INC-1 to <@{SECONDARY}>; you stay commander until they accept."
        )
        await h.settle()
        offer = h.slack.dms_to(SECONDARY)
        assert len(offer) == 1
        [accept] = [
            element
            for block in offer[0]["blocks"]
            for element in block.get("elements", [])
            if element.get("action_id") == messages.INC_ACCEPT
        ]
        assert accept["value"] == "INC-1"
        status = (await h.command("status", SECONDARY))["text"]
        assert f"Commander: <@{PRIMARY}>" in status
        assert f"Handoff offered to <@{SECONDARY}>, not yet accepted" in status
        assert (await h.incident(1)).commander == PRIMARY

        await h.advance(60)
        pressed = await h.control(messages.INC_ACCEPT, SECONDARY)
        assert pressed == {
            "ok": True,
            "refused": [],
            "replies": ["You are now Incident Commander of INC-1."],
        }
        await h.wait_thread(f"<@{SECONDARY}> is now Incident Commander (was <@{PRIMARY}>)")
        status = (await h.command("status INC-1", PRIMARY))["text"]
        assert f"Commander: <@{SECONDARY}>" in status and "Handoff offered" not in status

        # escalation to leadership: a DM to leadership and a post in the channel
        await h.advance(60)
        await h.command("escalate the database team is not responding", SECONDARY)
        await h.settle()
        [to_lead] = h.slack.dms_to(LEAD)
        assert "INC-1 (high) was escalated to you by" in to_lead["text"]
        assert "the database team is not responding" in to_lead["text"]
        assert f"Commander: <@{SECONDARY}>" in to_lead["text"]
        posts = [m for m in h.slack.messages_in(INCIDENTS) if not m.get("thread_ts")]
        assert any(f"INC-1 escalated to leadership (<@{LEAD}>)" in m["text"] for m in posts), posts
        assert (await h.incident(1)).escalated is True

        # a vendor from incident.vendors (names match regardless of case)
        await h.advance(60)
        answer = await h.command("vendor acme cloud", SECONDARY)
        assert "Recorded contact with Acme Cloud" in answer["text"]
        assert "support line +1 555 0100, account 4711" in answer["text"]
        assert "https://support.acme-cloud.example" in await h.wait_thread("Vendor *Acme Cloud*")

        await h.advance(60)
        await h.command("update failover to eu-west-2 in progress", SECONDARY)
        assert f"Update from <@{SECONDARY}>: failover to eu-west-2 in progress" in (
            await h.wait_thread(":memo:")
        )

        await h.advance(60)
        await h.command("flag outage", SECONDARY)
        await h.wait_thread("Flagged *outage*")

        await h.advance(60)
        await h.command("mitigated", SECONDARY)
        await h.wait_thread("Mitigated, says")
        assert (await h.incident(1)).status.value == "mitigated"

        await h.advance(60)
        answer = await h.command("resolve INC-1 failed over; the primary db is rebuilt", SECONDARY)
        assert answer["text"] == "Done: resolve on INC-1."
        await h.settle()

        # the post-mortem issue: every section, the timeline with handoff and severity
        postmortem = h.issue_with_marker("incident:1:postmortem")
        assert postmortem is not None, gh.summary()
        assert postmortem["title"] == f"Post-mortem: INC-1 {incident.title}"
        body = postmortem["body"]
        for section in POSTMORTEM_SECTIONS:
            assert section in body, section
        assert "https://wiki.example/risk-register" in body
        timeline = body.split("## Timeline", 1)[1].split("## Impact", 1)[0]
        assert f"handoff of commander offered to {SECONDARY}" in timeline
        assert f"{SECONDARY} accepted; commander was {PRIMARY}" in timeline
        assert "severity critical -> high: only the EU region is degraded" in timeline
        assert "resolved: failed over; the primary db is rebuilt" in timeline
        assert timeline.index("offered") < timeline.index("accepted") < timeline.index("resolved")
        assert f"**Incident Commander:** @{SECONDARY}" in body
        assert "**Flags:** outage" in body
        assert "**Duration:** 10 minutes" in body
        # the tracking issue closed as completed, the channel told
        tracking = gh.issue(repo, number)
        assert (tracking["state"], tracking["state_reason"]) == ("closed", "completed")
        notices = [m["text"] for m in h.slack.messages_in(INCIDENTS) if not m.get("thread_ts")]
        assert any(
            ":white_check_mark: *INC-1 resolved*" in t and "the primary db is rebuilt" in t
            for t in notices
        ), notices
        assert "Post-mortem: " in await h.wait_thread("Post-mortem: ")
        incident = await h.incident(1)
        assert (incident.status.value, incident.postmortem_owed) == ("resolved", True)

        # the post-mortem is done: the incident closes, and so does the post-mortem issue
        await h.advance(3600)
        answer = await h.command("postmortem done INC-1", SECONDARY)
        assert answer["text"] == "Done: postmortem on INC-1."
        await h.settle()
        incident = await h.incident(1)
        assert (incident.status.value, incident.postmortem_owed) == ("closed", False)
        assert await h.wait_thread("INC-1 is closed")
        assert gh.issue(repo, postmortem["number"])["state"] == "closed"
        # every step mirrored to the tracking issue; nothing failed on the way
        comments = "\n".join(c["body"] for c in gh.comments(repo, number))
        for words in ("communications lead", "handoff of commander offered", "accepted",
                      "escalated to leadership", "vendor contacted: Acme Cloud",
                      "status update: failover", "flagged: outage", "mitigated",
                      "resolved: failed over"):  # fmt: skip
            assert words in comments, words
        assert await h.jobs(JobStatus.DEAD) == []
        assert h.slack.messages_in(OPS) == []


async def test_the_announcement_controls_do_the_duties(tmp_path: Path) -> None:
    async with running_router(tmp_path, github=True) as h:
        assert h.github is not None
        answer = await h.command("declare Search results are stale", RESPONDER)
        await h.press(messages.REPORT_COMMANDER, "Search results are stale", RESPONDER,
                      block_id="report")  # fmt: skip
        await h.settle()
        incident = await h.incident(1)
        assert (incident.severity.value, incident.tracking_issue_job) == ("low", None)
        assert answer["text"].startswith("Suspected incident: Search results are stale")
        controls = {
            element["action_id"]: (block["block_id"], element["type"])
            for block in (await h.announcement(1))["blocks"]
            for element in block.get("elements", [])
            if block["type"] == "actions"
        }
        assert controls[messages.INC_SEVERITY] == ("incident|INC-1|roles", "static_select")
        assert controls[messages.INC_COMMS] == ("incident|INC-1|roles", "users_select")
        assert controls[messages.INC_HANDOFF] == ("incident|INC-1|roles", "users_select")
        assert controls[messages.INC_RESOLVE] == ("incident|INC-1|actions", "button")

        # the severity select
        pressed = await h.control(messages.INC_SEVERITY, RESPONDER, severity="medium")
        assert pressed == {"ok": True, "refused": [], "replies": ["Done: severity on INC-1."]}
        assert (await h.incident(1)).severity.value == "medium"
        await h.wait_thread("from *low* to *medium*")
        assert h.github.issues(h.repo) == []  # below tracking_issue_at (high)

        # "Open tracking issue"
        pressed = await h.control(messages.INC_ISSUE, RESPONDER)
        assert pressed["replies"] == [
            "Opening the tracking issue; its link will be posted in the thread."
        ]
        await h.settle()
        tracking = h.issue_with_marker("incident:1:tracking-issue")
        assert tracking is not None
        assert [label["name"] for label in tracking["labels"]] == ["incident", "severity:medium"]
        assert tracking["html_url"] in await h.wait_thread("Tracking issue: ")
        again = await h.control(messages.INC_ISSUE, RESPONDER)
        assert again["refused"] == ["INC-1 already has a tracking issue."]

        # comms lead and handoff: users_select, the incident named only by the block id
        await h.control(messages.INC_COMMS, RESPONDER, selected_user=PRIMARY)
        assert (await h.incident(1)).comms_lead == PRIMARY
        pressed = await h.control(messages.INC_HANDOFF, RESPONDER, selected_user=SECONDARY)
        assert pressed["replies"] == [
            f"Offered INC-1 to <@{SECONDARY}>; you stay commander until they accept."
        ]
        await h.settle()
        [offer] = h.slack.dms_to(SECONDARY)
        assert messages.INC_ACCEPT in str(offer["blocks"])
        # a stranger cannot take the offer; a retried press of Accept counts once
        assert (await h.control(messages.INC_ACCEPT, STRANGER))["ok"] is False
        first = await h.control(messages.INC_ACCEPT, SECONDARY, action_ts="7.1")
        retry = await h.control(messages.INC_ACCEPT, SECONDARY, action_ts="7.1")
        assert first["ok"] is True and retry == {"ok": True, "refused": [], "replies": []}
        incident = await h.incident(1)
        assert (incident.commander, incident.handoff) == (SECONDARY, None)

        await h.control(messages.INC_ESCALATE, SECONDARY)
        await h.settle()
        [to_lead] = h.slack.dms_to(LEAD)
        assert "the response needs more support" in to_lead["text"]

        await h.control(messages.INC_MITIGATED, SECONDARY)
        assert (await h.incident(1)).status.value == "mitigated"
        pressed = await h.control(
            messages.INC_RESOLVE, SECONDARY, trigger_id=h.slack.issue_trigger_id()
        )
        assert pressed["ok"] is True
        status, answer = await h.submit(h.last_view(), SECONDARY, {"summary": "rolled back"})
        assert (status, answer) == (200, None)
        await h.settle()
        incident = await h.incident(1)  # medium, no outage: no post-mortem owed
        assert (incident.status.value, incident.postmortem_owed) == ("closed", False)
        tracking = h.github.issue(h.repo, tracking["number"])
        assert (tracking["state"], tracking["state_reason"]) == ("closed", "completed")
        assert h.issue_with_marker("incident:1:postmortem") is None
        # a closed incident shows no controls any more
        assert messages.INC_RESOLVE not in str((await h.announcement(1))["blocks"])
        assert await h.jobs(JobStatus.DEAD) == []


# --------------------------------------------------------------------------- 2. who may act


async def test_a_stranger_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    async with running_router(tmp_path, github=True) as h:
        assert h.github is not None
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        before = await h.incident(1)
        posted = await thread_count(h)
        calls = len(h.github.calls)

        for text in ("severity high it is only one region", "resolve all fine now",
                     "handoff <@U0STRANGE5>", "status"):  # fmt: skip
            answer = await h.command(text, STRANGER)
            assert answer["response_type"] == "ephemeral"
            assert answer["text"].startswith("Only responders of INC-1"), answer
        pressed = await h.control(messages.INC_MITIGATED, STRANGER, response_name="stranger")
        assert pressed["ok"] is False and pressed["refused"][0].startswith("Only responders")
        selected = await h.control(messages.INC_SEVERITY, STRANGER, severity="low")
        assert selected["ok"] is False
        # the button's refusal reaches the presser alone, through the response_url
        [refusal] = await h.slack.wait_for(lambda: h.slack.responses_for("stranger"))
        assert refusal["response_type"] == "ephemeral"
        assert refusal["text"].startswith("Only responders of INC-1")

        after = await h.incident(1)
        assert after.version == before.version
        assert after == before
        assert await thread_count(h) == posted
        assert len(h.github.calls) == calls
        assert h.sample("router_unauthorized_actions_total") == 6


async def test_the_timeline_is_shown_to_a_responder_only(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        await h.command("update failover <to> eu-west-2 & rebuilding", PRIMARY)
        await h.settle()
        before = await h.incident(1)
        posted = await thread_count(h)

        answer = await h.command("timeline", PRIMARY)
        assert answer["response_type"] == "ephemeral"
        lines = answer["text"].splitlines()
        assert lines[0].startswith("*INC-1: ") and lines[0].endswith("*, timeline")
        assert f"@{PRIMARY}: declared; commander {PRIMARY}" in lines[1]
        # what people typed is shown, never read as Slack markup
        assert lines[-1].endswith(
            f"@{PRIMARY}: status update: failover &lt;to&gt; eu-west-2 &amp; rebuilding"
        )
        refused = await h.command("timeline INC-1", STRANGER)
        assert refused["text"].startswith("Only responders of INC-1")
        assert "failover" not in refused["text"]
        assert "`timeline [INC-n]`" in (await h.command("help", PRIMARY))["text"]

        assert await h.incident(1) == before
        assert await thread_count(h) == posted


async def test_malformed_commands_get_usage_and_change_nothing(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        before = await h.incident(1)
        posted = await thread_count(h)

        usage = {
            "severity": "Usage: `/incident severity [INC-n] <critical|high|medium|low> <reason>`",
            "severity urgent because": "Usage: `/incident severity",
            "handoff nobody": "Usage: `/incident handoff [INC-n] <@user>`: mention one person.",
            f"handoff <@{SECONDARY}> <@{RESPONDER}>": "Usage: `/incident handoff",
            "role comms": "Usage: `/incident role comms [INC-n] <@user>`",
            "role boss <@U0RESPOND4>": "Usage: `/incident role comms",
            "frobnicate INC-1": "Unknown command `frobnicate`. Try `/incident help`.",
            "flag meltdown": "Usage: `/incident flag [INC-n] <outage|data-loss|customers>`",
            "update": "Usage: `/incident update [INC-n] <text>`",
            "resolve INC-1": "Usage: `/incident resolve [INC-n] <summary>`",
            "postmortem": "Usage: `/incident postmortem done [INC-n]`",
            # no title: the form, which cannot open with the harness's unknown trigger
            "declare": "Slack allows 3 seconds to open a form",
        }
        for text, expected in usage.items():
            answer = await h.command(text, PRIMARY)
            assert answer["response_type"] == "ephemeral"
            assert answer["text"].startswith(expected), (text, answer)
        # what parses but the duty refuses: also no change
        for text, expected in {
            "severity high": "Say why: `/incident severity <level> <reason>`.",
            "severity critical it is critical": "INC-1 is already critical.",
            f"handoff <@{PRIMARY}>": f"<@{PRIMARY}> is already the commander of INC-1.",
            "vendor Globex": "Unknown vendor 'Globex'. Known vendors: none configured",
            "accept": "There is no handoff of INC-1 waiting for you.",
            "postmortem done": "No incident owes a post-mortem.",
            "postmortem done INC-1": "INC-1 owes no post-mortem.",
            "status INC-7": "There is no INC-7.",
        }.items():
            answer = await h.command(text, PRIMARY)
            assert answer["text"].startswith(expected), (text, answer)
        help_text = (await h.command("help", STRANGER))["text"]
        assert "`severity [INC-n] <critical|high|medium|low> <reason>`" in help_text

        assert await h.incident(1) == before
        assert await thread_count(h) == posted


async def test_with_two_open_incidents_a_command_must_name_one(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload(alerts=[am_alert("a")]))
        await declare_from_page(h)
        other = am_payload(groupKey='{}:{alertname="DiskFull"}',
                           alerts=[am_alert("b", alertname="DiskFull")])  # fmt: skip
        await h.alertmanager(other)
        await declare_from_page(h, index=1)
        assert [i.ref for i in await h.incidents()] == ["INC-1", "INC-2"]
        first, second = await h.incident(1), await h.incident(2)

        for text in ("status", "severity low it is fine", "mitigated", "resolve done"):
            answer = await h.command(text, PRIMARY)
            assert answer["text"] == (
                "Several incidents are open (INC-1, INC-2): name one, e.g. "
                "`/incident status INC-1`."
            ), text
        assert (await h.incident(1), await h.incident(2)) == (first, second)

        answer = await h.command("severity INC-2 medium only the batch jobs", PRIMARY)
        assert answer["text"] == "Done: severity on INC-2."
        assert (await h.incident(2)).severity.value == "medium"
        assert await h.incident(1) == first
        assert "*INC-2: DiskFull" in (await h.command("status INC-2", PRIMARY))["text"]
        await h.wait_thread("to *medium*", number=2)
        assert not [t for t in await h.thread(1) if "Severity changed" in t]

        # a post-mortem is owed by a resolved incident: that one, whatever else is open
        await h.command("resolve INC-1 the disk was cleaned", PRIMARY)
        answer = await h.command("postmortem done", PRIMARY)
        assert answer["text"] == "Done: postmortem on INC-1."
        assert (await h.incident(1)).status.value == "closed"
        assert (await h.incident(2)).status.value == "active"


# --------------------------------------------------------------------------- 3. /incident declare


def report_buttons(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        element["action_id"]: element
        for block in answer.get("blocks", [])
        for element in block.get("elements", [])
    }


async def test_declare_offers_commander_or_paging_eng_primary(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        answer = await h.command("declare Checkout is down", RESPONDER)
        assert answer["response_type"] == "ephemeral"
        assert answer["text"] == "Suspected incident: Checkout is down. Who investigates?"
        buttons = report_buttons(answer)
        assert set(buttons) == {messages.REPORT_COMMANDER, messages.REPORT_PAGE}
        assert {b["value"] for b in buttons.values()} == {"Checkout is down"}
        assert await h.incidents() == [] and await h.jobs() == []  # nothing yet

        # a stranger may report, but not be commander
        refused = await h.press(messages.REPORT_COMMANDER, "Checkout is down", STRANGER,
                                block_id="report")  # fmt: skip
        assert (await refused.json())["refused"][0].startswith("Only responders can be")
        assert await h.incidents() == []

        pressed = await h.press(messages.REPORT_COMMANDER, "Checkout is down", RESPONDER,
                                block_id="report")  # fmt: skip
        assert await pressed.json() == {
            "ok": True,
            "refused": [],
            "replies": ["Declared INC-1; you are Incident Commander."],
        }
        [incident] = await h.incidents()
        assert (incident.ref, incident.title) == ("INC-1", "Checkout is down")
        assert (incident.commander, incident.declared_by) == (RESPONDER, RESPONDER)
        assert incident.page_key is None
        await h.settle()
        announced = await h.announcement(1)
        assert "INC-1 declared: Checkout is down" in announced["text"]
        assert f"Incident Commander <@{RESPONDER}>" in announced["text"]
        assert h.slack.dms_to(PRIMARY) == []  # nobody was paged
        assert h.sample("router_incidents_declared_total", {"severity": incident.severity}) == 1

        # someone else reports and has eng-primary investigate
        answer = await h.command("declare Payments are slow", STRANGER)
        paged = await h.press(report_buttons(answer)[messages.REPORT_PAGE]["action_id"],
                              "Payments are slow", STRANGER, block_id="report")  # fmt: skip
        assert await paged.json() == {
            "ok": True,
            "refused": [],
            "replies": ["Paged eng-primary; they will investigate and decide."],
        }
        blocks = await h.dm_blocks(PRIMARY)
        assert "Payments are slow" in str(blocks)
        # who reported it is in the page, as a mention
        assert "Reported in Slack" in str(blocks) and f"reported by <@{STRANGER}>" in str(blocks)
        key = await h.page_key(PRIMARY)
        assert len(await h.incidents()) == 1  # a page, not an incident yet
        await h.press("page.declare", key, PRIMARY)
        incidents = await h.incidents()
        assert [(i.ref, i.title, i.commander) for i in incidents][1] == (
            "INC-2", "Payments are slow", PRIMARY,
        )  # fmt: skip


async def test_a_reported_incident_enters_like_an_alert(tmp_path: Path) -> None:
    # Through the same intake as the monitoring's alerts: triaged, counted, paged once.
    async with running_router(tmp_path) as h:
        answer = await h.command("declare Payments are slow", RESPONDER)
        button = report_buttons(answer)[messages.REPORT_PAGE]
        for _ in range(2):  # a double click is one report
            await h.press(button["action_id"], "Payments are slow", RESPONDER, block_id="report")
        await h.dm_blocks(PRIMARY)
        labels = {"source": "slack", "status": "firing"}
        assert h.sample("router_alerts_received_total", labels) == 1
        assert h.sample("router_alerts_recorded_total", {"source": "slack", "change": "new"}) == 1
        assert h.sample("router_pages_opened_total") == 1


# --------------------------------------------------------------------------- 4. reminders


async def wait_until(h: Harness, at: timedelta) -> None:
    """Move the frozen clock to T0 + ``at`` and let what came due run."""
    h.clock.set(T0 + at)
    h.kick()
    await h.settle()


def reminders(texts: list[str], what: str) -> list[str]:
    return [t for t in texts if what in t]


STATUS = "time for a status update on INC-1"
ESCALATE = "is critical and not mitigated yet"


async def test_reminders_follow_the_cadence_and_the_escalation_prompt(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        await declare_from_page(h)  # critical: status every 30 min, escalate after 60
        await wait_until(h, timedelta(minutes=29))
        assert reminders(await h.thread(), STATUS) == []

        await wait_until(h, timedelta(minutes=30, seconds=5))
        [reminder] = reminders(await h.thread(), STATUS)
        assert reminder.startswith(f"<@{PRIMARY}>: time for a status update")
        assert "`/incident update <text>`" in reminder
        assert reminders(await h.thread(), ESCALATE) == []

        await wait_until(h, timedelta(minutes=60, seconds=5))
        texts = await h.thread()
        assert len(reminders(texts, STATUS)) == 2  # re-armed: every 30 minutes
        [prompt] = reminders(texts, ESCALATE)
        assert prompt.startswith(f"<@{PRIMARY}>: INC-1 is critical and not mitigated yet")
        assert "`/incident escalate <note>`" in prompt
        # the prompt comes once; reminders keep going, 30 minutes after the last one
        await wait_until(h, timedelta(minutes=90, seconds=5))
        await wait_until(h, timedelta(minutes=120, seconds=5))
        texts = await h.thread()
        assert len(reminders(texts, ESCALATE)) == 1
        assert len(reminders(texts, STATUS)) == 4
        assert h.sample("router_reminders_sent_total", {"kind": "status"}) == 4
        assert h.sample("router_reminders_sent_total", {"kind": "escalation"}) == 1


async def test_mitigating_in_time_means_no_escalation_prompt(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        await wait_until(h, timedelta(minutes=45))
        await h.command("mitigated", PRIMARY)
        await wait_until(h, timedelta(minutes=75))
        texts = await h.thread()
        assert reminders(texts, ESCALATE) == []
        assert len(reminders(texts, STATUS)) == 2  # still open: updates still owed


async def test_no_escalation_prompt_once_no_longer_critical_or_escalated(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        await wait_until(h, timedelta(minutes=10))
        await h.command("severity high only one region", PRIMARY)
        await wait_until(h, timedelta(minutes=61))
        assert reminders(await h.thread(), ESCALATE) == []
        assert "to *high*" in await h.wait_thread("Severity changed")

    (tmp_path / "escalated").mkdir()
    async with running_router(tmp_path / "escalated") as h:
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        await h.command("escalate we need more hands", PRIMARY)
        await wait_until(h, timedelta(minutes=31))
        await wait_until(h, timedelta(minutes=61))
        assert reminders(await h.thread(), ESCALATE) == []
        assert len(reminders(await h.thread(), STATUS)) == 2  # 30 and 60 minutes


async def test_an_update_resets_the_status_reminder(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        await wait_until(h, timedelta(minutes=20))
        await h.command("update rolled back the deploy, watching", PRIMARY)
        await h.settle()

        await wait_until(h, timedelta(minutes=31))  # the old due time has passed
        assert reminders(await h.thread(), STATUS) == []
        await wait_until(h, timedelta(minutes=49))
        assert reminders(await h.thread(), STATUS) == []
        await wait_until(h, timedelta(minutes=50, seconds=5))  # 30 minutes after the update
        assert len(reminders(await h.thread(), STATUS)) == 1


async def test_the_end_of_the_working_day_prompts_a_handoff(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())  # T0 is Monday 10:00 UTC; the day ends 18:00
        await declare_from_page(h)
        await h.command("mitigated", PRIMARY)
        await wait_until(h, timedelta(hours=7, minutes=59))
        assert len(h.slack.dms_to(PRIMARY)) == 1  # the page only
        await wait_until(h, timedelta(hours=8, seconds=5))
        prompt = await h.slack.wait_for(lambda: h.slack.dms_to(PRIMARY)[1:])
        assert "The working day is ending and INC-1 is still open" in prompt[0]["text"]
        assert "`/incident handoff @someone`" in prompt[0]["text"]
        assert h.sample("router_reminders_sent_total", {"kind": "handoff"}) == 1
        assert h.sample("router_pages_sent_total", {"role": "reminder"}) is None


# --------------------------------------------------------------------------- 5. confidentiality

SECRET_ALERT = "ZqPayrollLedgerCorrupt"
SECRET_HOST = "ledger-db-secret-7"
SECRET_SUMMARY = "salary rows for ACME-CFO overwritten"


async def test_logs_carry_no_alert_text_titles_or_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    alert = am_alert("f1", alertname=SECRET_ALERT, instance=SECRET_HOST, team="payroll-secret")
    alert["annotations"]["summary"] = SECRET_SUMMARY
    payload = am_payload(groupKey=f'{{}}:{{alertname="{SECRET_ALERT}"}}', alerts=[alert],
                         commonAnnotations={"summary": SECRET_SUMMARY},
                         commonLabels={"alertname": SECRET_ALERT, "severity": "critical"},
                         groupLabels={"alertname": SECRET_ALERT})  # fmt: skip
    async with running_router(tmp_path, github=True, config=CONFIG) as h:
        assert h.github is not None
        # side effects that fail and are retried or dead-lettered log too
        h.github.fail_next(r"/issues$", status=502, method="POST", commit=True)
        await h.alertmanager(payload)
        key = await h.page_key()
        await h.press("page.declare", key, STRANGER)  # refused: logged
        await h.press("page.declare", key, PRIMARY)
        await h.settle()
        incident = await h.incident(1)
        assert SECRET_ALERT in incident.title and SECRET_HOST in incident.title
        assert h.issue_with_marker("incident:1:tracking-issue") is not None
        await h.command("severity INC-1 high payroll-only, ACME-CFO asked", STRANGER)
        await h.command("severity INC-1 high payroll-only, ACME-CFO asked", PRIMARY)
        h.slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
        await h.command("update ACME-CFO informed about the salary rows", PRIMARY)
        await h.command("declare Secret merger data room exposed", RESPONDER)
        await h.press(messages.REPORT_PAGE, "Secret merger data room exposed", RESPONDER,
                      block_id="report")  # fmt: skip
        await h.command("flag INC-1 data-loss", PRIMARY)
        await h.command("resolve INC-1 restored the salary rows from backup", PRIMARY)
        await h.settle()
        assert h.issue_with_marker("incident:1:postmortem") is not None
        assert len(await h.jobs(JobStatus.DEAD)) == 1  # the channel_not_found post

    assert caplog.records, "nothing was logged: the test would prove nothing"
    logged = caplog.text + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    assert "refused" in logged and "is dead" in logged and "will retry" in logged
    for text in (SECRET_ALERT, SECRET_HOST, SECRET_SUMMARY, "payroll-secret", "ACME-CFO",
                 "salary", "Secret merger", incident.title, SLACK_TOKEN, SIGNING_SECRET,
                 GITHUB_TOKEN, AM_TOKEN):  # fmt: skip
        assert text not in logged, f"{text!r} was logged"


async def test_a_public_tracking_repo_stops_the_start_unless_allowed(tmp_path: Path) -> None:
    async with fake_github(private=False) as gh:
        with pytest.raises(RuntimeError, match="is public: incident details are confidential"):
            async with running_router(tmp_path, github=gh):
                pytest.fail("the router started with a public tracking repo")
        assert gh.calls_to("POST", ".") == []

        allowed = {"github": {"allow_public_repo": True}}
        async with running_router(tmp_path, github=gh, config=allowed) as h:
            await h.alertmanager(am_payload())
            await declare_from_page(h)
            assert h.issue_with_marker("incident:1:tracking-issue") is not None


# --------------------------------------------------------------------------- 6. metrics


def gauges(h: Harness) -> dict[str, float | None]:
    found = {
        level: h.sample("router_incidents_open", {"severity": level})
        for level in ("critical", "high", "medium", "low")
    }
    return found | {"owed": h.sample("router_postmortems_owed")}


async def test_incident_metrics_through_a_flow(tmp_path: Path) -> None:
    async with running_router(tmp_path, github=True) as h:
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        await h.refresh_gauges()
        assert gauges(h) == {"critical": 1, "high": 0, "medium": 0, "low": 0, "owed": 0}

        await wait_until(h, timedelta(minutes=10))
        await h.command("severity high one region only", PRIMARY)
        await h.command("severity low it is nothing", STRANGER)  # refused
        await h.command(f"handoff <@{SECONDARY}>", PRIMARY)
        await h.settle()
        await h.control(messages.INC_ACCEPT, SECONDARY)
        await h.command("flag outage", SECONDARY)
        await h.refresh_gauges()
        assert gauges(h) == {"critical": 0, "high": 1, "medium": 0, "low": 0, "owed": 0}

        await wait_until(h, timedelta(minutes=70, seconds=5))  # a status reminder (60 min)
        await wait_until(h, timedelta(minutes=75))
        await h.command("mitigated", SECONDARY)
        await wait_until(h, timedelta(minutes=100))
        await h.command("resolve rebuilt the replica", SECONDARY)
        await h.settle()
        await h.refresh_gauges()
        assert gauges(h) == {"critical": 0, "high": 0, "medium": 0, "low": 0, "owed": 1}

        answer = await h.command("postmortem done", SECONDARY)
        assert answer["text"] == "Done: postmortem on INC-1.", answer
        await h.refresh_gauges()
        assert gauges(h)["owed"] == 0

        # declared once, at the severity it was declared with
        assert h.sample("router_incidents_declared_total", {"severity": "critical"}) == 1
        assert h.sample("router_incidents_declared_total", {"severity": "high"}) is None
        # durations from declaration, by the severity at the time
        mitigation = "router_incident_mitigation_seconds"
        assert h.sample(f"{mitigation}_count", {"severity": "high"}) == 1
        assert h.sample(f"{mitigation}_sum", {"severity": "high"}) == 75 * 60
        assert h.sample(f"{mitigation}_count", {"severity": "critical"}) is None
        resolution = "router_incident_resolution_seconds"
        assert h.sample(f"{resolution}_count", {"severity": "high"}) == 1
        assert h.sample(f"{resolution}_sum", {"severity": "high"}) == 100 * 60
        assert h.sample("router_reminders_sent_total", {"kind": "status"}) == 1
        assert h.sample("router_unauthorized_actions_total") == 1
        assert h.sample("router_pages_opened_total") == 1
        assert h.sample("router_pages_sent_total", {"role": "eng-primary"}) == 1
        # a handoff offer is a DM, not a page
        assert h.sample("router_pages_sent_total", {"role": "handoff"}) is None
        exposed = await (await h.client.get("/metrics")).text()
        assert 'router_incidents_declared_total{severity="critical"} 1.0' in exposed


async def test_closing_the_post_mortem_issue_closes_the_incident(tmp_path: Path) -> None:
    async with running_router(tmp_path, github=True) as h:
        assert h.github is not None
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        await h.command("resolve the cache was flushed", PRIMARY)  # critical: post-mortem owed
        await h.settle()
        postmortem = h.issue_with_marker("incident:1:postmortem")
        assert postmortem is not None
        await wait_until(h, timedelta(minutes=61))  # looked: still open
        assert (await h.incident(1)).status.value == "resolved"

        # someone closes the post-mortem issue on GitHub
        closed = await h.client.session.patch(
            f"{h.github.base_url}/repos/{h.repo}/issues/{postmortem['number']}",
            json={"state": "closed", "state_reason": "completed"},
            headers={"Authorization": f"token {GITHUB_TOKEN}"},
        )
        assert closed.status == 200
        await wait_until(h, timedelta(minutes=122))
        incident = await h.incident(1)
        assert (incident.status.value, incident.postmortem_owed) == ("closed", False)
        await h.wait_thread("The post-mortem issue was closed; INC-1 is closed.")
        await h.refresh_gauges()
        assert h.sample("router_postmortems_owed") == 0


async def test_a_github_failure_is_told_to_the_commander_in_the_thread(tmp_path: Path) -> None:
    async with running_router(tmp_path, github=True, config=CONFIG) as h:
        assert h.github is not None
        h.github.fail_next(r"/issues$", status=422, method="POST")  # validation failed
        await h.alertmanager(am_payload())
        await declare_from_page(h)
        notice = await h.wait_thread("Could not update GitHub")
        assert "github.issue" in notice and "HTTP 422" in notice
        ops = await h.slack.wait_for(lambda: h.slack.messages_in(OPS))
        assert "failed for good" in ops[0]["text"]
