"""Slack jobs carried out through slack_sdk's ``AsyncWebClient``.

Failures are sorted in one place, :func:`slack_failure`:

* HTTP 429 -> ``RetryLater(after=Retry-After)``; 5xx, 408 -> ``RetryLater``.
* HTTP 200 with ``ok: false`` and a transient code (``ratelimited``,
  ``internal_error``, ``fatal_error``, ``service_unavailable``, ``request_timeout``,
  ``team_added_to_org``) -> ``RetryLater``.
* Any other ``ok: false`` code (``channel_not_found``, ``not_in_channel``,
  ``invalid_auth``, ``invalid_blocks``, ``message_not_found``, ``user_not_found``, ...)
  and any other 4xx -> ``PermanentFailure("slack <method>: <code>")``.
* Connection errors and timeouts -> ``RetryLater``.

slack_sdk retries once in-process (connection errors, 429, 500/503) so a blip costs
no trip through the outbox. The in-process 429 retry only waits out a *short*
Retry-After: a job must not hold its claim for a minute while Slack cools down (the
claim could lapse and another replica post the same message), so a longer wait goes
back to the outbox as ``RetryLater(after=...)``.

Reasons carry the method and Slack's error code, never message text (confidential).

Unknown outcomes. Every message the router posts carries its job's key in Slack message
metadata (``event_type: router_job``). A job whose earlier attempt may have posted
(``Adapter.find``) is looked up in the conversation's history (``conversations.history``,
or ``conversations.replies`` for a thread) since that attempt began, with
``include_all_metadata``: a message found is the job's result, and nothing is posted
again. That needs the ``channels:history``, ``groups:history`` and ``im:history`` scopes.
An edit (``chat.update``) carries the whole message, so running it again is harmless; a
``response_url`` reply cannot be looked up and is sent again.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from router.app.effects import (
    PermanentFailure,
    ResultLookup,
    RetryLater,
    classify_status,
    parse_retry_after,
    require_result,
)
from router.core.jobs import JobKind, StoredJob

# Message metadata naming the job that posted a message, so a retry can find it.
METADATA_EVENT = "router_job"
# How far the history is read back before the attempt began (clocks differ), and
# at most how much of it: a look-up is bounded, and "not found" then runs the job.
LOOKUP_MARGIN_SECONDS = 300.0
LOOKUP_PAGE_SIZE = 200
LOOKUP_PAGES = 5

CHANNEL_KINDS: frozenset[JobKind] = frozenset(
    {
        JobKind.SLACK_CHANNEL,
        JobKind.SLACK_INVITE,
        JobKind.SLACK_TOPIC,
        JobKind.SLACK_BOOKMARK,
        JobKind.SLACK_ARCHIVE,
    }
)
SLACK_KINDS: frozenset[JobKind] = (
    frozenset({JobKind.SLACK_DM, JobKind.SLACK_POST, JobKind.SLACK_UPDATE, JobKind.SLACK_RESPOND})
    | CHANNEL_KINDS
)

# ok:false codes that a later attempt can succeed with.
TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)


def slack_failure(method: str, exc: BaseException) -> RetryLater | PermanentFailure:
    """The one place a failed Slack call becomes retry-later or permanent."""
    what = f"slack {method}"
    if isinstance(exc, SlackApiError):
        response = exc.response
        # An AsyncSlackResponse normally; a raw aiohttp response for an unreadable body.
        raw_status = getattr(response, "status_code", None) or getattr(response, "status", None)
        status = raw_status if isinstance(raw_status, int) else 0
        data = getattr(response, "data", None)
        error = data.get("error") if isinstance(data, Mapping) else None
        retry_after = _header(getattr(response, "headers", None), "Retry-After")
        if status != 200:
            verdict = classify_status(status, what, retry_after)
            if isinstance(verdict, RetryLater):
                reason = f"{what}: {error} (HTTP {status})" if error else verdict.reason
                # A 5xx may come after the work was done; a 429 was turned away.
                return RetryLater(reason, verdict.after, in_doubt=status >= 500)
            return PermanentFailure(f"{what}: {error or f'HTTP {status}'}")
        if error in TRANSIENT_ERRORS:
            return RetryLater(f"{what}: {error}", parse_retry_after(retry_after))
        return PermanentFailure(f"{what}: {error or 'unexpected response'}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return RetryLater(f"{what}: {type(exc).__name__}")  # never reached Slack
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        # Sent, but no answer: Slack may have carried it out.
        return RetryLater(f"{what}: {type(exc).__name__}", in_doubt=True)
    return PermanentFailure(f"{what}: {type(exc).__name__}")


class ShortRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 retry, only when Retry-After is at most ``max_wait`` seconds."""

    def __init__(self, max_retry_count: int = 1, max_wait: float = 2.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        after = parse_retry_after(_header(response.headers, "Retry-After"))
        return after is None or after <= self.max_wait


class IdempotentServerErrorRetry(AsyncServerErrorRetryHandler):
    """slack_sdk's quick retry of a 500/503, except for a new message.

    A 500 or 503 does not say whether Slack posted the message. Posting again in the
    same call could post it twice; instead ``chat.postMessage`` goes back to the
    outbox as "may have happened", and the outbox looks for its job key in the
    conversation's history before posting again (``SlackAdapter.find``). Every other
    method the router calls is safe to repeat (an edit carries the whole message).
    """

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.rstrip("/").endswith("/chat.postMessage"):
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


class SlackAdapter:
    """Carries out Slack jobs against the Web API at ``api_url``.

    ``max_inline_wait``: the longest Retry-After slack_sdk waits out in-process before
    the one quick retry; longer ones go back to the outbox.
    """

    kinds: frozenset[JobKind] = SLACK_KINDS
    system = "slack"

    def __init__(
        self, token: str, api_url: str, timeout: float = 10, *, max_inline_wait: float = 2.0
    ) -> None:
        self.timeout = timeout
        self.client = AsyncWebClient(token=token, base_url=api_url, timeout=math.ceil(timeout))
        self.client.retry_handlers.append(
            ShortRateLimitRetry(max_retry_count=1, max_wait=max_inline_wait)
        )
        self.client.retry_handlers.append(IdempotentServerErrorRetry(max_retry_count=1))
        self._session: aiohttp.ClientSession | None = None
        self._dm_channels: dict[str, str] = {}  # user -> their DM channel with the bot
        self._bot_user: str | None = None  # who creates the incident channels

    def __repr__(self) -> str:
        return f"SlackAdapter(api_url={self.client.base_url!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self.client.session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        # One pooled session, made inside the running loop; its timeout is the
        # per-request timeout (slack_sdk applies its own only to sessions it makes).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self.client.session = self._session
        return self._session

    async def check_scopes(self, used: list[str]) -> str | None:
        """At start: the scopes the token lacks for the features in use, in words."""
        from router.adapters.slack.scopes import check_token

        self._ensure_session()
        return await check_token(self.client, used)

    async def run(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        self._ensure_session()
        payload = job.payload
        if job.kind == JobKind.SLACK_DM:
            return await self._dm(job, results)
        if job.kind == JobKind.SLACK_POST:
            channel, thread_ts = await post_destination(payload, results)
            return await self._post_message(channel, job, thread_ts)
        if job.kind == JobKind.SLACK_UPDATE:
            return await self._update(payload, results)
        if job.kind == JobKind.SLACK_RESPOND:
            return await self._respond(payload)
        if job.kind in CHANNEL_KINDS:
            return await self._channel_job(job, results)
        raise PermanentFailure(f"slack adapter cannot run {job.kind} jobs")

    async def _channel_job(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        from router.adapters.slack import channels

        payload = job.payload
        if job.kind == JobKind.SLACK_CHANNEL:
            made = await channels.create_channel(
                self.client, payload_str(payload, "name"), private=bool(payload.get("private"))
            )
            return made.as_result()
        channel = await channel_of(payload, results)
        if job.kind == JobKind.SLACK_INVITE:
            users = payload.get("users")
            if not isinstance(users, list):
                raise PermanentFailure("slack.invite job: payload.users must be a list")
            return (
                await channels.invite(self.client, channel, [str(u) for u in users])
            ).as_result()
        if job.kind == JobKind.SLACK_TOPIC:
            await channels.set_topic(self.client, channel, payload_str(payload, "topic"))
            return {"channel": channel}
        if job.kind == JobKind.SLACK_BOOKMARK:
            link = payload_str(payload, "link")
            title = payload_str(payload, "title")
            return {"bookmark": await channels.add_bookmark(self.client, channel, title, link)}
        return {"archived": await channels.archive(self.client, channel)}

    async def _channel_made(self, job: StoredJob) -> dict[str, Any] | None:
        """The channel an earlier attempt of a SLACK_CHANNEL job made, if it did."""
        from router.adapters.slack import channels

        assert job.started_at is not None
        if self._bot_user is None:
            answer = await _call("auth.test", self.client.auth_test())
            self._bot_user = str(answer.get("user_id") or "")
        found = await channels.find_created_channel(
            self.client,
            payload_str(job.payload, "name"),
            creator=self._bot_user,
            since=job.started_at.timestamp() - LOOKUP_MARGIN_SECONDS,
        )
        return found.as_result() if found is not None else None

    async def find(self, job: StoredJob, results: ResultLookup) -> dict[str, Any] | None:
        """The message an earlier attempt of a DM or post job posted, found by the job
        key in its metadata; None for other kinds (running them again is harmless)."""
        if job.started_at is not None and job.kind == JobKind.SLACK_CHANNEL:
            self._ensure_session()
            return await self._channel_made(job)  # else a retry would make a second one
        if job.started_at is None or job.kind not in (JobKind.SLACK_DM, JobKind.SLACK_POST):
            return None
        self._ensure_session()
        if job.kind == JobKind.SLACK_DM:
            channel, thread_ts = await self._dm_channel(job.payload), None
        else:
            channel, thread_ts = await post_destination(job.payload, results)
        oldest = f"{max(0.0, job.started_at.timestamp() - LOOKUP_MARGIN_SECONDS):.6f}"
        cursor: str | None = None
        for _ in range(LOOKUP_PAGES):
            if thread_ts is None:
                method = "conversations.history"
                call = self.client.conversations_history(
                    channel=channel,
                    oldest=oldest,
                    limit=LOOKUP_PAGE_SIZE,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            else:
                method = "conversations.replies"
                call = self.client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    oldest=oldest,
                    limit=LOOKUP_PAGE_SIZE,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            response = await _call(method, call)
            for message in response.get("messages") or []:
                if _posted_by(message, job.key):
                    return {"channel": channel, "ts": str(message["ts"])}
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not response.get("has_more") or cursor is None:
                return None
        return None

    async def _dm(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        await posted_after(job.payload, results)
        channel = await self._dm_channel(job.payload)
        try:
            return await self._post_message(channel, job, thread_ts=None)
        except PermanentFailure:
            # opened again next time, should the channel be gone
            self._dm_channels.pop(payload_str(job.payload, "user"), None)
            raise

    async def _dm_channel(self, payload: Mapping[str, Any]) -> str:
        user = payload_str(payload, "user")
        channel = self._dm_channels.get(user)
        if channel is not None:
            return channel
        opened = await _call("conversations.open", self.client.conversations_open(users=user))
        channel = (opened.get("channel") or {}).get("id")
        if not isinstance(channel, str) or not channel:
            raise PermanentFailure("slack conversations.open: no channel id in the response")
        # A person's DM channel does not change: a storm's many DMs open it once.
        self._dm_channels[user] = channel
        return channel

    async def _post_message(
        self, channel: str, job: StoredJob, thread_ts: str | None
    ) -> dict[str, Any]:
        response = await _call(
            "chat.postMessage",
            self.client.chat_postMessage(
                channel=channel,
                text=payload_str(job.payload, "text", required=False),
                blocks=payload_blocks(job.payload),
                thread_ts=thread_ts,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"job": job.key}},
            ),
        )
        return _message_ref(response, "chat.postMessage")

    async def _update(self, payload: Mapping[str, Any], results: ResultLookup) -> dict[str, Any]:
        channel, ts = await target_message(payload, results)
        response = await _call(
            "chat.update",
            self.client.chat_update(
                channel=channel,
                ts=ts,
                text=payload_str(payload, "text", required=False),
                blocks=payload_blocks(payload),
            ),
        )
        return _message_ref(response, "chat.update")

    async def _respond(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        url = payload_str(payload, "response_url")
        body = payload.get("body")
        if not isinstance(body, dict):
            raise PermanentFailure("slack.respond job: payload.body must be an object")
        webhook = AsyncWebhookClient(url, timeout=math.ceil(self.timeout), session=self._session)
        try:
            response = await webhook.send_dict(body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise slack_failure("response_url", exc) from exc
        # Any 200 is success; the body is plain text ("ok"), not JSON. The URL itself is
        # a bearer credential for the message, so it never goes into a reason.
        failure = classify_status(response.status_code, "slack response_url")
        if failure is not None:
            if isinstance(failure, PermanentFailure) and response.body:
                failure = PermanentFailure(f"{failure.reason} {response.body[:40]}")
            raise failure
        return {}


# ---------------------------------------------------------------- payload helpers
# Shared with the console adapter, so both read a job the same way.


def payload_str(payload: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = payload.get(name)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise PermanentFailure(f"slack job: payload.{name} must be a non-empty string")


def payload_blocks(payload: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    blocks = payload.get("blocks")
    if blocks is None:
        return None
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise PermanentFailure("slack job: payload.blocks must be a list of objects")
    return blocks


def result_ref(result: Mapping[str, Any], key: str) -> tuple[str, str]:
    """(channel, ts) out of an earlier job's stored result."""
    channel, ts = result.get("channel"), result.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str) or not channel or not ts:
        raise PermanentFailure(f"slack job: the result of job {key} has no channel and ts")
    return channel, ts


async def post_destination(
    payload: Mapping[str, Any], results: ResultLookup
) -> tuple[str, str | None]:
    """(channel, thread_ts) of a SLACK_POST: the thread of ``thread_of``, the incident
    channel made by the job ``channel_of``, or ``channel``."""
    parent = payload.get("thread_of")
    if parent:
        return result_ref(await require_result(results, str(parent)), str(parent))
    if payload.get("channel_of"):
        return await channel_of(payload, results), None
    return payload_str(payload, "channel"), None


async def channel_of(payload: Mapping[str, Any], results: ResultLookup) -> str:
    """The incident channel a job acts on: the one made by the job ``channel_of``."""
    key = payload_str(payload, "channel_of")
    channel = (await require_result(results, key)).get("channel")
    if not isinstance(channel, str) or not channel:
        raise PermanentFailure(f"slack job: the result of job {key} has no channel")
    return channel


async def posted_after(payload: Mapping[str, Any], results: ResultLookup) -> None:
    """A message that must come after another (``after``: a digest's next part) waits
    until that one was posted."""
    after = payload.get("after")
    if after:
        await require_result(results, str(after))


async def target_message(payload: Mapping[str, Any], results: ResultLookup) -> tuple[str, str]:
    """(channel, ts) of the message a SLACK_UPDATE edits."""
    target = payload_str(payload, "target")
    return result_ref(await require_result(results, target), target)


async def _call(method: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    try:
        return await call
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        raise slack_failure(method, exc) from exc


def _posted_by(message: Any, key: str) -> bool:
    """Whether a message from the history carries the metadata of job ``key``."""
    metadata = message.get("metadata") if isinstance(message, Mapping) else None
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != METADATA_EVENT:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, Mapping) and payload.get("job") == key and "ts" in message


def _message_ref(response: AsyncSlackResponse, method: str) -> dict[str, Any]:
    channel, ts = response.get("channel"), response.get("ts")
    if not channel or not ts:
        raise PermanentFailure(f"slack {method}: no channel and ts in the response")
    # ts stays a string: through a float it loses digits and chat.update misses.
    return {"channel": str(channel), "ts": str(ts)}


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else str(value)
    return None
