"""Incident channel operations against FakeSlack, through slack_sdk's AsyncWebClient."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.slack import channels
from router.adapters.slack.scopes import (
    BOT_SCOPES,
    REQUIRED,
    MissingScope,
    granted_scopes,
    missing,
)
from router.app.effects import PermanentFailure, RetryLater
from router.core.channel_names import MAX_LENGTH, channel_name
from tests.fakes.slack_api import DEFAULT_SCOPES, FakeSlack

TOKEN = "xoxb-test"
JANE, JOHN, BOT = "U0JANE0001", "U0JOHN0002", "U0ROUTERBOT"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN, channels={"C0INCIDENTS"}) as fake:
        yield fake


@pytest.fixture
async def client(slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)


# ------------------------------------------------------------------ create


async def test_create_a_private_channel(slack: FakeSlack, client: AsyncWebClient) -> None:
    made = await channels.create_channel(client, "inc-1-db-down", private=True)
    assert made.name == "inc-1-db-down"
    assert slack.conversations[made.id]["is_private"] is True
    assert made.as_result() == {"channel": made.id, "name": "inc-1-db-down"}


async def test_name_taken_gets_the_next_suffix(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_channel("inc-db-down")
    slack.add_channel("inc-db-down-2", archived=True)
    made = await channels.create_channel(client, "inc-db-down", private=True)
    assert made.name == "inc-db-down-3"
    tried = [c.args["name"] for c in slack.calls_to("conversations.create")]
    assert tried == ["inc-db-down", "inc-db-down-2", "inc-db-down-3"]


async def test_a_second_declaration_with_the_same_title_gets_another_channel(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    template = "inc-{slug}"  # no number: the suffix is what tells them apart
    first = await channels.create_channel(
        client, channel_name(template, number=1, title="DB down"), private=True
    )
    second = await channels.create_channel(
        client, channel_name(template, number=2, title="DB down"), private=True
    )
    assert (first.name, second.name) == ("inc-db-down", "inc-db-down-2")


async def test_suffixes_stay_within_80(slack: FakeSlack, client: AsyncWebClient) -> None:
    long = channel_name("inc-{slug}", number=1, title="storage latency in every region " * 5)
    slack.add_channel(long)
    made = await channels.create_channel(client, long, private=False)
    assert len(made.name) <= MAX_LENGTH
    assert made.name.endswith("-2")


async def test_tries_are_bounded(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.add_channel("inc-x")
    for n in range(2, 4):
        slack.add_channel(f"inc-x-{n}")
    with pytest.raises(PermanentFailure, match=r"name_taken \(3 names tried\)") as caught:
        await channels.create_channel(client, "inc-x", private=True, tries=3)
    assert "inc-x" not in caught.value.reason  # channel names carry titles: not in reasons
    assert len(slack.calls_to("conversations.create")) == 3


async def test_missing_scope_names_the_scope(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.scopes.discard("groups:write")
    with pytest.raises(MissingScope) as caught:
        await channels.create_channel(client, "inc-1", private=True)
    assert caught.value.needed == ("groups:write",)
    assert "groups:write" in caught.value.reason
    assert "chat:write" in caught.value.provided
    assert isinstance(caught.value, PermanentFailure)


async def test_restricted_workspace_is_permanent(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.channel_creation_restricted = True
    with pytest.raises(PermanentFailure, match="restricted_action"):
        await channels.create_channel(client, "inc-1", private=True)


async def test_rate_limit_and_server_errors_retry_later(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.fail_next("conversations.create", status=429, retry_after=7)
    with pytest.raises(RetryLater) as caught:
        await channels.create_channel(client, "inc-1", private=True)
    assert caught.value.after == 7
    slack.fail_next("conversations.create", status=500, commit=True)
    with pytest.raises(RetryLater) as doubt:
        await channels.create_channel(client, "inc-1", private=True)
    assert doubt.value.in_doubt  # Slack may have made it: look before trying again


async def test_a_lost_answer_is_found_instead_of_making_a_second_channel(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    began = time.time() - 1
    slack.add_channel("inc-7-db-down-2")  # someone else's, made long ago
    slack.fail_next("conversations.create", status=500, commit=True)
    with pytest.raises(RetryLater):
        await channels.create_channel(client, "inc-7-db-down", private=True)
    found = await channels.find_created_channel(client, "inc-7-db-down", creator=BOT, since=began)
    assert found is not None
    assert found.name == "inc-7-db-down"
    assert slack.conversations[found.id]["creator"] == BOT
    # nothing of ours: None, and the job runs again
    assert await channels.find_created_channel(client, "inc-8-x", creator=BOT, since=began) is None
    # a channel of that name made before the attempt is not ours
    assert (
        await channels.find_created_channel(
            client, "inc-7-db-down", creator=BOT, since=time.time() + 5
        )
        is None
    )


async def test_find_created_channel_reads_every_page(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    for i in range(5):
        await channels.create_channel(client, f"other-{i}", private=True)
    await channels.create_channel(client, "inc-9-late", private=True)
    channels_page = channels.LOOKUP_PAGE_SIZE
    channels.LOOKUP_PAGE_SIZE = 2
    try:
        found = await channels.find_created_channel(client, "inc-9-late", creator=BOT, since=0)
    finally:
        channels.LOOKUP_PAGE_SIZE = channels_page
    assert found is not None and found.name == "inc-9-late"
    assert len(slack.calls_to("users.conversations")) >= 3


# ------------------------------------------------------------------ invite


async def private_channel(client: AsyncWebClient) -> str:
    return (await channels.create_channel(client, "inc-1", private=True)).id


async def test_invite_everyone(slack: FakeSlack, client: AsyncWebClient) -> None:
    channel = await private_channel(client)
    got = await channels.invite(client, channel, [JANE, JOHN, JANE])
    assert got.invited == [JANE, JOHN]
    assert slack.members_of(channel) == {JANE, JOHN}
    assert len(slack.calls_to("conversations.invite")) == 1


async def test_bad_users_are_skipped_and_the_rest_invited(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    channel = await private_channel(client)
    await channels.invite(client, channel, [JANE])
    slack.add_user("U0GUEST0003", email="guest@example.com")
    slack.make_guest("U0GUEST0003")
    slack.add_user("U0GONE0004", email="gone@example.com")
    slack.deactivate_user("U0GONE0004")
    got = await channels.invite(
        client, channel, [JANE, BOT, JOHN, "U0NOBODY99", "U0GUEST0003", "U0GONE0004"]
    )
    assert got.invited == [JOHN]
    assert sorted(got.already) == sorted([JANE, BOT])
    assert got.skipped == {
        "U0NOBODY99": "user_not_found",
        "U0GUEST0003": "user_is_restricted",
        "U0GONE0004": "cant_invite",
    }
    assert slack.members_of(channel) == {JANE, JOHN}
    assert len(slack.calls_to("conversations.invite")) == 3  # one refused, then the rest


async def test_one_user_at_a_time_errors_are_understood_without_an_errors_list(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    channel = await private_channel(client)
    slack.fail_next("conversations.invite", status=200, error="already_in_channel")
    got = await channels.invite(client, channel, [JANE])
    assert got.already == [JANE]
    assert got.invited == []


async def test_channel_errors_fail_the_job(slack: FakeSlack, client: AsyncWebClient) -> None:
    archived = slack.add_channel("old", joined=True, archived=True)
    with pytest.raises(PermanentFailure, match=r"conversations\.invite: is_archived"):
        await channels.invite(client, archived, [JANE])
    lobby = slack.add_channel("lobby")
    with pytest.raises(PermanentFailure, match="not_in_channel"):
        await channels.invite(client, lobby, [JANE])
    channel = await private_channel(client)
    slack.scopes.discard("groups:write")
    with pytest.raises(MissingScope) as caught:
        await channels.invite(client, channel, [JANE])
    assert caught.value.needed == ("groups:write", "groups:write.invites")


async def test_many_users_go_in_batches(slack: FakeSlack, client: AsyncWebClient) -> None:
    people = [f"U0P{i:07d}" for i in range(65)]
    for uid in people:
        slack.add_user(uid, email=f"{uid.lower()}@example.com")
    channel = await private_channel(client)
    got = await channels.invite(client, channel, people)
    assert got.invited == people
    sizes = [len(c.args["users"].split(",")) for c in slack.calls_to("conversations.invite")]
    assert sizes == [30, 30, 5]


async def test_no_users_no_call(slack: FakeSlack, client: AsyncWebClient) -> None:
    got = await channels.invite(client, await private_channel(client), [])
    assert got.as_result() == {"invited": [], "already": [], "skipped": {}}
    assert slack.calls_to("conversations.invite") == []


# ------------------------------------------------------------------ topic, archive, bookmarks


async def test_topic_and_archive(slack: FakeSlack, client: AsyncWebClient) -> None:
    channel = await private_channel(client)
    await channels.set_topic(client, channel, "INC-1 · high · IC <@U0JANE0001> · active")
    assert slack.conversations[channel]["topic"]["value"].startswith("INC-1 · high")
    with pytest.raises(PermanentFailure, match="too_long"):
        await channels.set_topic(client, channel, "x" * 251)
    assert await channels.archive(client, channel) is True
    assert await channels.archive(client, channel) is False  # already: done
    with pytest.raises(PermanentFailure, match="is_archived"):
        await channels.set_topic(client, channel, "late")


async def test_bookmarks_are_added_once(slack: FakeSlack, client: AsyncWebClient) -> None:
    channel = await private_channel(client)
    marks = [
        ("Tracking issue", "https://github.com/acme/ops/issues/7"),
        ("Runbook", "https://wiki/r"),
    ]
    first = await channels.add_bookmarks(client, channel, marks)
    again = await channels.add_bookmarks(client, channel, marks)  # a retried job
    assert first == again
    assert [b["title"] for b in slack.conversations[channel]["bookmarks"]] == [
        "Tracking issue",
        "Runbook",
    ]


async def test_bookmarks_without_the_read_scope_still_get_added(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    channel = await private_channel(client)
    slack.scopes.discard("bookmarks:read")
    bookmark = await channels.add_bookmark(client, channel, "Runbook", "https://wiki/r")
    assert bookmark.startswith("Bk")
    slack.scopes.discard("bookmarks:write")
    with pytest.raises(MissingScope, match="bookmarks:write"):
        await channels.add_bookmark(client, channel, "Alerts", "https://am/alerts")


async def test_bad_links_are_permanent(slack: FakeSlack, client: AsyncWebClient) -> None:
    channel = await private_channel(client)
    with pytest.raises(PermanentFailure, match="invalid_link"):
        await channels.add_bookmark(client, channel, "x", "javascript:alert(1)")


# ------------------------------------------------------------------ scopes


async def test_granted_scopes_and_what_a_feature_misses(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    assert await granted_scopes(client) == frozenset(DEFAULT_SCOPES)
    slack.scopes -= {"groups:write", "bookmarks:read"}
    granted = await granted_scopes(client)
    assert missing(granted, ["paging", "private_incident_channels"]) == {
        "private_incident_channels": ["groups:write", "bookmarks:read"]
    }
    assert missing(granted, ["paging", "public_incident_channels"]) == {
        "public_incident_channels": ["bookmarks:read"]
    }


def test_every_required_scope_is_in_the_table_with_a_reason() -> None:
    for scopes in REQUIRED.values():
        assert set(scopes) <= set(BOT_SCOPES)
    assert all(len(why) > 10 for why in BOT_SCOPES.values())
    assert set(DEFAULT_SCOPES) == set(BOT_SCOPES)  # the stand-in's token holds the manifest's
