"""The loopback fakes, driven by the real client libraries the router uses.

If these pass, a test that points slack_sdk or PyGithub at a fake exercises the same
request shapes, status codes and headers the router meets in production
(/work/shared/protocols.md sections 4, 5 and 7).
"""

from __future__ import annotations

import asyncio
import json
import time
import types
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import (
    BadCredentialsException,
    RateLimitExceededException,
    UnknownObjectException,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.github_api import SECONDARY_RATE_LIMIT_MESSAGE, FakeGitHub
from tests.fakes.slack_api import FakeSlack

SLACK_TOKEN = "xoxb-test"
GH_TOKEN = "ghp_test"
JANE = "U0JANE0001"

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        token=SLACK_TOKEN, channels={"C0INCIDENTS", "C0LOBBY"}, joined_channels={"C0INCIDENTS"}
    ) as fake:
        yield fake


@pytest.fixture
async def web_client(slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(token=SLACK_TOKEN, base_url=slack.base_url, session=session)


@pytest.fixture
async def gh() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(token=GH_TOKEN, repos={"org/ops": {"private": True}}) as fake:
        yield fake


GithubFactory = Callable[..., Github]


@pytest.fixture
def github_client() -> Iterator[GithubFactory]:
    """Build PyGithub clients against a fake; closes them afterwards."""
    made: list[Github] = []

    def make(fake: FakeGitHub, token: str = GH_TOKEN, **kwargs: Any) -> Github:
        options: dict[str, Any] = {
            "retry": None,
            "seconds_between_requests": None,
            "seconds_between_writes": None,
            "timeout": 5,
        }
        options.update(kwargs)
        client = Github(base_url=fake.base_url, auth=Auth.Token(token), **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# --------------------------------------------------------------------------- Slack Web API


async def test_post_message_returns_string_ts_and_is_recorded(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*HighLatency*"}}]
    resp = await web_client.chat_postMessage(channel="C0INCIDENTS", text="fallback", blocks=blocks)

    assert resp.status_code == 200
    assert resp["ok"] is True
    assert resp["channel"] == "C0INCIDENTS"
    assert isinstance(resp["ts"], str)
    assert len(resp["ts"].split(".")[1]) == 6
    message = resp["message"]
    assert message["ts"] == resp["ts"]
    assert message["text"] == "fallback"
    assert message["blocks"] == blocks
    assert message["bot_id"] == slack.bot_id
    assert message["user"] == slack.bot_user_id

    [stored] = slack.messages_in("C0INCIDENTS")
    assert stored["ts"] == resp["ts"]
    assert stored["blocks"] == blocks
    assert stored["thread_ts"] is None
    [call] = slack.calls_to("chat.postMessage")
    assert call.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert call.content_type == "application/json;charset=utf-8"
    assert call.args["channel"] == "C0INCIDENTS"


async def test_ts_values_strictly_increase(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    tss = [
        (await web_client.chat_postMessage(channel="C0INCIDENTS", text=f"m{i}"))["ts"]
        for i in range(5)
    ]
    assert [Decimal(t) for t in tss] == sorted({Decimal(t) for t in tss})
    assert len(set(tss)) == 5


async def test_thread_reply_keeps_thread_ts(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    parent = await web_client.chat_postMessage(channel="C0INCIDENTS", text="incident")
    reply = await web_client.chat_postMessage(
        channel="C0INCIDENTS", text="update", thread_ts=parent["ts"]
    )
    assert reply["message"]["thread_ts"] == parent["ts"]
    stored = slack.message("C0INCIDENTS", reply["ts"])
    assert stored is not None
    assert stored["thread_ts"] == parent["ts"]


async def test_chat_update_replaces_the_message(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    posted = await web_client.chat_postMessage(channel="C0INCIDENTS", text="firing")
    new_blocks = [{"type": "section", "text": {"type": "plain_text", "text": "acked"}}]
    updated = await web_client.chat_update(
        channel="C0INCIDENTS", ts=posted["ts"], text="acked", blocks=new_blocks
    )
    assert updated["ts"] == posted["ts"]
    assert updated["channel"] == "C0INCIDENTS"
    assert updated["text"] == "acked"
    assert updated["message"]["blocks"] == new_blocks
    [stored] = slack.messages_in("C0INCIDENTS")
    assert stored["text"] == "acked"
    assert stored["blocks"] == new_blocks


async def test_chat_update_unknown_or_float_mangled_ts_is_message_not_found() -> None:
    async with FakeSlack(token=SLACK_TOKEN, ts_start="1700000000.000100") as fake:
        client = AsyncWebClient(token=SLACK_TOKEN, base_url=fake.base_url)
        posted = await client.chat_postMessage(channel="C0INCIDENTS", text="firing")
        assert posted["ts"] == "1700000000.000100"
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel="C0INCIDENTS", ts="1.000001", text="x")
        assert err.value.response["error"] == "message_not_found"

        # A ts stored as a float loses its trailing zeros and no longer matches.
        mangled = str(float(posted["ts"]))
        assert mangled == "1700000000.0001"
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel="C0INCIDENTS", ts=mangled, text="x")
        assert err.value.response["error"] == "message_not_found"
        assert fake.messages[0]["text"] == "firing"


async def test_posting_errors(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await web_client.chat_postMessage(channel="C0LOBBY", text="x")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "not_in_channel"

    with pytest.raises(SlackApiError) as err:
        await web_client.chat_postMessage(channel="C0NOWHERE", text="x")
    assert err.value.response["error"] == "channel_not_found"

    with pytest.raises(SlackApiError) as err, pytest.warns(UserWarning, match="text"):
        await web_client.chat_postMessage(channel="C0INCIDENTS")
    assert err.value.response["error"] == "no_text"

    with pytest.raises(SlackApiError) as err:
        await web_client.chat_postMessage(
            channel="C0INCIDENTS", text="x", blocks=[{"text": "no type"}]
        )
    assert err.value.response["error"] == "invalid_blocks"

    assert slack.messages == []


def _select(options: int, text: str = "x") -> dict[str, object]:
    return {"type": "actions", "elements": [{"type": "static_select", "action_id": "s",
            "options": [{"text": {"type": "plain_text", "text": text}, "value": str(i)}
                        for i in range(options)]}]}  # fmt: skip


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([{"type": "divider"}] * 51, "/blocks"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "/blocks/0/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "/blocks/0"),
        ([_select(101)], "/blocks/0/elements/0/options"),
        ([_select(1, "x" * 76)], "/blocks/0/elements/0/options/0/text/text"),
        ([{"type": "actions", "elements": [{"type": "button", "action_id": "b",
           "text": {"type": "plain_text", "text": "ok"}, "value": "v" * 2001}]}],
         "/blocks/0/elements/0/value"),
        ([{"type": "divider", "block_id": "same"}, {"type": "divider", "block_id": "same"}],
         "/blocks/1"),
    ],
)  # fmt: skip
async def test_blocks_over_slack_limits_are_invalid_blocks(
    slack: FakeSlack, web_client: AsyncWebClient, blocks: list[dict[str, object]], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as err:
        await web_client.chat_postMessage(channel="C0INCIDENTS", text="x", blocks=blocks)
    assert err.value.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}" in e for e in err.value.response["errors"])
    at_the_limit = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}]
    await web_client.chat_postMessage(channel="C0INCIDENTS", text="x", blocks=at_the_limit)
    await web_client.chat_postMessage(channel="C0INCIDENTS", text="x", blocks=[_select(100)])
    assert len(slack.messages) == 2


async def test_post_to_user_id_lands_in_a_stable_dm(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    resp = await web_client.chat_postMessage(channel=JANE, text="you are paged")
    assert resp["channel"].startswith("D")
    assert resp["channel"] == slack.dm_channel_for(JANE)
    assert [m["text"] for m in slack.dms_to(JANE)] == ["you are paged"]

    with pytest.raises(SlackApiError) as err:
        await web_client.chat_postMessage(channel="U0NOBODY", text="x")
    assert err.value.response["error"] == "channel_not_found"


async def test_conversations_open_uses_the_query_string_and_is_stable(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    first = await web_client.conversations_open(users=JANE)
    second = await web_client.conversations_open(users=[JANE])

    dm = first["channel"]["id"]
    assert dm.startswith("D")
    assert second["channel"]["id"] == dm
    assert "already_open" not in first.data
    assert second["already_open"] is True
    assert second["no_op"] is True
    # slack_sdk sends these arguments in the query string, not the body.
    call = slack.calls_to("conversations.open")[0]
    assert call.query["users"] == JANE

    await web_client.chat_postMessage(channel=dm, text="hello")
    assert [m["text"] for m in slack.dms_to(JANE)] == ["hello"]


async def test_conversations_open_errors(web_client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await web_client.conversations_open(users="U0NOBODY")
    assert err.value.response["error"] == "user_not_found"

    with pytest.raises(SlackApiError) as err:
        await web_client.api_call("conversations.open", params={})
    assert err.value.response["error"] == "users_list_not_supplied"


async def test_users_lookup_by_email(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    resp = await web_client.users_lookupByEmail(email="jane@example.com")
    user = resp["user"]
    assert user["id"] == JANE
    assert user["team_id"] == slack.team_id
    assert user["name"] == "jane"
    assert user["real_name"] == "Jane Doe"
    assert user["tz"] == "Europe/Berlin"
    assert user["profile"]["email"] == "jane@example.com"
    assert slack.calls_to("users.lookupByEmail")[0].http_method == "GET"

    with pytest.raises(SlackApiError) as err:
        await web_client.users_lookupByEmail(email="ghost@example.com")
    assert err.value.response["error"] == "users_not_found"


async def test_lookup_by_email_needs_its_scope() -> None:
    async with FakeSlack(token=SLACK_TOKEN, scopes={"chat:write", "users:read"}) as fake:
        client = AsyncWebClient(token=SLACK_TOKEN, base_url=fake.base_url)
        with pytest.raises(SlackApiError) as err:
            await client.users_lookupByEmail(email="jane@example.com")
    assert err.value.response["error"] == "missing_scope"
    assert err.value.response["needed"] == "users:read.email"


async def test_auth_test_and_post_ephemeral(slack: FakeSlack, web_client: AsyncWebClient) -> None:
    me = await web_client.auth_test()
    assert me["user_id"] == slack.bot_user_id
    assert me["bot_id"] == slack.bot_id
    assert me["team_id"] == slack.team_id
    assert me["url"].startswith("https://")

    eph = await web_client.chat_postEphemeral(channel="C0INCIDENTS", user=JANE, text="only you")
    assert isinstance(eph["message_ts"], str)
    assert slack.ephemerals[0]["user"] == JANE
    assert slack.messages == []  # ephemeral messages are not channel messages


async def test_wrong_or_missing_token(slack: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C0INCIDENTS", text="x")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "invalid_auth"

    async with (
        aiohttp.ClientSession() as session,
        session.post(slack.base_url + "auth.test") as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["error"] == "not_authed"
    assert slack.messages == []


async def test_unknown_method_is_404(web_client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        await web_client.api_call("chat.postMessagez", json={"channel": "C0INCIDENTS"})
    assert err.value.response.status_code == 404
    assert err.value.response["error"] == "unknown_method"


async def test_body_encodings_and_content_type(slack: FakeSlack) -> None:
    auth = {"Authorization": f"Bearer {SLACK_TOKEN}"}
    blocks = [{"type": "divider"}]
    async with aiohttp.ClientSession(headers=auth) as session:
        form = {"channel": "C0INCIDENTS", "text": "form", "blocks": json.dumps(blocks)}
        async with session.post(slack.base_url + "chat.postMessage", data=form) as resp:
            assert resp.content_type == "application/json"
            body = await resp.json()
        assert body["ok"] is True
        assert body["message"]["blocks"] == blocks

        query = {"channel": "C0INCIDENTS", "text": "query"}
        async with session.post(slack.base_url + "chat.postMessage", params=query) as resp:
            assert (await resp.json())["ok"] is True

        async with session.post(
            slack.base_url + "chat.postMessage",
            data=b"channel=C0INCIDENTS&text=plain",
            headers={"Content-Type": "text/plain"},
        ) as resp:
            assert resp.content_type == "application/json"
            assert (await resp.json())["error"] == "invalid_post_type"

        async with session.post(
            slack.base_url + "chat.postMessage",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
        ) as resp:
            assert (await resp.json())["error"] == "invalid_json"

        async with session.get(slack.base_url + "chat.postMessage", params=query) as resp:
            assert resp.status == 405
            assert resp.content_type == "application/json"

    assert [m["text"] for m in slack.messages_in("C0INCIDENTS")] == ["form", "query"]


async def test_injected_429_carries_integer_retry_after(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    with pytest.raises(SlackApiError) as err:
        await web_client.chat_postMessage(channel="C0INCIDENTS", text="x")
    response = err.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response["error"] == "ratelimited"
    assert slack.messages == []

    # The fault was used up: the next call goes through.
    ok = await web_client.chat_postMessage(channel="C0INCIDENTS", text="x")
    assert ok["ok"] is True


async def test_rate_limit_retry_handler_honours_retry_after(
    slack: FakeSlack, web_client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # slack_sdk sleeps int(Retry-After) + random(); pin the jitter so the sleep is exact.
    monkeypatch.setattr(builtin_async_handlers, "random", types.SimpleNamespace(random=lambda: 0.0))
    web_client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    slack.fail_next("chat.postMessage", status=429, retry_after=0)

    started = time.monotonic()
    resp = await web_client.chat_postMessage(channel="C0INCIDENTS", text="after retry")
    elapsed = time.monotonic() - started

    assert resp["ok"] is True
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert len(slack.messages) == 1
    # Without a usable Retry-After header slack_sdk would sleep a full second.
    assert elapsed < 0.5


async def test_server_errors_and_ok_false_faults(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    slack.fail_next("chat.update", status=500)
    with pytest.raises(SlackApiError) as err:
        await web_client.chat_update(channel="C0INCIDENTS", ts="1.000001", text="x")
    assert err.value.response.status_code == 500
    assert err.value.response["error"] == "fatal_error"

    slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(SlackApiError) as err:
        await web_client.chat_postMessage(channel="C0INCIDENTS", text="x")
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "channel_not_found"

    web_client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=1))
    slack.fail_next("chat.postMessage", status=503)
    resp = await web_client.chat_postMessage(channel="C0INCIDENTS", text="survived")
    assert resp["ok"] is True
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [200, 503, 200]


async def test_commit_fault_shows_the_duplicate_a_blind_retry_makes(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    web_client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=1))
    slack.fail_next("chat.postMessage", status=503, commit=True)
    await web_client.chat_postMessage(channel="C0INCIDENTS", text="page")
    assert [m["text"] for m in slack.messages_in("C0INCIDENTS")] == ["page", "page"]


async def test_response_url_accepts_webhook_client_posts(slack: FakeSlack) -> None:
    url = slack.response_url_for("x")
    assert url.startswith(slack.origin + "/actions/")
    webhook = AsyncWebhookClient(url)
    resp = await webhook.send(text="acked by jane", replace_original=True)

    assert resp.status_code == 200
    assert resp.body == "ok"
    assert slack.responses == [{"text": "acked by jane", "replace_original": True}]
    assert slack.responses_for("x") == slack.responses
    assert slack.responses_for("other") == []


async def test_response_url_is_good_for_five_uses(slack: FakeSlack) -> None:
    webhook = AsyncWebhookClient(slack.response_url_for("limited"))
    statuses = [(await webhook.send(text=f"n{i}")).status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]
    assert len(slack.responses_for("limited")) == 5


async def test_wait_for_polls_and_explains_a_timeout(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await web_client.chat_postMessage(channel=JANE, text="page")

    task = asyncio.create_task(later())
    dms = await slack.wait_for(lambda s: s.dms_to(JANE), timeout=2)
    await task
    assert dms[0]["text"] == "page"

    with pytest.raises(AssertionError, match=r"chat\.postMessage") as err:
        await slack.wait_for(lambda: slack.messages_in("C0INCIDENTS"), timeout=0.05)
    assert "page" in str(err.value)


# --------------------------------------------------------------------------- GitHub REST


async def test_get_repo_with_token_auth_and_rate_headers(
    gh: FakeGitHub, github_client: GithubFactory
) -> None:
    client = github_client(gh)
    repo = await asyncio.to_thread(client.get_repo, "org/ops")

    assert repo.full_name == "org/ops"
    assert repo.private is True
    assert repo.url == f"{gh.base_url}/repos/org/ops"
    [call] = gh.calls
    assert (call.method, call.path) == ("GET", "/repos/org/ops")
    assert call.headers["Authorization"] == f"token {GH_TOKEN}"
    remaining, limit = client.rate_limiting
    assert (remaining, limit) == (4999, 5000)


async def test_issue_lifecycle_through_pygithub(
    gh: FakeGitHub, github_client: GithubFactory
) -> None:
    client = github_client(gh)

    def lifecycle() -> dict[str, Any]:
        repo = client.get_repo("org/ops")
        issue = repo.create_issue(
            title="HighLatency on api-1", body="p99 > 1s", labels=["incident"], assignees=["jane"]
        )
        comment = issue.create_comment("acked by @jane")
        comments = [c.body for c in issue.get_comments()]
        issue.edit(state="closed", state_reason="completed")
        return {"issue": issue, "comment": comment, "comments": comments}

    out = await asyncio.to_thread(lifecycle)
    issue, comment = out["issue"], out["comment"]

    assert issue.number == 1
    assert issue.title == "HighLatency on api-1"
    assert [label.name for label in issue.labels] == ["incident"]
    assert [a.login for a in issue.assignees] == ["jane"]
    assert issue.user.login == gh.login
    assert issue.html_url == f"{gh.origin}/org/ops/issues/1"
    assert issue.state == "closed"
    assert issue.state_reason == "completed"
    assert issue.closed_at is not None
    assert comment.body == "acked by @jane"
    assert comment.issue_url == issue.url
    assert out["comments"] == ["acked by @jane"]

    [stored] = gh.issues("org/ops")
    assert stored["state"] == "closed"
    assert stored["comments"] == 1
    create = gh.calls_to("POST", r"/issues$")[0]
    assert create.status == 201
    assert create.json["labels"] == ["incident"]
    patch = gh.calls_to("PATCH", r"/issues/1$")[0]
    assert patch.json == {"state": "closed", "state_reason": "completed"}


async def test_search_finds_an_existing_issue(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh)

    def scenario() -> tuple[int, list[int], int, int]:
        repo = client.get_repo("org/ops")
        first = repo.create_issue(title="HighLatency on api-1", body="router-key: abc123")
        repo.create_issue(title="DiskFull on db-1", body="router-key: def456")
        hits = client.search_issues('"router-key: abc123"', repo="org/ops", state="open")
        numbers = [i.number for i in hits]
        first.edit(state="closed")
        still_open = client.search_issues("abc123 repo:org/ops is:open").totalCount
        any_state = client.search_issues("abc123 repo:org/ops is:issue").totalCount
        return hits.totalCount, numbers, still_open, any_state

    total, numbers, still_open, any_state = await asyncio.to_thread(scenario)
    assert total == 1
    assert numbers == [1]
    assert still_open == 0
    assert any_state == 1
    search = gh.calls_to("GET", r"^/search/issues$")[0]
    assert "router-key: abc123" in search.query["q"]


async def test_search_rate_limit_resource(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh)
    await asyncio.to_thread(lambda: client.search_issues("anything").totalCount)
    assert client.rate_limiting == (29, 30)

    headers = {"Authorization": f"token {GH_TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(gh.base_url + "/search/issues", params={"q": "x"}) as resp,
    ):
        assert resp.headers["x-ratelimit-resource"] == "search"
        assert resp.headers["x-ratelimit-used"] == "2"
        assert int(resp.headers["x-ratelimit-reset"]) > time.time()
        assert (await resp.json()) == {"total_count": 0, "incomplete_results": False, "items": []}


async def test_list_issues_paginates_on_the_fake_host(
    gh: FakeGitHub, github_client: GithubFactory
) -> None:
    client = github_client(gh, per_page=2)

    def scenario() -> tuple[int, list[int], list[int]]:
        repo = client.get_repo("org/ops")
        for n in range(3):
            repo.create_issue(title=f"alert {n}", labels=["incident"] if n != 1 else [])
        every = repo.get_issues(state="all")
        labelled = repo.get_issues(labels=["incident"])
        return every.totalCount, [i.number for i in every], [i.number for i in labelled]

    total, numbers, labelled = await asyncio.to_thread(scenario)
    assert total == 3
    assert numbers == [3, 2, 1]
    assert labelled == [3, 1]
    assert any(c.query.get("page") == "2" for c in gh.calls)


async def test_wrong_token_is_bad_credentials(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh, token="ghp_wrong")
    with pytest.raises(BadCredentialsException) as err:
        await asyncio.to_thread(client.get_repo, "org/ops")
    assert err.value.status == 401
    assert err.value.data["message"] == "Bad credentials"


async def test_bearer_scheme_is_refused_unless_enabled(gh: FakeGitHub) -> None:
    headers = {"Authorization": f"Bearer {GH_TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(gh.base_url + "/repos/org/ops", headers=headers) as resp,
    ):
        assert resp.status == 401
        assert resp.headers["x-ratelimit-limit"] == "5000"
    async with (
        aiohttp.ClientSession() as session,
        session.get(gh.base_url + "/repos/org/ops") as resp,
    ):
        assert resp.status == 401
        assert (await resp.json())["message"] == "Requires authentication"


async def test_missing_repo_is_unknown_object(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh)
    with pytest.raises(UnknownObjectException) as err:
        await asyncio.to_thread(client.get_repo, "org/nope")
    assert err.value.status == 404


async def test_missing_title_is_422(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh)
    repo = await asyncio.to_thread(client.get_repo, "org/ops")
    with pytest.raises(GithubException) as err:
        await asyncio.to_thread(repo.create_issue, title="")
    assert err.value.status == 422
    assert err.value.data["message"] == "Validation Failed"
    assert err.value.data["errors"] == [
        {"resource": "Issue", "code": "missing_field", "field": "title"}
    ]
    assert gh.issues("org/ops") == []


async def test_non_json_body_is_415(gh: FakeGitHub) -> None:
    headers = {"Authorization": f"token {GH_TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(gh.base_url + "/repos/org/ops/issues", data={"title": "x"}) as resp,
    ):
        assert resp.status == 415
    assert gh.issues("org/ops") == []


async def test_enterprise_prefix(github_client: GithubFactory) -> None:
    async with FakeGitHub(token=GH_TOKEN, repos=["org/ops"], prefix="/api/v3") as fake:
        assert fake.base_url.endswith("/api/v3")
        client = github_client(fake)

        def scenario() -> tuple[str, str]:
            issue = client.get_repo("org/ops").create_issue(title="on GHES")
            comment = issue.create_comment("hello")
            return issue.url, comment.url

        issue_url, comment_url = await asyncio.to_thread(scenario)
        assert issue_url == f"{fake.origin}/api/v3/repos/org/ops/issues/1"
        assert comment_url.startswith(f"{fake.origin}/api/v3/repos/org/ops/issues/comments/")
        assert [c.path for c in fake.calls] == [
            "/repos/org/ops",
            "/repos/org/ops/issues",
            "/repos/org/ops/issues/1/comments",
        ]

        async with (
            aiohttp.ClientSession() as session,
            session.get(
                fake.origin + "/repos/org/ops", headers={"Authorization": f"token {GH_TOKEN}"}
            ) as resp,
        ):
            assert resp.status == 404  # outside the prefix


async def test_primary_rate_limit_fault(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh)
    gh.fail_next(r"^/repos/org/ops$", status=403)
    with pytest.raises(RateLimitExceededException) as err:
        await asyncio.to_thread(client.get_repo, "org/ops")
    assert err.value.status == 403
    headers = err.value.headers or {}
    assert headers["x-ratelimit-remaining"] == "0"
    assert int(headers["x-ratelimit-reset"]) > time.time()

    repo = await asyncio.to_thread(client.get_repo, "org/ops")  # fault used up
    assert repo.name == "ops"


async def test_secondary_rate_limit_fault(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh)
    gh.fail_next(
        r"/issues$", status=403, message=SECONDARY_RATE_LIMIT_MESSAGE, remaining=4000, method="POST"
    )
    repo = await asyncio.to_thread(client.get_repo, "org/ops")
    with pytest.raises(RateLimitExceededException) as err:
        await asyncio.to_thread(repo.create_issue, title="x")
    assert (err.value.headers or {})["x-ratelimit-remaining"] == "4000"


async def test_server_error_retry(gh: FakeGitHub, github_client: GithubFactory) -> None:
    gh.fail_next(r"^/repos/org/ops$", status=500)
    plain = github_client(gh)
    with pytest.raises(GithubException) as err:
        await asyncio.to_thread(plain.get_repo, "org/ops")
    assert err.value.status == 500

    gh.fail_next(r"^/repos/org/ops$", status=502)
    retrying = github_client(gh, retry=GithubRetry(total=2))
    repo = await asyncio.to_thread(retrying.get_repo, "org/ops")
    assert repo.full_name == "org/ops"
    assert [c.status for c in gh.calls] == [500, 502, 200]


async def test_retried_post_after_commit_duplicates_an_issue(
    gh: FakeGitHub, github_client: GithubFactory
) -> None:
    client = github_client(gh, retry=GithubRetry(total=2))
    repo = await asyncio.to_thread(client.get_repo, "org/ops")
    gh.fail_next(r"/issues$", status=500, method="POST", commit=True)
    await asyncio.to_thread(repo.create_issue, title="HighLatency")
    assert [i["title"] for i in gh.issues("org/ops")] == ["HighLatency", "HighLatency"]


async def test_without_push_access_labels_are_dropped(github_client: GithubFactory) -> None:
    async with FakeGitHub(token=GH_TOKEN, repos={"org/ops": {"push": False}}) as fake:
        client = github_client(fake)

        def create() -> Any:
            return client.get_repo("org/ops").create_issue(
                title="x", labels=["incident"], assignees=["jane"]
            )

        issue = await asyncio.to_thread(create)
        assert issue.labels == []
        assert issue.assignees == []


async def test_labels(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh)

    def scenario() -> tuple[str, str, int]:
        repo = client.get_repo("org/ops")
        created = repo.create_label("sev1", "b60205", "critical incidents")
        fetched = repo.get_label("sev1")
        status = 0
        try:
            repo.create_label("SEV1", "b60205")
        except GithubException as e:
            status = e.status
        return created.color, fetched.description, status

    color, description, dup_status = await asyncio.to_thread(scenario)
    assert color == "b60205"
    assert description == "critical incidents"
    assert dup_status == 422
    with pytest.raises(UnknownObjectException):
        await asyncio.to_thread(lambda: client.get_repo("org/ops").get_label("nope").name)


async def test_issues_disabled_is_410(github_client: GithubFactory) -> None:
    async with FakeGitHub(token=GH_TOKEN, repos={"org/ops": {"has_issues": False}}) as fake:
        client = github_client(fake)
        repo = await asyncio.to_thread(client.get_repo, "org/ops")
        with pytest.raises(GithubException) as err:
            await asyncio.to_thread(repo.create_issue, title="x")
        assert err.value.status == 410


async def test_github_wait_for(gh: FakeGitHub, github_client: GithubFactory) -> None:
    client = github_client(gh)
    job = asyncio.create_task(
        asyncio.to_thread(lambda: client.get_repo("org/ops").create_issue(title="late"))
    )
    issues = await gh.wait_for(lambda g: g.issues("org/ops"), timeout=5)
    await job
    assert issues[0]["title"] == "late"
    with pytest.raises(AssertionError, match="late"):
        await gh.wait_for(lambda: len(gh.issues("org/ops")) > 1, timeout=0.05)


# ------------------------------------------------------------ conversations.history


async def test_history_pages_newest_first_with_metadata_only_when_asked(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    posted = []
    for i in range(5):
        meta = {"event_type": "router_job", "event_payload": {"job": f"k{i}"}}
        answer = await web_client.chat_postMessage(
            channel="C0INCIDENTS", text=f"m{i}", metadata=meta
        )
        posted.append(answer["ts"])
    # a reply in a thread is not part of the channel's history
    await web_client.chat_postMessage(channel="C0INCIDENTS", text="reply", thread_ts=posted[0])

    first = await web_client.conversations_history(channel="C0INCIDENTS", limit=2)
    assert slack.calls_to("conversations.history")[0].http_method == "GET"
    assert [m["ts"] for m in first["messages"]] == [posted[4], posted[3]]
    assert first["has_more"] is True and all("metadata" not in m for m in first["messages"])
    cursor = first["response_metadata"]["next_cursor"]
    rest = await web_client.conversations_history(
        channel="C0INCIDENTS", limit=10, cursor=cursor, include_all_metadata=True
    )
    assert [m["ts"] for m in rest["messages"]] == [posted[2], posted[1], posted[0]]
    assert rest["has_more"] is False and rest["response_metadata"]["next_cursor"] == ""
    assert rest["messages"][0]["metadata"] == {
        "event_type": "router_job",
        "event_payload": {"job": "k2"},
    }
    since = await web_client.conversations_history(channel="C0INCIDENTS", oldest=posted[2])
    assert [m["ts"] for m in since["messages"]] == [posted[4], posted[3]]  # oldest exclusive


async def test_replies_put_the_parent_first_then_the_thread(
    slack: FakeSlack, web_client: AsyncWebClient
) -> None:
    parent = (await web_client.chat_postMessage(channel="C0INCIDENTS", text="p"))["ts"]
    meta = {"event_type": "router_job", "event_payload": {"job": "r1"}}
    reply = await web_client.chat_postMessage(
        channel="C0INCIDENTS", text="r", thread_ts=parent, metadata=meta
    )
    answer = await web_client.conversations_replies(
        channel="C0INCIDENTS", ts=parent, include_all_metadata=True
    )
    assert [m["ts"] for m in answer["messages"]] == [parent, reply["ts"]]
    assert answer["messages"][1]["metadata"]["event_payload"] == {"job": "r1"}
    with pytest.raises(SlackApiError) as err:
        await web_client.conversations_replies(channel="C0INCIDENTS", ts="1.000001")
    assert err.value.response["error"] == "thread_not_found"


async def test_history_needs_the_scope_of_the_kind_of_conversation() -> None:
    scopes = {"chat:write", "im:write", "channels:history"}
    async with FakeSlack(token=SLACK_TOKEN, scopes=scopes) as fake:
        client = AsyncWebClient(token=SLACK_TOKEN, base_url=fake.base_url)
        await client.conversations_history(channel="C0INCIDENTS")
        dm = (await client.conversations_open(users=JANE))["channel"]["id"]
        with pytest.raises(SlackApiError) as err:
            await client.conversations_history(channel=dm)
        assert err.value.response["error"] == "missing_scope"
        assert err.value.response["needed"] == "im:history"
        with pytest.raises(SlackApiError) as err:
            await client.conversations_history(channel="C0NOSUCH")
        assert err.value.response["error"] == "channel_not_found"


async def test_post_message_refuses_malformed_metadata(web_client: AsyncWebClient) -> None:
    for bad in ({"event_type": "has space", "event_payload": {}}, {"event_type": "x"}):
        with pytest.raises(SlackApiError) as err:
            await web_client.chat_postMessage(channel="C0INCIDENTS", text="t", metadata=bad)
        assert err.value.response["error"] == "invalid_metadata_format"
