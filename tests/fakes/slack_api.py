"""A loopback fake of Slack's Web API and of interaction ``response_url`` endpoints.

Built to /work/shared/protocols.md sections 4 and 7 so that the real ``slack_sdk``
clients can be pointed at it::

    async with FakeSlack(token="xoxb-test", channels={"C0INCIDENTS"}) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        await client.chat_postMessage(channel="C0INCIDENTS", text="hi")
        assert slack.messages_in("C0INCIDENTS")[0]["text"] == "hi"

What it holds to, because the router's clients must cope with it:

- Every ``/api/<method>`` answer has ``Content-Type: application/json``. Failures are
  HTTP 200 with ``{"ok": false, "error": ...}``, except an unknown method (HTTP 404
  ``unknown_method``), an injected rate limit (HTTP 429 with an integer
  ``Retry-After``) and injected server errors.
- Auth is ``Authorization: Bearer <token>`` (or a ``token`` form field): missing gives
  ``not_authed``, anything else ``invalid_auth``.
- Arguments come from the query string (slack_sdk sends ``conversations.open`` and
  ``users.lookupByEmail`` that way) and from a JSON or form-encoded body. Slack's own
  codes are used for bad bodies: ``invalid_json``, ``json_not_object``,
  ``invalid_form_data``, ``missing_post_type`` (body without a Content-Type) and
  ``invalid_post_type`` (any other Content-Type).
- ``ts`` values are strings ``"<seconds>.<6 digits>"``, strictly increasing. A ``ts``
  that went through a float no longer matches and gives ``message_not_found``.
- Posting to a channel the bot has not joined gives ``not_in_channel``; a ``U...`` id
  posts into that user's DM channel, whose ``D...`` id is stable per user.
- ``users.info`` shows ``profile.email`` only with the ``users:read.email`` scope.
- Only POST is accepted (GET also for ``users.lookupByEmail`` and ``users.info``). Any
  other verb gets HTTP 405 ``{"ok": false, "error": "http_method_not_allowed"}``: that is this fake
  being strict, not Slack (Slack takes GET for most methods).
- Blocks are held to Block Kit's limits: at most 50 blocks a message, 3,000
  characters of section text (10 fields of 2,000), 150 of header text, 25 elements
  an actions block, 10 a context block, 100 options a select (option text 75,
  value 150), button text 75 and value 2,000, action_id and block_id 255, block_ids
  unique in a message and action_ids unique in a block; confirm dialogs title 100,
  text 300, buttons 30. Anything over is HTTP 200 ``invalid_blocks`` with
  ``errors`` naming where, as Slack answers (``must be less than 3001 characters
  [json-pointer:/blocks/1/text/text]``).


- ``conversations.history`` (newest first) and ``conversations.replies`` (the parent,
  then its replies, oldest first) take GET or POST, need ``channels:history``,
  ``groups:history`` or ``im:history`` by the kind of conversation (``C``, ``G``,
  ``D``), page with ``limit`` and ``cursor`` (``has_more`` and
  ``response_metadata.next_cursor``, empty on the last page), honour ``oldest`` and
  ``latest`` (exclusive unless ``inclusive``), and return a message's ``metadata``
  only with ``include_all_metadata``. A thread's replies are not in the history.
  ``chat.postMessage`` checks ``metadata`` (``event_type`` and an ``event_payload``
  object, else ``invalid_metadata_format``).
- ``response_url`` posts (``/actions/...``) answer 200 with the plain text ``ok``
  (``text/html``, as hooks.slack.com does, so a client that insists on JSON fails
  here too). After five uses a URL answers 404 ``used_url``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.slack_channels import ChannelsAndViews

__all__ = [
    "DEFAULT_SCOPES",
    "DEFAULT_USERS",
    "FakeSlack",
    "SlackCall",
    "SlackFault",
    "block_errors",
]

DEFAULT_SCOPES: frozenset[str] = frozenset(
    {
        "chat:write",
        "im:write",
        "users:read",
        "users:read.email",
        "channels:history",
        "groups:history",
        "im:history",
        # the rest of the app manifest: the slash command, incident channels, bookmarks
        "commands",
        "channels:manage",
        "groups:write",
        "channels:read",
        "groups:read",
        "bookmarks:write",
        "bookmarks:read",
    }
)

#: Users the fake knows when ``users=`` is not given.
DEFAULT_USERS: dict[str, dict[str, str]] = {
    "U0JANE0001": {
        "name": "jane",
        "real_name": "Jane Doe",
        "email": "jane@example.com",
        "tz": "Europe/Berlin",
    },
    "U0JOHN0002": {
        "name": "john",
        "real_name": "John Roe",
        "email": "john@example.com",
        "tz": "America/New_York",
    },
}

_TZ_OFFSETS = {"Europe/Berlin": 3600, "America/New_York": -18000, "UTC": 0}
_MAX_TEXT = 40_000
_MAX_BLOCKS = 50
_RESPONSE_URL_USES = 5
_HISTORY_LIMIT = 999  # Slack's maximum per page; 100 by default
_METADATA_EVENT_TYPE = re.compile(r"^[a-zA-Z0-9_]{1,255}$")


@dataclass
class SlackCall:
    """One request to ``/api/<method>`` as the fake saw it.

    ``args`` merges the query string and the body; ``query`` is the query string alone.
    ``status``/``response`` are what the fake answered.
    """

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    http_method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    status: int | None = None
    response: dict[str, Any] | None = None
    at: Any = None  # FakeSlack.stamp() when the call came (e.g. the router's frozen clock)


@dataclass
class SlackFault:
    """A failure queued by :meth:`FakeSlack.fail_next`."""

    method: str
    status: int
    error: str
    retry_after: int | None
    times: int
    commit: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class FakeSlack(ChannelsAndViews, LoopbackServer):
    """Slack Web API on 127.0.0.1 with a random port.

    Args:
        token: the only bot token accepted.
        channels: conversation ids (``C``/``G``/``D``) that exist.
        joined_channels: the ones the bot is a member of; defaults to all of ``channels``.
        users: ``{user_id: {"email", "name", "real_name", "tz"}}``; defaults to
            :data:`DEFAULT_USERS`.
        scopes: scopes granted to the token; a method needing another one answers
            ``missing_scope``.
        team_id, team, bot_user_id, bot_id, bot_name: identity returned by ``auth.test``
            and put on posted messages.
        ts_start: first ``ts`` to hand out (e.g. ``"1700000000.000100"``), then +100 µs
            per message; by default ``ts`` follows the wall clock.
    """

    def __init__(
        self,
        token: str = "xoxb-test",
        *,
        channels: Iterable[str] = ("C0INCIDENTS",),
        joined_channels: Iterable[str] | None = None,
        users: Mapping[str, Mapping[str, str]] | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        team_id: str = "T0FAKETEAM",
        team: str = "Fake Team",
        bot_user_id: str = "U0ROUTERBOT",
        bot_id: str = "B0ROUTERBOT",
        bot_name: str = "oncall-pager",
        ts_start: str | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        self.channels: set[str] = set(channels)
        self.joined_channels: set[str] = set(
            self.channels if joined_channels is None else joined_channels
        )
        self.users: dict[str, dict[str, str]] = {
            uid: dict(info) for uid, info in (DEFAULT_USERS if users is None else users).items()
        }
        self.scopes: set[str] = set(scopes)
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name

        self.calls: list[SlackCall] = []
        self.messages: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []

        self._response_posts: list[tuple[str, dict[str, Any]]] = []
        self._response_uses: dict[str, int] = {}
        self._faults: list[SlackFault] = []
        self.stamp: Callable[[], Any] | None = None  # what each SlackCall.at records
        self._limit_every: tuple[int, int] | None = None  # (n, Retry-After): every n-th call 429
        self._api_calls = 0
        self._dm_channels: dict[
            str, str
        ] = {}  # conversation id -> user id(s), for DMs/MPIMs the fake made
        self._open_dms: set[str] = set()
        self._last_ts_us = 0
        self._ts_step_us: int | None = None
        if ts_start is not None:
            seconds, _, micros = ts_start.partition(".")
            self._ts_step_us = 100
            self._last_ts_us = int(seconds) * 1_000_000 + int(micros.ljust(6, "0")) - 100
        self._methods: dict[str, tuple[Handler, frozenset[str], str | None]] = {
            "auth.test": (self._auth_test, frozenset({"POST"}), None),
            "chat.postMessage": (self._chat_post_message, frozenset({"POST"}), "chat:write"),
            "chat.update": (self._chat_update, frozenset({"POST"}), "chat:write"),
            "chat.postEphemeral": (self._chat_post_ephemeral, frozenset({"POST"}), "chat:write"),
            "conversations.open": (self._conversations_open, frozenset({"POST"}), "im:write"),
            # scope by the kind of conversation: checked in the handler
            "conversations.history": (
                self._conversations_history,
                frozenset({"GET", "POST"}),
                None,
            ),
            "conversations.replies": (
                self._conversations_replies,
                frozenset({"GET", "POST"}),
                None,
            ),
            "users.lookupByEmail": (
                self._users_lookup_by_email,
                frozenset({"GET", "POST"}),
                "users:read.email",
            ),
            "users.info": (self._users_info, frozenset({"GET", "POST"}), "users:read"),
        }
        # channels, bookmarks and modals: tests/fakes/slack_channels.py
        self._init_channels_and_views()
        self._methods.update(self._channel_methods())

    # ------------------------------------------------------------------ lifecycle

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_route("*", "/actions/{tail:.*}", self._handle_response_url)

    @property
    def base_url(self) -> str:
        """Web API base URL for ``AsyncWebClient(base_url=...)``, with the trailing ``/``."""
        return f"{self.origin}/api/"

    def response_url_for(self, name: str) -> str:
        """A ``response_url`` on this fake, shaped like Slack's ``/actions/T../../..``."""
        return f"{self.origin}/actions/{self.team_id}/{urllib.parse.quote(name, safe='')}"

    # ------------------------------------------------------------------ configuration helpers

    def add_user(
        self,
        user_id: str,
        *,
        email: str,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "UTC",
    ) -> None:
        self.users[user_id] = {
            "email": email,
            "name": name or email.split("@", 1)[0],
            "real_name": real_name or (name or email.split("@", 1)[0]),
            "tz": tz,
        }

    def dm_channel_for(self, user_id: str) -> str:
        """The stable ``D...`` id of the bot's DM with ``user_id`` (whether opened yet or not)."""
        digest = hashlib.sha1(f"{self.team_id}:{user_id}".encode()).hexdigest().upper()
        return "D" + digest[:10]

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        error: str | None = None,
        times: int = 1,
        *,
        commit: bool = False,
        **extra: Any,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"`` for any) fail.

        - 429: HTTP 429, ``Retry-After: <retry_after>`` (an integer; ``None`` omits the
          header), body ``{"ok": false, "error": "ratelimited"}``.
        - 5xx: that status with ``{"ok": false, "error": "fatal_error"}`` unless ``error``.
        - 200: ``{"ok": false, "error": error}``, e.g. ``error="channel_not_found"``.

        ``commit=True`` carries the call out first and then answers the failure, like a
        server that timed out after doing the work (a retry then posts a duplicate).
        ``method="response_url"`` fails ``response_url`` posts (plain-text body).
        ``extra`` keys are added to the JSON body.
        """
        if status == 200 and not error:
            raise ValueError("an HTTP 200 fault needs error=, e.g. 'channel_not_found'")
        if retry_after is not None and int(retry_after) != retry_after:
            raise ValueError("Retry-After must be a whole number of seconds")
        if status == 429:
            default = "ratelimited"
        elif status >= 500:
            default = "fatal_error"
        else:
            default = "invalid_request"
        self._faults.append(
            SlackFault(
                method=method,
                status=status,
                error=error or default,
                retry_after=None if retry_after is None else int(retry_after),
                times=times,
                commit=commit,
                extra=dict(extra),
            )
        )

    def rate_limit_every(self, n: int, retry_after: int = 1) -> None:
        """From now on answer every ``n``-th Web API call HTTP 429 ``ratelimited`` with
        ``Retry-After: retry_after``, whatever the method (a workspace under load)."""
        if n < 1 or int(retry_after) != retry_after:
            raise ValueError("n must be >= 1 and Retry-After a whole number of seconds")
        self._limit_every = (n, int(retry_after))
        self._api_calls = 0

    def clear_faults(self) -> None:
        """Slack is back: drop every fault still queued by :meth:`fail_next`."""
        self._faults.clear()

    # ------------------------------------------------------------------ inspection helpers

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        """Messages posted into ``channel`` (a ``U...`` id means that user's DM)."""
        if channel.startswith(("U", "W")):
            channel = self.dm_channel_for(channel)
        return [m for m in self.messages if m["channel"] == channel]

    def dms_to(self, user_id: str) -> list[dict[str, Any]]:
        return self.messages_in(self.dm_channel_for(user_id))

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for m in self.messages:
            if m["channel"] == channel and m["ts"] == ts:
                return m
        return None

    def responses_for(self, name: str) -> list[dict[str, Any]]:
        """Bodies posted to :meth:`response_url_for` ``(name)``."""
        path = urllib.parse.urlsplit(self.response_url_for(name)).path
        return [body for p, body in self._response_posts if p == path]

    def summary(self) -> str:
        lines = [f"calls ({len(self.calls)}):"]
        for c in self.calls:
            error = (c.response or {}).get("error")
            outcome = f"{c.status}" + (f" {error}" if error else "")
            lines.append(f"  {c.http_method} {c.method} {_short(c.args)} -> {outcome}")
        lines.append(f"messages ({len(self.messages)}):")
        for m in self.messages:
            thread = f" thread_ts={m['thread_ts']}" if m.get("thread_ts") else ""
            lines.append(f"  {m['channel']} ts={m['ts']}{thread} text={_short(m['text'])}")
        lines.append(f"responses ({len(self.responses)}):")
        for body in self.responses:
            lines.append(f"  {_short(body)}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        raw = await request.read()
        args, body_error = _parse_args(request, raw)
        call = SlackCall(
            method=name,
            args=args,
            headers=dict(request.headers),
            http_method=request.method,
            query=dict(request.query.items()),
            content_type=request.headers.get("Content-Type"),
            at=self.stamp() if self.stamp is not None else None,
        )
        self.calls.append(call)

        status, payload, headers = self._respond(name, request, args, body_error)
        call.status = status
        call.response = payload
        return web.json_response(payload, status=status, headers=headers)

    def _respond(
        self,
        name: str,
        request: web.Request,
        args: dict[str, Any],
        body_error: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        spec = self._methods.get(name)
        if spec is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": name}, {}
        handler, verbs, scope = spec
        if request.method not in verbs:
            return (
                405,
                {"ok": False, "error": "http_method_not_allowed"},
                {"Allow": ", ".join(sorted(verbs))},
            )

        token = _bearer_token(request.headers.get("Authorization"))
        if token is None and request.headers.get("Authorization") is None:
            token = args.get("token")
        args.pop("token", None)
        if token is None:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        headers = {"X-OAuth-Scopes": ",".join(sorted(self.scopes))}
        if scope is not None:
            headers["X-Accepted-OAuth-Scopes"] = scope

        if self._limit_every is not None:
            self._api_calls += 1
            every, after = self._limit_every
            if self._api_calls % every == 0:
                headers["Retry-After"] = str(after)
                return 429, {"ok": False, "error": "ratelimited"}, headers
        fault = self._take_fault(name)
        if fault is not None:
            if fault.commit and body_error is None and (scope is None or scope in self.scopes):
                with contextlib.suppress(_ApiError):
                    handler(args)
            body = {"ok": False, "error": fault.error, **fault.extra}
            if fault.status == 429 and fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            return fault.status, body, headers

        if body_error is not None:
            return 200, {"ok": False, "error": body_error}, headers
        if scope is not None and scope not in self.scopes:
            body = {
                "ok": False,
                "error": "missing_scope",
                "needed": scope,
                "provided": ",".join(sorted(self.scopes)),
            }
            return 200, body, headers
        try:
            result = handler(args)
        except _ApiError as e:
            return 200, {"ok": False, "error": e.error, **e.extra}, headers
        return 200, {"ok": True, **result}, headers

    def _take_fault(self, name: str) -> SlackFault | None:
        for fault in self._faults:
            if fault.method in (name, "*"):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, text="invalid_method", content_type="text/html")
        fault = self._take_fault("response_url")
        if fault is not None:
            return web.Response(status=fault.status, text=fault.error, content_type="text/html")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return web.Response(status=400, text="invalid_payload", content_type="text/html")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload", content_type="text/html")
        path = request.path
        if self._response_uses.get(path, 0) >= _RESPONSE_URL_USES:
            return web.Response(status=404, text="used_url", content_type="text/html")
        if not body.get("delete_original") and not body.get("text") and not body.get("blocks"):
            return web.Response(status=400, text="no_text", content_type="text/html")
        self._response_uses[path] = self._response_uses.get(path, 0) + 1
        self._response_posts.append((path, body))
        self.responses.append(body)
        return web.Response(status=200, text="ok", content_type="text/html")

    # ------------------------------------------------------------------ methods

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team.lower().replace(' ', '-')}.slack.com/",
            "team": self.team,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable_channel(args.get("channel"))
        text, blocks, attachments = self._content(args)
        thread_ts = args.get("thread_ts")
        thread_ts = None if thread_ts in (None, "") else str(thread_ts)
        metadata = _parse_metadata(args.get("metadata"))
        ts = self._next_ts()
        stored: dict[str, Any] = {
            "channel": channel,
            "ts": ts,
            "text": text,
            "blocks": blocks,
            "thread_ts": thread_ts,
            "attachments": attachments,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "metadata": metadata,
        }
        self.messages.append(stored)
        return {"channel": channel, "ts": ts, "message": self._message_object(stored)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel or not self._is_member(str(channel)):
            raise _ApiError("channel_not_found")
        ts = args.get("ts")
        message = self.message(str(channel), str(ts)) if ts not in (None, "") else None
        if message is None:
            raise _ApiError("message_not_found")
        text, blocks, attachments = self._content(args)
        message["text"] = text
        message["blocks"] = blocks
        message["attachments"] = attachments
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": message["channel"],
            "ts": message["ts"],
            "text": text,
            "message": self._message_object(message),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable_channel(args.get("channel"))
        user = args.get("user")
        if not user or user not in self.users:
            raise _ApiError("user_not_in_channel")
        text, blocks, attachments = self._content(args)
        ts = self._next_ts()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "ts": ts,
                "text": text,
                "blocks": blocks,
                "attachments": attachments,
                "thread_ts": args.get("thread_ts"),
            }
        )
        return {"message_ts": ts}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users_arg = args.get("users")
        channel_arg = args.get("channel")
        if users_arg in (None, "", []):
            if channel_arg:
                if channel_arg not in self._dm_channels:
                    raise _ApiError("channel_not_found")
                return {"no_op": True, "already_open": True, "channel": {"id": channel_arg}}
            raise _ApiError("users_list_not_supplied")
        if isinstance(users_arg, str):
            user_ids = [u.strip() for u in users_arg.split(",") if u.strip()]
        elif isinstance(users_arg, list):
            user_ids = [str(u) for u in users_arg]
        else:
            raise _ApiError("invalid_arguments")
        if not user_ids:
            raise _ApiError("users_list_not_supplied")
        if len(user_ids) > 8:
            raise _ApiError("too_many_users")
        for uid in user_ids:
            if uid not in self.users:
                raise _ApiError("user_not_found")
        if len(user_ids) == 1:
            conv_id = self.dm_channel_for(user_ids[0])
        else:
            digest = (
                hashlib.sha1(f"{self.team_id}:{','.join(sorted(user_ids))}".encode())
                .hexdigest()
                .upper()
            )
            conv_id = "G" + digest[:10]
        already = conv_id in self._open_dms
        self._open_dms.add(conv_id)
        self._dm_channels[conv_id] = ",".join(user_ids)
        result: dict[str, Any] = {"channel": {"id": conv_id}}
        if _truthy(args.get("return_im")):
            result["channel"].update(
                {
                    "created": int(time.time()),
                    "is_im": len(user_ids) == 1,
                    "is_mpim": len(user_ids) > 1,
                    "is_org_shared": False,
                    "user": user_ids[0] if len(user_ids) == 1 else None,
                    "last_read": "0000000000.000000",
                    "latest": None,
                    "unread_count": 0,
                    "unread_count_display": 0,
                    "is_open": True,
                    "priority": 0,
                }
            )
        if already:
            result.update({"no_op": True, "already_open": True})
        return result

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable_channel(args.get("channel"))
        found = [
            m
            for m in self.messages
            if m["channel"] == channel and m.get("thread_ts") in (None, m["ts"])
        ]
        found.reverse()  # newest first, as Slack returns them
        return self._history_page(found, args)

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable_channel(args.get("channel"))
        ts = args.get("ts")
        if ts in (None, ""):
            raise _ApiError("invalid_arguments")
        parent = self.message(channel, str(ts))
        if parent is None:
            raise _ApiError("thread_not_found")
        replies = [
            m
            for m in self.messages
            if m["channel"] == channel and m.get("thread_ts") == parent["ts"] and m is not parent
        ]
        page = self._history_page(replies, args)
        # Slack puts the parent first on every page, whatever oldest says.
        page["messages"].insert(0, self._history_message(parent, args))
        return page

    def _readable_channel(self, channel: Any) -> str:
        if not channel or not isinstance(channel, str):
            raise _ApiError("channel_not_found")
        needed = {"C": "channels:history", "G": "groups:history", "D": "im:history"}.get(
            channel[:1]
        )
        if needed == "channels:history" and self._is_private(channel):
            needed = "groups:history"  # a private channel made now has a C id too
        if needed is None or not self._is_member(channel):
            raise _ApiError("channel_not_found")
        if needed not in self.scopes:
            raise _ApiError("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))
        return channel

    def _history_page(self, messages: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        inclusive = _truthy(args.get("inclusive"))
        oldest, latest = _ts_arg(args.get("oldest")), _ts_arg(args.get("latest"))

        def within(m: dict[str, Any]) -> bool:
            at = _ts_us(m["ts"])
            if oldest is not None and (at < oldest or (at == oldest and not inclusive)):
                return False
            return latest is None or at < latest or (at == latest and inclusive)

        selected = [m for m in messages if within(m)]
        try:
            limit = int(args.get("limit") or 100)
        except (TypeError, ValueError):
            raise _ApiError("invalid_limit") from None
        limit = max(1, min(limit, _HISTORY_LIMIT))
        cursor = args.get("cursor")
        start = 0
        if cursor not in (None, ""):
            try:
                start = int(base64.b64decode(str(cursor)).decode().removeprefix("offset:"))
            except (ValueError, UnicodeDecodeError):
                raise _ApiError("invalid_cursor") from None
        page = selected[start : start + limit]
        more = start + limit < len(selected)
        next_cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return {
            "messages": [self._history_message(m, args) for m in page],
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _history_message(self, stored: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        message = self._message_object(stored)
        if stored.get("metadata") and _truthy(args.get("include_all_metadata")):
            message["metadata"] = stored["metadata"]
        return message

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = args.get("email")
        if not email:
            raise _ApiError("invalid_arguments")
        for uid, info in self.users.items():
            if info.get("email", "").lower() == str(email).lower():
                return {"user": self._user_object(uid, info)}
        raise _ApiError("users_not_found")

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        uid = args.get("user")
        if not uid:
            raise _ApiError("invalid_arguments")
        info = self.users.get(str(uid))
        if info is None:
            raise _ApiError("user_not_found")
        user = self._user_object(str(uid), info)
        if "users:read.email" not in self.scopes:
            del user["profile"]["email"]  # Slack leaves it out without the scope
        return {"user": user}

    # ------------------------------------------------------------------ method helpers

    def _is_member(self, channel: str) -> bool:
        return channel in self._dm_channels or (
            channel in self.joined_channels and channel in self.channels
        )

    def _postable_channel(self, channel: Any) -> str:
        if not channel or not isinstance(channel, str):
            raise _ApiError("channel_not_found")
        if channel.startswith(("U", "W")):
            if channel not in self.users:
                raise _ApiError("channel_not_found")
            conv_id = self.dm_channel_for(channel)
            # Posting to a user id opens the DM implicitly.
            self._open_dms.add(conv_id)
            self._dm_channels[conv_id] = channel
            return conv_id
        if channel in self._dm_channels:
            return channel
        if channel not in self.channels:
            raise _ApiError("channel_not_found")
        if channel not in self.joined_channels:
            raise _ApiError("not_in_channel")
        return channel

    def _content(self, args: dict[str, Any]) -> tuple[str, list[dict[str, Any]], list[Any] | None]:
        blocks = _parse_json_list(args.get("blocks"), "invalid_blocks_format")
        if blocks is not None:
            errors = block_errors(blocks)
            if errors:
                raise _ApiError("invalid_blocks", errors=errors)
        attachments = _parse_json_list(args.get("attachments"), "invalid_attachments")
        text = args.get("text")
        text = "" if text is None else str(text)
        if not text and not blocks and not attachments:
            raise _ApiError("no_text")
        if len(text) > _MAX_TEXT:
            raise _ApiError("msg_too_long")
        return text, blocks or [], attachments

    def _message_object(self, stored: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": stored["text"],
            "user": self.bot_user_id,
            "ts": stored["ts"],
            "bot_id": self.bot_id,
            "app_id": "A0FAKEAPP",
            "team": self.team_id,
            "blocks": stored["blocks"],
        }
        if stored.get("attachments"):
            message["attachments"] = stored["attachments"]
        if stored.get("thread_ts"):
            message["thread_ts"] = stored["thread_ts"]
        if stored.get("edited"):
            message["edited"] = stored["edited"]
        return message

    def _user_object(self, uid: str, info: Mapping[str, str]) -> dict[str, Any]:
        tz = info.get("tz", "UTC")
        name = info.get("name", uid.lower())
        real_name = info.get("real_name", name)
        return {
            "id": uid,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": _TZ_OFFSETS.get(tz, 0),
            "is_bot": False,
            "is_admin": False,
            "profile": {
                "email": info.get("email"),
                "real_name": real_name,
                "display_name": name,
                "team": self.team_id,
            },
        }

    def _next_ts(self) -> str:
        if self._ts_step_us is not None:
            self._last_ts_us += self._ts_step_us
        else:
            self._last_ts_us = max(time.time_ns() // 1000, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"


# ---------------------------------------------------------------------- module helpers


def _parse_args(request: web.Request, raw: bytes) -> tuple[dict[str, Any], str | None]:
    args: dict[str, Any] = dict(request.query.items())
    if not raw:
        return args, None
    if "Content-Type" not in request.headers:
        return args, "missing_post_type"
    ctype = request.content_type
    if ctype == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            return args, "invalid_json"
        if not isinstance(body, dict):
            return args, "json_not_object"
        args.update(body)
    elif ctype == "application/x-www-form-urlencoded":
        try:
            args.update(
                urllib.parse.parse_qsl(
                    raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True
                )
            )
        except (UnicodeDecodeError, ValueError):
            return args, "invalid_form_data"
    else:
        return args, "invalid_post_type"
    return args, None


def _parse_metadata(value: Any) -> dict[str, Any] | None:
    """Message metadata as chat.postMessage takes it: an object (or its JSON)."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _ApiError("invalid_metadata_format") from None
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("event_type"), str)
        or not _METADATA_EVENT_TYPE.match(value["event_type"])
        or not isinstance(value.get("event_payload"), dict)
    ):
        raise _ApiError("invalid_metadata_format")
    return {"event_type": value["event_type"], "event_payload": value["event_payload"]}


def _ts_us(ts: str) -> int:
    seconds, _, micros = ts.partition(".")
    return int(seconds) * 1_000_000 + int(micros.ljust(6, "0")[:6])


def _ts_arg(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return _ts_us(str(value))
    except ValueError:
        raise _ApiError("invalid_ts_oldest") from None


def _bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return ""  # present but unusable: invalid_auth, not not_authed
    return value.strip()


def _parse_json_list(value: Any, error: str) -> list[Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _ApiError(error) from None
    if not isinstance(value, list):
        raise _ApiError(error)
    return value


def block_errors(blocks: list[Any]) -> list[str]:
    """What Slack would refuse in ``blocks`` (empty when it takes them), each error
    with the JSON pointer of the offending part."""
    errors: list[str] = []

    def too_long(value: Any, limit: int, where: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            errors.append(f"must be less than {limit + 1} characters [json-pointer:{where}]")

    def too_many(items: Any, limit: int, where: str) -> None:
        if isinstance(items, list) and len(items) > limit:
            errors.append(f"must be less than {limit + 1} items [json-pointer:{where}]")

    def text_of(obj: Any) -> Any:
        return obj.get("text") if isinstance(obj, dict) else None

    def element(el: Any, where: str, action_ids: set[str]) -> None:
        if not isinstance(el, dict):
            errors.append(f"must be an object [json-pointer:{where}]")
            return
        action_id = el.get("action_id")
        too_long(action_id, 255, f"{where}/action_id")
        if isinstance(action_id, str):
            if action_id in action_ids:
                errors.append(f"action_id must be unique in a block [json-pointer:{where}]")
            action_ids.add(action_id)
        kind = el.get("type")
        if kind == "button":
            too_long(text_of(el.get("text")), 75, f"{where}/text/text")
            too_long(el.get("value"), 2000, f"{where}/value")
        if kind in ("static_select", "overflow", "radio_buttons", "checkboxes"):
            too_long(text_of(el.get("placeholder")), 150, f"{where}/placeholder/text")
            options = el.get("options")
            too_many(options, 100 if kind == "static_select" else 10, f"{where}/options")
            if kind == "static_select" and not options and not el.get("option_groups"):
                errors.append(f"must provide options [json-pointer:{where}/options]")
            for i, option in enumerate(options or []):
                too_long(text_of(option.get("text")), 75, f"{where}/options/{i}/text/text")
                too_long(option.get("value"), 150, f"{where}/options/{i}/value")
        confirm = el.get("confirm")
        if isinstance(confirm, dict):
            too_long(text_of(confirm.get("title")), 100, f"{where}/confirm/title/text")
            too_long(text_of(confirm.get("text")), 300, f"{where}/confirm/text/text")
            for button in ("confirm", "deny"):
                too_long(text_of(confirm.get(button)), 30, f"{where}/confirm/{button}/text")

    too_many(blocks, _MAX_BLOCKS, "/blocks")
    block_ids: set[str] = set()
    for n, block in enumerate(blocks):
        where = f"/blocks/{n}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"must be an object with a type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        too_long(block_id, 255, f"{where}/block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                errors.append(f"block_id must be unique in a message [json-pointer:{where}]")
            block_ids.add(block_id)
        kind = block["type"]
        if kind == "section":
            too_long(text_of(block.get("text")), 3000, f"{where}/text/text")
            too_many(block.get("fields"), 10, f"{where}/fields")
            for i, item in enumerate(block.get("fields") or []):
                too_long(text_of(item), 2000, f"{where}/fields/{i}/text")
            if "accessory" in block:
                element(block["accessory"], f"{where}/accessory", set())
        elif kind == "header":
            too_long(text_of(block.get("text")), 150, f"{where}/text/text")
        elif kind == "context":
            too_many(block.get("elements"), 10, f"{where}/elements")
        elif kind == "actions":
            too_many(block.get("elements"), 25, f"{where}/elements")
            action_ids: set[str] = set()
            for i, el in enumerate(block.get("elements") or []):
                element(el, f"{where}/elements/{i}", action_ids)
    return errors


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
