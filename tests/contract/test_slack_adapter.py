"""SlackAdapter against FakeSlack, through the real slack_sdk clients."""

from __future__ import annotations

import asyncio
import socket
import types
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.http_retry import builtin_async_handlers, jitter
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)

from router.adapters.slack.client import SlackAdapter
from router.app.effects import PermanentFailure, ResultLookup, RetryLater
from router.core.jobs import JobKind, JobStatus, StoredJob
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-test"
JANE = "U0JANE0001"
CHANNEL = "C0INCIDENTS"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*HighLatency* on api-1"}}]


def job(kind: JobKind, payload: dict[str, Any], key: str = "k") -> StoredJob:
    return StoredJob(
        id=1,
        kind=kind,
        key=key,
        payload=payload,
        due_at=datetime.now(UTC),
        attempts=1,
        status=JobStatus.RUNNING,
    )


def lookup(table: dict[str, dict[str, Any]] | None = None) -> ResultLookup:
    done = table or {}

    async def results(key: str) -> dict[str, Any] | None:
        return done.get(key)

    return results


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        token=TOKEN,
        channels={CHANNEL, "C0LOBBY"},
        joined_channels={CHANNEL},
        ts_start="1700000000.000100",
    ) as fake:
        yield fake


@pytest.fixture
async def adapter(slack: FakeSlack) -> AsyncIterator[SlackAdapter]:
    made = SlackAdapter(TOKEN, slack.base_url, timeout=5)
    yield made
    await made.close()


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk adds random() seconds to each in-process retry; pin it to 0."""
    zero = types.SimpleNamespace(random=lambda: 0.0)
    monkeypatch.setattr(builtin_async_handlers, "random", zero)
    monkeypatch.setattr(jitter, "random", zero)


async def post(adapter: SlackAdapter, **payload: Any) -> dict[str, Any]:
    return await adapter.run(job(JobKind.SLACK_POST, payload), lookup())


# ------------------------------------------------------------------ the jobs


async def test_dm_opens_the_conversation_and_posts(slack: FakeSlack, adapter: SlackAdapter):
    result = await adapter.run(
        job(JobKind.SLACK_DM, {"user": JANE, "text": "You are paged", "blocks": BLOCKS}),
        lookup(),
    )

    dm = slack.dm_channel_for(JANE)
    assert result == {"channel": dm, "ts": slack.dms_to(JANE)[0]["ts"]}
    assert dm.startswith("D")
    assert [c.method for c in slack.calls] == ["conversations.open", "chat.postMessage"]
    assert slack.calls[0].query["users"] == JANE
    assert slack.calls[1].args["channel"] == dm
    [message] = slack.dms_to(JANE)
    assert message["text"] == "You are paged"
    assert message["blocks"] == BLOCKS


async def test_ts_stays_a_string_with_all_its_digits(slack: FakeSlack, adapter: SlackAdapter):
    result = await post(adapter, channel=CHANNEL, text="one")
    assert result["ts"] == "1700000000.000100"  # as a float it would be ...0001


async def test_post_to_a_channel(slack: FakeSlack, adapter: SlackAdapter):
    result = await post(adapter, channel=CHANNEL, thread_of=None, text="INC-1 declared")
    assert result["channel"] == CHANNEL
    assert slack.messages_in(CHANNEL)[0]["text"] == "INC-1 declared"
    assert slack.messages_in(CHANNEL)[0]["thread_ts"] is None


async def test_thread_of_posts_under_the_looked_up_message(slack: FakeSlack, adapter: SlackAdapter):
    announced = await post(adapter, channel=CHANNEL, text="INC-1 declared")

    reply = await adapter.run(
        job(JobKind.SLACK_POST, {"channel": None, "thread_of": "announce", "text": "sev high"}),
        lookup({"announce": announced}),
    )

    assert reply["channel"] == CHANNEL
    thread_reply = slack.message(CHANNEL, reply["ts"])
    assert thread_reply is not None
    assert thread_reply["thread_ts"] == announced["ts"]


async def test_thread_of_a_job_not_run_yet_retries_later(slack: FakeSlack, adapter: SlackAdapter):
    with pytest.raises(RetryLater):
        await adapter.run(
            job(JobKind.SLACK_POST, {"channel": None, "thread_of": "announce", "text": "x"}),
            lookup(),
        )
    assert slack.calls == []


async def test_update_edits_the_target_message(slack: FakeSlack, adapter: SlackAdapter):
    page = await adapter.run(job(JobKind.SLACK_DM, {"user": JANE, "text": "paged"}), lookup())

    result = await adapter.run(
        job(JobKind.SLACK_UPDATE, {"target": "page", "text": "declared", "blocks": BLOCKS}),
        lookup({"page": page}),
    )

    assert result == page
    update = slack.calls_to("chat.update")[0].args
    assert (update["channel"], update["ts"]) == (page["channel"], page["ts"])
    message = slack.message(page["channel"], page["ts"])
    assert message is not None
    assert (message["text"], message["blocks"]) == ("declared", BLOCKS)


async def test_update_of_a_job_not_run_yet_retries_later(slack: FakeSlack, adapter: SlackAdapter):
    with pytest.raises(RetryLater):
        await adapter.run(
            job(JobKind.SLACK_UPDATE, {"target": "page", "text": "declared"}), lookup()
        )
    assert slack.calls == []


async def test_response_url_any_200_is_success(slack: FakeSlack, adapter: SlackAdapter):
    body = {"replace_original": True, "text": "Declared INC-1"}
    url = slack.response_url_for("press-1")

    result = await adapter.run(
        job(JobKind.SLACK_RESPOND, {"response_url": url, "body": body}), lookup()
    )

    assert result == {}
    assert slack.responses_for("press-1") == [body]


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (404, "expired_url", PermanentFailure),
        (410, "gone", PermanentFailure),
        (500, "error", RetryLater),
        (429, "ratelimited", RetryLater),
    ],
)
async def test_response_url_failures(
    slack: FakeSlack, adapter: SlackAdapter, status: int, error: str, expected: type[Exception]
):
    slack.fail_next("response_url", status=status, error=error)
    url = slack.response_url_for("press-1")
    with pytest.raises(expected) as raised:
        await adapter.run(
            job(JobKind.SLACK_RESPOND, {"response_url": url, "body": {"text": "x"}}), lookup()
        )
    assert url not in str(raised.value)  # the URL is a credential for the message


# ------------------------------------------------------------------ failures


async def test_rate_limit_beyond_the_inline_wait_goes_back_to_the_outbox(
    slack: FakeSlack, adapter: SlackAdapter
):
    slack.fail_next("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(RetryLater) as raised:
        await post(adapter, channel=CHANNEL, text="x")
    assert raised.value.after == 7
    assert len(slack.calls_to("chat.postMessage")) == 1  # no 7 s nap inside the worker


async def test_rate_limit_twice_after_the_single_inline_retry(
    slack: FakeSlack, adapter: SlackAdapter, no_jitter: None
):
    slack.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
    with pytest.raises(RetryLater) as raised:
        await post(adapter, channel=CHANNEL, text="x")
    assert raised.value.after == 1
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert slack.messages == []


async def test_short_rate_limit_is_retried_once_in_process(
    slack: FakeSlack, adapter: SlackAdapter, no_jitter: None
):
    slack.fail_next("chat.postMessage", status=429, retry_after=0)
    result = await post(adapter, channel=CHANNEL, text="x")
    assert result["channel"] == CHANNEL
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]


def test_retry_handlers_are_the_quick_single_ones(adapter: SlackAdapter):
    handlers = adapter.client.retry_handlers
    rate = [h for h in handlers if isinstance(h, AsyncRateLimitErrorRetryHandler)]
    server = [h for h in handlers if isinstance(h, AsyncServerErrorRetryHandler)]
    assert [h.max_retry_count for h in rate + server] == [1, 1]


async def test_ok_false_rate_limit_is_retried_later(slack: FakeSlack, adapter: SlackAdapter):
    slack.fail_next("chat.postMessage", status=200, error="ratelimited")
    with pytest.raises(RetryLater, match="ratelimited"):
        await post(adapter, channel=CHANNEL, text="x")


async def test_channel_not_found_is_permanent(slack: FakeSlack, adapter: SlackAdapter):
    with pytest.raises(PermanentFailure) as raised:
        await post(adapter, channel="C0NOWHERE", text="x")
    assert raised.value.reason == "slack chat.postMessage: channel_not_found"


async def test_not_in_channel_is_permanent(slack: FakeSlack, adapter: SlackAdapter):
    with pytest.raises(PermanentFailure, match="not_in_channel"):
        await post(adapter, channel="C0LOBBY", text="x")


async def test_unknown_user_is_permanent(slack: FakeSlack, adapter: SlackAdapter):
    with pytest.raises(PermanentFailure, match=r"conversations\.open: user_not_found"):
        await adapter.run(job(JobKind.SLACK_DM, {"user": "U0NOBODY", "text": "x"}), lookup())


async def test_wrong_token_is_permanent_invalid_auth(slack: FakeSlack):
    adapter = SlackAdapter("xoxb-wrong", slack.base_url)
    try:
        with pytest.raises(PermanentFailure) as raised:
            await adapter.run(job(JobKind.SLACK_DM, {"user": JANE, "text": "x"}), lookup())
    finally:
        await adapter.close()
    assert raised.value.reason == "slack conversations.open: invalid_auth"


async def test_server_error_on_a_new_message_goes_back_to_the_outbox_in_doubt(
    slack: FakeSlack, adapter: SlackAdapter, no_jitter: None
):
    # A 500 does not say whether the message was posted: no second post in the same
    # call; the outbox looks in the history first (SlackAdapter.find).
    slack.fail_next("chat.postMessage", status=500)
    with pytest.raises(RetryLater, match="HTTP 500") as raised:
        await post(adapter, channel=CHANNEL, text="x")
    assert raised.value.in_doubt
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_server_error_on_an_edit_is_retried_in_process_once(
    slack: FakeSlack, adapter: SlackAdapter, no_jitter: None
):
    posted = await post(adapter, channel=CHANNEL, text="x")
    slack.fail_next("chat.update", status=503)
    edit = job(JobKind.SLACK_UPDATE, {"target": "posted", "seq": 1, "text": "y"})
    result = await adapter.run(edit, lookup({"posted": posted}))
    assert result == posted
    assert [c.status for c in slack.calls_to("chat.update")] == [503, 200]
    slack.fail_next("chat.update", status=500, times=2)
    with pytest.raises(RetryLater, match="HTTP 500"):
        await adapter.run(edit, lookup({"posted": posted}))


async def test_connection_refused_is_retried_later(no_jitter: None):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = SlackAdapter(TOKEN, f"http://127.0.0.1:{port}/api/")
    try:
        with pytest.raises(RetryLater, match=r"slack chat\.postMessage: ClientConnector"):
            await post(adapter, channel=CHANNEL, text="x")
    finally:
        await adapter.close()


async def test_timeout_is_retried_later():
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/{method}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    adapter = SlackAdapter(TOKEN, f"http://127.0.0.1:{port}/api/", timeout=0.1)
    try:
        with pytest.raises(RetryLater, match="Timeout"):
            await post(adapter, channel=CHANNEL, text="x")
    finally:
        await adapter.close()
        await runner.cleanup()


async def test_malformed_payload_is_permanent(slack: FakeSlack, adapter: SlackAdapter):
    with pytest.raises(PermanentFailure, match=r"payload\.user"):
        await adapter.run(job(JobKind.SLACK_DM, {"text": "x"}), lookup())
    with pytest.raises(PermanentFailure, match=r"payload\.channel"):
        await post(adapter, channel=None, thread_of=None, text="x")
    assert slack.calls == []


async def test_close_then_run_again(slack: FakeSlack, adapter: SlackAdapter):
    await post(adapter, channel=CHANNEL, text="one")
    await adapter.close()
    await adapter.close()
    await post(adapter, channel=CHANNEL, text="two")
    assert len(slack.messages_in(CHANNEL)) == 2


async def test_dms_to_one_person_open_their_channel_once(
    slack: FakeSlack, adapter: SlackAdapter
) -> None:
    dm = {"user": JANE, "text": "page", "blocks": BLOCKS}
    first = await adapter.run(job(JobKind.SLACK_DM, dm), lookup())
    second = await adapter.run(job(JobKind.SLACK_DM, dm), lookup())
    assert first["channel"] == second["channel"] == slack.dm_channel_for(JANE)
    assert len(slack.calls_to("conversations.open")) == 1  # a storm's DMs open it once
    assert len(slack.dms_to(JANE)) == 2
    # should the channel go away, the next DM opens it again
    slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(PermanentFailure):
        await adapter.run(job(JobKind.SLACK_DM, dm), lookup())
    await adapter.run(job(JobKind.SLACK_DM, dm), lookup())
    assert len(slack.calls_to("conversations.open")) == 2


# ------------------------------------------------------------ unknown outcomes


def started(j: StoredJob) -> StoredJob:
    """``j`` as claimed after an attempt that began just before the fake's first ts."""
    at = datetime.fromtimestamp(1_700_000_000, UTC) - timedelta(seconds=1)
    return j.model_copy(update={"started_at": at})


async def test_posts_carry_their_job_key_in_metadata(slack: FakeSlack, adapter: SlackAdapter):
    await adapter.run(
        job(JobKind.SLACK_DM, {"user": JANE, "text": "x"}, key="page:p1:dm"), lookup()
    )
    [dm] = slack.dms_to(JANE)
    assert dm["metadata"] == {"event_type": "router_job", "event_payload": {"job": "page:p1:dm"}}


async def test_find_pages_through_the_history_to_the_message_of_the_job(
    slack: FakeSlack, adapter: SlackAdapter
):
    mine = await adapter.run(
        job(JobKind.SLACK_POST, {"channel": CHANNEL, "text": "x"}, "mine"), lookup()
    )
    for i in range(250):  # newer messages: the history comes newest first, 200 a page
        await adapter.run(
            job(JobKind.SLACK_POST, {"channel": CHANNEL, "text": "y"}, f"o{i}"), lookup()
        )
    found = await adapter.find(
        started(job(JobKind.SLACK_POST, {"channel": CHANNEL}, "mine")), lookup()
    )
    assert found == mine
    calls = slack.calls_to("conversations.history")
    assert len(calls) == 2 and calls[1].args["cursor"]
    assert (
        await adapter.find(
            started(job(JobKind.SLACK_POST, {"channel": CHANNEL}, "never")), lookup()
        )
        is None
    )


async def test_find_looks_in_the_dm_and_in_a_thread(slack: FakeSlack, adapter: SlackAdapter):
    dm = await adapter.run(job(JobKind.SLACK_DM, {"user": JANE, "text": "x"}, "dm"), lookup())
    assert await adapter.find(started(job(JobKind.SLACK_DM, {"user": JANE}, "dm")), lookup()) == dm
    root = await post(adapter, channel=CHANNEL, text="root")
    results = lookup({"announce": root})
    reply = job(JobKind.SLACK_POST, {"thread_of": "announce", "text": "r"}, "reply")
    posted = await adapter.run(reply, results)
    assert await adapter.find(started(reply), results) == posted
    assert slack.calls_to("conversations.replies")
    # an edit or a job that never started has nothing to look for
    edit = job(JobKind.SLACK_UPDATE, {"target": "announce", "text": "e"}, "edit")
    assert await adapter.find(started(edit), results) is None
    assert await adapter.find(reply, results) is None


async def test_a_post_with_no_answer_may_have_happened(slack: FakeSlack, adapter: SlackAdapter):
    slack.fail_next("chat.postMessage", status=502)
    with pytest.raises(RetryLater) as raised:
        await post(adapter, channel=CHANNEL, text="x")
    assert raised.value.in_doubt is True
    slack.fail_next("chat.postMessage", status=429, retry_after=30)
    with pytest.raises(RetryLater) as raised:
        await post(adapter, channel=CHANNEL, text="x")
    assert raised.value.in_doubt is False  # turned away: it did not happen
