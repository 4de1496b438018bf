"""FakeSlack's channel, bookmark and modal methods, driven by the real AsyncWebClient.

Each test holds the stand-in to an answer Slack gives (tests/fakes/slack_channels.py
names the sources), so the adapter tests that rely on it meet Slack's behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from router.core.modals import declare_view
from tests.fakes.slack_api import DEFAULT_SCOPES, FakeSlack
from tests.fakes.slack_channels import view_errors

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


async def error_of(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        await call
    assert caught.value.response.status_code == 200
    return dict(caught.value.response.data)


# ------------------------------------------------------------------ conversations.create


async def test_create_private_channel_makes_the_bot_a_member(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    made = await client.conversations_create(name="inc-12-db-down", is_private=True)
    channel = made["channel"]
    assert channel["name"] == "inc-12-db-down"
    assert channel["is_private"] is True
    assert channel["id"].startswith("C")  # private channels have C ids today
    assert channel["is_member"] is True
    assert channel["creator"] == BOT
    assert slack.channel_named("inc-12-db-down") is not None
    # the bot can post there at once
    await client.chat_postMessage(channel=channel["id"], text="summary")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Inc-12", "invalid_name_specials"),
        ("inc 12", "invalid_name_specials"),
        ("inc-12-zürich", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("---", "invalid_name_punctuation"),
        ("", "invalid_name_required"),
    ],
)
async def test_create_refuses_names_slack_refuses(
    client: AsyncWebClient, name: str, error: str
) -> None:
    assert (await error_of(client.conversations_create(name=name)))["error"] == error


async def test_name_taken_counts_archived_channels(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.add_channel("inc-1-old", archived=True)
    await client.conversations_create(name="inc-2-new")
    for name in ("inc-1-old", "inc-2-new"):
        assert (await error_of(client.conversations_create(name=name)))["error"] == "name_taken"
    # exactly 80 characters is fine
    await client.conversations_create(name="y" * 80)


async def test_create_scope_depends_on_privacy(slack: FakeSlack) -> None:
    slack.scopes = set(DEFAULT_SCOPES) - {"groups:write"}
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)
        body = await error_of(client.conversations_create(name="inc-1", is_private=True))
        assert body["error"] == "missing_scope"
        assert body["needed"] == "groups:write"
        assert "groups:write" not in body["provided"].split(",")
        await client.conversations_create(name="inc-1", is_private=False)  # channels:manage
        slack.scopes.discard("channels:manage")
        body = await error_of(client.conversations_create(name="inc-2"))
        assert body["needed"] == "channels:manage"


async def test_restricted_workspace(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.channel_creation_restricted = True
    body = await error_of(client.conversations_create(name="inc-1"))
    assert body["error"] == "restricted_action"


# ------------------------------------------------------------------ conversations.invite


async def made(client: AsyncWebClient, name: str = "inc-1", private: bool = True) -> str:
    return str((await client.conversations_create(name=name, is_private=private))["channel"]["id"])


async def test_invite_adds_members(slack: FakeSlack, client: AsyncWebClient) -> None:
    channel = await made(client)
    answer = await client.conversations_invite(channel=channel, users=[JANE, JOHN])
    assert answer["channel"]["id"] == channel
    assert slack.members_of(channel) == {JANE, JOHN}
    # slack_sdk sends force only when given
    assert "force" not in slack.calls_to("conversations.invite")[-1].args


async def test_one_bad_user_fails_the_whole_invite(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    channel = await made(client)
    await client.conversations_invite(channel=channel, users=JANE)
    slack.add_user("U0GUEST0003", email="guest@example.com")
    slack.make_guest("U0GUEST0003")
    slack.add_user("U0GONE0004", email="gone@example.com")
    slack.deactivate_user("U0GONE0004")
    body = await error_of(
        client.conversations_invite(
            channel=channel, users=[JOHN, JANE, BOT, "U0NOBODY99", "U0GUEST0003", "U0GONE0004"]
        )
    )
    assert body["error"] == "already_in_channel"  # the first failure
    assert body["errors"] == [
        {"user": JANE, "ok": False, "error": "already_in_channel"},
        {"user": BOT, "ok": False, "error": "cant_invite_self"},
        {"user": "U0NOBODY99", "ok": False, "error": "user_not_found"},
        {"user": "U0GUEST0003", "ok": False, "error": "user_is_restricted"},
        {"user": "U0GONE0004", "ok": False, "error": "cant_invite"},
    ]
    assert slack.members_of(channel) == {JANE}  # John was not invited either


async def test_invite_channel_errors(slack: FakeSlack, client: AsyncWebClient) -> None:
    outside_private = slack.add_channel("secret", private=True)
    outside_public = slack.add_channel("lobby")
    archived = slack.add_channel("old", joined=True, archived=True)
    cases = {
        "C0NOPE": "channel_not_found",
        outside_private: "channel_not_found",
        outside_public: "not_in_channel",
        archived: "is_archived",
    }
    for channel, error in cases.items():
        body = await error_of(client.conversations_invite(channel=channel, users=JANE))
        assert body["error"] == error, channel
    mine = await made(client)
    assert (await error_of(client.conversations_invite(channel=mine, users="")))[
        "error"
    ] == "no_user"
    too_many = [f"U{i:09d}" for i in range(1001)]
    # in a form body: slack_sdk puts the arguments in the query string, too long for this
    body = await error_of(
        client.api_call("conversations.invite", data={"channel": mine, "users": ",".join(too_many)})
    )
    assert body["error"] == "too_many_users"
    body = await error_of(client.conversations_invite(channel=mine, users=JANE, force=True))
    assert body["error"] == "invalid_arguments"


async def test_invite_takes_the_granular_scope_too(slack: FakeSlack) -> None:
    slack.scopes = (set(DEFAULT_SCOPES) - {"groups:write"}) | {"groups:write.invites"}
    slack.add_channel("x", private=True, joined=True)
    channel = slack.channel_named("x")
    assert channel is not None
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)
        await client.conversations_invite(channel=channel["id"], users=JANE)
        slack.scopes.discard("groups:write.invites")
        body = await error_of(client.conversations_invite(channel=channel["id"], users=JOHN))
        assert body["error"] == "missing_scope"
        assert body["needed"] == "groups:write,groups:write.invites"


# ------------------------------------------------------------------ topic and archive


async def test_set_topic_limit_is_250(slack: FakeSlack, client: AsyncWebClient) -> None:
    channel = await made(client)
    answer = await client.conversations_setTopic(channel=channel, topic="t" * 250)
    assert answer["channel"]["topic"]["value"] == "t" * 250
    body = await error_of(client.conversations_setTopic(channel=channel, topic="t" * 251))
    assert body["error"] == "too_long"
    assert slack.conversations[channel]["topic"]["value"] == "t" * 250


async def test_archive_once(slack: FakeSlack, client: AsyncWebClient) -> None:
    channel = await made(client)
    answer = await client.conversations_archive(channel=channel)
    assert answer.data == {"ok": True}
    body = await error_of(client.conversations_archive(channel=channel))
    assert body["error"] == "already_archived"
    body = await error_of(client.conversations_setTopic(channel=channel, topic="x"))
    assert body["error"] == "is_archived"


# ------------------------------------------------------------------ bookmarks


async def test_bookmarks_add_and_list(slack: FakeSlack, client: AsyncWebClient) -> None:
    channel = await made(client)
    answer = await client.bookmarks_add(
        channel_id=channel, title="Runbook", type="link", link="https://wiki/runbook"
    )
    bookmark = answer["bookmark"]
    assert bookmark["id"].startswith("Bk")
    assert (bookmark["channel_id"], bookmark["title"], bookmark["type"]) == (
        channel,
        "Runbook",
        "link",
    )
    listed = await client.bookmarks_list(channel_id=channel)
    assert [b["link"] for b in listed["bookmarks"]] == ["https://wiki/runbook"]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"type": "message"}, "invalid_bookmark_type"),
        ({"link": "javascript:alert(1)"}, "invalid_link"),
        ({"link": "https://x/" + "a" * 2048}, "invalid_link"),
        ({"title": "t" * 257}, "invalid_arguments"),
        ({"channel_id": "C0NOPE"}, "channel_not_found"),
    ],
)
async def test_bookmarks_add_refusals(
    client: AsyncWebClient, changes: dict[str, str], error: str
) -> None:
    channel = await made(client)
    args = {"channel_id": channel, "title": "Runbook", "type": "link", "link": "https://wiki/r"}
    args.update(changes)
    body = await error_of(client.bookmarks_add(**args))  # type: ignore[arg-type]
    assert body["error"] == error


async def test_bookmarks_need_their_scopes(slack: FakeSlack) -> None:
    slack.scopes = set(DEFAULT_SCOPES) - {"bookmarks:write", "bookmarks:read"}
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)
        body = await error_of(
            client.bookmarks_add(channel_id="C0INCIDENTS", title="t", type="link", link="https://x")
        )
        assert (body["error"], body["needed"]) == ("missing_scope", "bookmarks:write")
        body = await error_of(client.bookmarks_list(channel_id="C0INCIDENTS"))
        assert body["needed"] == "bookmarks:read"


# ------------------------------------------------------------------ users.conversations


async def test_users_conversations_lists_the_bots_channels(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    private = await made(client, "inc-1", private=True)
    public = await made(client, "inc-2", private=False)
    slack.add_channel("not-mine")
    await client.conversations_archive(channel=public)
    listed = await client.users_conversations(types="public_channel,private_channel", limit=2)
    first = [c["id"] for c in listed["channels"]]
    cursor = listed["response_metadata"]["next_cursor"]
    assert cursor
    rest = await client.users_conversations(types="public_channel,private_channel", cursor=cursor)
    ids = first + [c["id"] for c in rest["channels"]]
    assert set(ids) == {"C0INCIDENTS", private, public}
    assert rest["response_metadata"]["next_cursor"] == ""
    live = await client.users_conversations(
        types="private_channel,public_channel", exclude_archived=True
    )
    assert public not in [c["id"] for c in live["channels"]]
    only_private = await client.users_conversations(types="private_channel")
    assert [c["id"] for c in only_private["channels"]] == [private]


async def test_users_conversations_scope_by_type(slack: FakeSlack) -> None:
    slack.scopes = set(DEFAULT_SCOPES) - {"groups:read"}
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)
        await client.users_conversations(types="public_channel")
        body = await error_of(client.users_conversations(types="public_channel,private_channel"))
        assert body["needed"] == "groups:read"


async def test_history_of_a_private_channel_needs_groups_history(slack: FakeSlack) -> None:
    slack.scopes = set(DEFAULT_SCOPES) - {"groups:history"}
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)
        channel = await made(client, private=True)
        body = await error_of(client.conversations_history(channel=channel))
        assert body["needed"] == "groups:history"


# ------------------------------------------------------------------ views


async def test_views_open_exchanges_a_trigger_once(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    trigger = slack.issue_trigger_id()
    view = declare_view(channel_id="C0INCIDENTS")
    opened = await client.views_open(trigger_id=trigger, view=view)
    assert opened["view"]["id"].startswith("V")
    assert opened["view"]["callback_id"] == "incident.declare"
    assert opened["view"]["private_metadata"] == view["private_metadata"]
    assert opened["view"]["state"] == {"values": {}}
    assert slack.view_log == [("views.open", opened["view"]["id"])]
    body = await error_of(client.views_open(trigger_id=trigger, view=view))
    assert body["error"] == "exchanged_trigger_id"
    body = await error_of(client.views_open(trigger_id="1.2.made-up", view=view))
    assert body["error"] == "invalid_trigger_id"


async def test_a_trigger_lives_three_seconds_of_the_fakes_clock(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    now = [1000.0]
    slack.trigger_clock = lambda: now[0]
    fresh, late = slack.issue_trigger_id(), slack.issue_trigger_id()
    now[0] += 3.0
    await client.views_open(trigger_id=fresh, view=declare_view(channel_id=None))
    now[0] += 0.001
    body = await error_of(client.views_open(trigger_id=late, view=declare_view(channel_id=None)))
    assert body["error"] == "expired_trigger_id"


def small_view(**changes: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "x",
        "title": {"type": "plain_text", "text": "Title"},
        "submit": {"type": "plain_text", "text": "Go"},
        "blocks": [
            {
                "type": "input",
                "block_id": "a",
                "label": {"type": "plain_text", "text": "A"},
                "element": {"type": "plain_text_input", "action_id": "a"},
            }
        ],
    }
    view.update(changes)
    return view


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"title": {"type": "plain_text", "text": "x" * 25}}, "/view/title/text"),
        ({"private_metadata": "m" * 3001}, "/view/private_metadata"),
        ({"callback_id": "c" * 256}, "/view/callback_id"),
        ({"blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({"submit": None}, "/view/submit"),
        ({"type": "home"}, "/view/type"),
        ({"blocks": [small_view()["blocks"][0]] * 2}, "/view/blocks/1/block_id"),
        ({"submit": {"type": "plain_text", "text": "s" * 25}}, "/view/submit/text"),
    ],
)
async def test_views_open_refuses_views_over_slacks_limits(
    slack: FakeSlack, client: AsyncWebClient, changes: dict[str, Any], pointer: str
) -> None:
    view = {k: v for k, v in small_view(**changes).items() if v is not None}
    body = await error_of(client.views_open(trigger_id=slack.issue_trigger_id(), view=view))
    assert body["error"] == "invalid_arguments"
    messages = body["response_metadata"]["messages"]
    assert any(f"[json-pointer:{pointer}]" in m for m in messages), messages
    assert all(m.startswith("[ERROR] ") for m in messages)


def test_view_limits_on_options_and_action_ids() -> None:
    view = small_view(
        blocks=[
            {
                "type": "input",
                "block_id": "s",
                "label": {"type": "plain_text", "text": "S"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "s",
                    "options": [{"text": {"type": "plain_text", "text": "o" * 76}, "value": "v"}],
                    "initial_options": [
                        {"text": {"type": "plain_text", "text": "z"}, "value": "z"}
                    ],
                },
            },
            {
                "type": "actions",
                "block_id": "b",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "same",
                        "text": {"type": "plain_text", "text": "1"},
                    },
                    {
                        "type": "button",
                        "action_id": "same",
                        "text": {"type": "plain_text", "text": "2"},
                    },
                ],
            },
        ]
    )
    pointers = " ".join(view_errors(view))
    assert "/view/blocks/0/element/options/0/text/text" in pointers
    assert "/view/blocks/0/element/initial_options" in pointers
    assert "/view/blocks/1/elements" in pointers


async def test_views_update_by_id_with_hash(slack: FakeSlack, client: AsyncWebClient) -> None:
    opened = await client.views_open(trigger_id=slack.issue_trigger_id(), view=small_view())
    view_id, first_hash = opened["view"]["id"], opened["view"]["hash"]
    updated = await client.views_update(
        view_id=view_id, hash=first_hash, view=small_view(callback_id="y")
    )
    assert updated["view"]["id"] == view_id
    assert updated["view"]["callback_id"] == "y"
    body = await error_of(client.views_update(view_id=view_id, hash="0.stale", view=small_view()))
    assert body["error"] == "hash_conflict"
    body = await error_of(client.views_update(view_id="V0NOPE", view=small_view()))
    assert body["error"] == "not_found"
    body = await error_of(
        client.views_update(
            view_id=view_id, view=small_view(title={"type": "plain_text", "text": "t" * 30})
        )
    )
    assert body["error"] == "invalid_arguments"


async def test_views_need_a_bot_token_but_no_scope(slack: FakeSlack) -> None:
    slack.scopes = set()
    async with aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)
        await client.views_open(trigger_id=slack.issue_trigger_id(), view=small_view())
        wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url, session=session)
        body = await error_of(
            wrong.views_open(trigger_id=slack.issue_trigger_id(), view=small_view())
        )
        assert body["error"] == "invalid_auth"
