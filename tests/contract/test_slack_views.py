"""Opening the modals through views.open / views.update against FakeSlack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.slack.views import TOO_LATE, ModalFailed, open_view, update_view
from router.core.incident import Flag, Incident
from router.core.modals import declare_view, dismiss_view, resolve_view, status_update_view
from router.core.severity import Severity, Suggestion
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-test"
AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def client(slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)


def an_incident() -> Incident:
    suggestion = Suggestion(severity=Severity.CRITICAL, clause="extreme outage")
    return Incident(
        number=12,
        title="Checkout returns 500s " * 20,
        commander="U0JANE0001",
        severity=Severity.CRITICAL,
        severity_reason=suggestion.clause,
        suggestion=suggestion,
        declared_at=AT,
        declared_by="U0JANE0001",
        announce_job="incident:12:announce",
        flags=[Flag.CUSTOMERS, Flag.OUTAGE],
    )


VIEWS = {
    "declare": lambda: declare_view(channel_id="C0INCIDENTS"),
    "dismiss": lambda: dismiss_view(
        page_key="p86e62eccfb83593a", title="HighLatency " * 500, level=2
    ),
    "resolve": lambda: resolve_view(an_incident()),
    "update": lambda: status_update_view(an_incident()),
}


@pytest.mark.parametrize("which", sorted(VIEWS))
async def test_slack_opens_every_modal(
    slack: FakeSlack, client: AsyncWebClient, which: str
) -> None:
    view = VIEWS[which]()
    opened = await open_view(client, slack.issue_trigger_id(), view)
    stored = slack.views[opened.id]
    assert stored["callback_id"] == view["callback_id"]
    assert stored["private_metadata"] == view["private_metadata"]
    assert opened.hash == stored["hash"]


async def test_an_expired_trigger_is_answered_to_the_person(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    now = [0.0]
    slack.trigger_clock = lambda: now[0]
    trigger = slack.issue_trigger_id()
    now[0] = 3.5
    with pytest.raises(ModalFailed) as caught:
        await open_view(client, trigger, declare_view(channel_id=None))
    assert caught.value.code == "expired_trigger_id"
    assert caught.value.answer == TOO_LATE
    assert "expired_trigger_id" in caught.value.reason


async def test_a_used_trigger(slack: FakeSlack, client: AsyncWebClient) -> None:
    trigger = slack.issue_trigger_id()
    await open_view(client, trigger, declare_view(channel_id=None))
    with pytest.raises(ModalFailed) as caught:
        await open_view(client, trigger, declare_view(channel_id=None))
    assert caught.value.code == "exchanged_trigger_id"
    assert "again" in caught.value.answer


async def test_a_view_slack_refuses_says_where(slack: FakeSlack, client: AsyncWebClient) -> None:
    view = declare_view(channel_id=None)
    view["title"]["text"] = "A title far over Slack's 24"
    with pytest.raises(ModalFailed) as caught:
        await open_view(client, slack.issue_trigger_id(), view)
    assert caught.value.code == "invalid_arguments"
    assert "[json-pointer:/view/title/text]" in caught.value.reason


async def test_slack_busy_is_answered_not_retried(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail_next("views.open", status=503)
    with pytest.raises(ModalFailed) as caught:
        await open_view(client, slack.issue_trigger_id(), declare_view(channel_id=None))
    assert "busy" in caught.value.answer
    assert len(slack.calls_to("views.open")) == 1


async def test_slow_slack_is_cut_short_within_the_triggers_life() -> None:
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"ok": True, "view": {"id": "V1", "hash": "h"}})

    app = web.Application()
    app.router.add_post("/api/views.open", stall)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        client = AsyncWebClient(token=TOKEN, base_url=f"http://127.0.0.1:{port}/api/")
        with pytest.raises(ModalFailed) as caught:
            await open_view(client, "t", declare_view(channel_id=None), within=0.05)
        assert "TimeoutError" in caught.value.reason
    finally:
        release.set()
        await runner.cleanup()


async def test_update_an_open_view(slack: FakeSlack, client: AsyncWebClient) -> None:
    opened = await open_view(client, slack.issue_trigger_id(), declare_view(channel_id=None))
    changed = status_update_view(an_incident())
    updated = await update_view(client, opened.id, changed, hash=opened.hash)
    assert updated.id == opened.id
    assert slack.views[opened.id]["callback_id"] == changed["callback_id"]
    with pytest.raises(ModalFailed) as caught:
        await update_view(client, opened.id, changed, hash=opened.hash)  # stale now
    assert caught.value.code == "hash_conflict"
    with pytest.raises(ModalFailed) as gone:
        await update_view(client, "V0NOPE", changed)
    assert gone.value.code == "not_found"
