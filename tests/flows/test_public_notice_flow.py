"""Public notices end to end: ``/incident public`` shows a preview, only Confirm
publishes (aiohttp against FakeStatuspage, Statuspage's real request and answer
shapes); updates and the resolution go to the same Statuspage incident; a confidential
incident never reaches it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from router.core.incident import Incident
from router.core.jobs import JobStatus
from router.core.public_notice import CANCEL, CONFIRM
from tests.conftest import am_payload
from tests.fakes.statuspage_api import FakeStatuspage
from tests.harness import (
    OPS,
    PRIMARY,
    RESPONDER,
    SECONDARY,
    Harness,
    running_router,
)

KEY, PAGE = "sp-api-key-0123456789", "gytm4qzbx9t6"
API, CHECKOUT = "8kbf7d35c070", "vtnh60py4yd7"


@pytest.fixture
async def sp() -> AsyncIterator[FakeStatuspage]:
    async with FakeStatuspage(KEY, PAGE, {API: "API", CHECKOUT: "Checkout"}) as fake:
        yield fake


def setup(sp: FakeStatuspage) -> dict[str, Any]:
    config = {
        "statuspage": {"api_url": sp.api_url, "page_id": PAGE, "component_ids": [API, CHECKOUT]}
    }
    return {"config": config, "secrets": {"STATUSPAGE_API_KEY": KEY}}


async def declare_critical(h: Harness) -> None:
    await h.alertmanager(am_payload())
    key = await h.page_key(PRIMARY)
    response = await h.press("page.declare", key, PRIMARY, response_name="declare")
    assert (await response.json())["ok"] is True
    await h.settle()


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        element["action_id"]: element
        for block in blocks
        for element in block.get("elements", [])
        if element.get("type") == "button"
    }


async def press(h: Harness, button: dict[str, Any], user: str, name: str) -> dict[str, Any]:
    action = {"type": "button", "action_id": button["action_id"], "value": button["value"],
              "block_id": "public"}  # fmt: skip
    response = await h.act(action, user, response_name=name)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    await h.settle()
    return answer


async def preview(h: Harness, text: str, user: str = PRIMARY) -> dict[str, dict[str, Any]]:
    answer = await h.command(f"public {text}", user)
    assert answer["response_type"] == "ephemeral"
    assert "Nothing is published until you press Confirm." in answer["text"]
    found = buttons(answer["blocks"])
    assert set(found) == {CONFIRM, CANCEL}
    await h.settle()
    return found


async def test_a_public_notice_is_published_only_after_confirm_and_updates_the_same_incident(
    tmp_path: Path, sp: FakeStatuspage
) -> None:
    async with running_router(tmp_path, github=True, **setup(sp)) as h:
        await declare_critical(h)

        # the preview: nothing reaches Statuspage, the thread says nothing public yet
        shown = await preview(h, "We are investigating elevated checkout errors.")
        assert sp.writes() == []
        assert sp.calls == []
        assert not [t for t in await h.thread() if "Public notice" in t]

        # a responder who is neither commander nor comms lead cannot confirm it
        refused = await press(h, shown[CONFIRM], RESPONDER, "responder")
        assert refused["ok"] is False
        assert "Only the commander or the communications lead" in refused["refused"][0]
        assert sp.writes() == []

        # the commander's Confirm publishes, once
        answer = await press(h, shown[CONFIRM], PRIMARY, "confirm")
        assert answer["ok"] is True
        [incident] = sp.incidents.values()
        assert incident["name"] == "Service disruption"  # not the internal title
        assert incident["status"] == "investigating"
        assert incident["metadata"] == {"router": {"incident": "INC-1"}}
        update = incident["incident_updates"][0]
        assert update["body"] == "We are investigating elevated checkout errors."
        # critical: the configured components show a major outage
        assert {c: sp.components[c]["status"] for c in (API, CHECKOUT)} == {
            API: "major_outage",
            CHECKOUT: "major_outage",
        }
        # the preview is replaced by the answer (its buttons are gone)
        [replaced] = h.slack.responses_for("confirm")
        assert replaced["replace_original"] is True
        assert "Publishing on the status page" in replaced["text"]
        # a second press of the same preview publishes nothing more
        again = await press(h, shown[CONFIRM], PRIMARY, "again")
        assert again["refused"] == ["That preview is no longer current: nothing was published."]
        assert len(sp.writes()) == 1

        # in the thread and the record (and so on the tracking issue)
        confirmed = await h.wait_thread("Public notice (investigating) confirmed")
        assert "elevated checkout errors" in confirmed
        link = await h.wait_thread("On the status page: ")
        assert incident["shortlink"] in link
        assert (await h.incident(1)).public_url == incident["shortlink"]

        # a cancelled draft publishes nothing
        shown = await preview(h, "Never mind this one.")
        cancelled = await press(h, shown[CANCEL], PRIMARY, "cancel")
        assert cancelled["replies"] == ["Cancelled: nothing was published."]
        assert len(sp.writes()) == 1
        assert (await press(h, shown[CONFIRM], PRIMARY, "late"))["ok"] is False
        assert len(sp.writes()) == 1

        # the comms lead may publish too; an update goes to the same Statuspage incident,
        # and component status follows the severity (high: partial outage)
        await h.command(f"role comms <@{SECONDARY}>", PRIMARY)
        await h.command("severity high only the EU region is affected", PRIMARY)
        await h.command("flag outage", PRIMARY)  # a post-mortem stays owed
        await h.command("mitigated", PRIMARY)
        await h.settle()
        shown = await preview(h, "A fix is rolling out.", SECONDARY)
        await press(h, shown[CONFIRM], SECONDARY, "update")
        assert len(sp.incidents) == 1
        [incident] = sp.incidents.values()
        assert incident["status"] == "monitoring"
        assert incident["incident_updates"][0]["body"] == "A fix is rolling out."
        assert sp.components[API]["status"] == "partial_outage"

        # resolving drafts the public resolution for the commander; only their Confirm
        # publishes it, to the same Statuspage incident, components operational again
        answer = await h.command("resolve the release was rolled back", PRIMARY)
        await h.settle()
        assert incident["status"] == "monitoring"  # not yet
        await h.wait_thread("The resolution notice waits for your Confirm")
        [dm] = [m for m in h.slack.dms_to(PRIMARY) if CONFIRM in str(m["blocks"])]
        assert "(resolved)" in dm["text"]
        await press(h, buttons(dm["blocks"])[CONFIRM], PRIMARY, "resolution")
        assert len(sp.incidents) == 1
        [incident] = sp.incidents.values()
        assert incident["status"] == "resolved"
        assert incident["incident_updates"][0]["body"].startswith("This incident has been resolved")
        assert {sp.components[c]["status"] for c in (API, CHECKOUT)} == {"operational"}

        # every public post is in the post-mortem: those before it was written in its
        # body, the resolution confirmed afterwards as a comment on it
        postmortem = h.issue_with_marker("incident:1:postmortem")
        assert postmortem is not None and h.github is not None
        body = postmortem["body"]
        public = body.split("## Public communication", 1)[1].split("## Timeline", 1)[0]
        assert incident["shortlink"] in public
        assert "public notice (investigating): We are investigating elevated checkout" in public
        assert "public notice (monitoring): A fix is rolling out." in public
        assert "Never mind" not in body
        comments = [c["body"] for c in h.github.comments(h.repo, postmortem["number"])]
        assert any("public notice (resolved): This incident has been resolved" in c
                   for c in comments)  # fmt: skip
        assert await h.jobs(JobStatus.DEAD) == []
        assert len(sp.writes()) == 3


async def set_confidential(h: Harness, number: int = 1) -> None:
    def unit(tx: Any) -> None:
        incident: Incident = tx.incident(number)
        tx.save_incident(
            incident.model_copy(update={"confidential": True, "version": incident.version + 1})
        )

    await h.store.run(unit)


async def test_a_confidential_incident_never_reaches_the_status_page(
    tmp_path: Path, sp: FakeStatuspage
) -> None:
    async with running_router(tmp_path, **setup(sp)) as h:
        await declare_critical(h)
        # a draft made before the incident was marked confidential...
        shown = await preview(h, "We are investigating.")
        await set_confidential(h)
        # ...cannot be confirmed, and no new one can be made
        answer = await press(h, shown[CONFIRM], PRIMARY, "confirm")
        assert answer["refused"] == [
            "INC-1 is confidential: nothing about it goes on the public status page."
            " Tell affected customers through the channels your policy allows."
        ]
        refused = await h.command("public We are investigating.", PRIMARY)
        assert refused["text"].startswith("INC-1 is confidential")
        assert "blocks" not in refused
        await h.command("resolve fixed", PRIMARY)
        await h.settle()
        assert sp.calls == []
        assert not [m for m in h.slack.messages if CONFIRM in str(m.get("blocks"))]


async def test_without_statuspage_the_command_says_so(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await declare_critical(h)
        answer = await h.command("public We are investigating.", PRIMARY)
        assert answer["text"] == (
            "The public status page is not configured (statuspage and STATUSPAGE_API_KEY)."
        )


async def test_a_rate_limited_notice_is_retried_and_published_once(
    tmp_path: Path, sp: FakeStatuspage
) -> None:
    async with running_router(tmp_path, **setup(sp)) as h:
        await declare_critical(h)
        shown = await preview(h, "We are investigating.")
        # the create got through but its answer was lost (a 503 after committing): the
        # retry finds the incident by its metadata marker instead of opening another
        sp.fail_next(503, commit=True, method="POST")
        await press(h, shown[CONFIRM], PRIMARY, "confirm")
        await h.settle(horizon=30)
        [job] = [j for j in await h.jobs() if j.kind.value == "statuspage.notice"]
        assert job.status is JobStatus.DONE and job.attempts == 2
        assert len(sp.incidents) == 1


async def test_a_refused_notice_is_reported_to_the_operator_and_the_commander(
    tmp_path: Path, sp: FakeStatuspage
) -> None:
    wrong = setup(sp)
    wrong["secrets"]["STATUSPAGE_API_KEY"] = "not-the-key"
    async with running_router(tmp_path, **wrong) as h:
        await declare_critical(h)
        shown = await preview(h, "We are investigating.")
        await press(h, shown[CONFIRM], PRIMARY, "confirm")
        [dead] = await h.jobs(JobStatus.DEAD)
        assert dead.kind.value == "statuspage.notice" and dead.attempts == 1  # not retried
        assert "HTTP 401 (STATUSPAGE_API_KEY was refused)" in (dead.last_error or "")
        told = [m["text"] for m in h.slack.messages_in(OPS)]
        assert any("statuspage.notice job failed for good" in t for t in told)
        warning = await h.wait_thread("Could not publish on the status page")
        assert "nothing new is public" in warning
        assert sp.incidents == {}
        assert all("not-the-key" not in t for t in told)
