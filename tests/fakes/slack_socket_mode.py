"""A loopback stand-in of Slack's Socket Mode: ``apps.connections.open`` and its WebSocket.

Built to Slack's Socket Mode guide (api.slack.com/apis/connections/socket-implement, now
docs.slack.dev/apis/events-api/using-socket-mode), the method reference of
``apps.connections.open`` (slack-ruby/slack-api-ref ``docs.slack.dev/methods/
apps.connections.open.json``) and the envelopes in python-slack-sdk's own tests
(tests/slack_sdk/socket_mode/mock_socket_mode_server.py). It is a ``FakeSlack`` too, so
one base URL serves the Web API (bot token) and Socket Mode (app token).

- ``POST /api/apps.connections.open`` takes only the app-level token
  (``Authorization: Bearer xapp-...``): none ``not_authed``, a bot or user token
  ``not_allowed_token_type``, another one ``invalid_auth``. It answers ``{"ok": true,
  "url": "ws://127.0.0.1:<port>/link/?ticket=<ticket>&app_id=<app>"}`` (Slack's is
  ``wss://wss-primary.slack.com/link/?ticket=...``). A ticket opens one connection;
  a used or unknown one is refused at the upgrade (HTTP 401). ``fail_next`` works here
  like on any method.
- On connecting the client gets ``{"type": "hello", "num_connections": n,
  "debug_info": {...}, "connection_info": {"app_id": ...}}``.
- ``send_envelope(type, payload)`` sends ``{"envelope_id", "type", "payload",
  "accepts_response_payload"}`` (``interactive``, ``slash_commands``, ``events_api``)
  on the newest open connection. Each ack the client sends back (``{"envelope_id",
  "payload"?}``) is recorded in ``acks``; a frame that is not JSON, has no
  ``envelope_id``, or names an envelope never sent goes to ``bad_frames``.
- ``disconnect(reason)`` sends ``{"type": "disconnect", "reason": ...}`` (Slack sends
  ``refresh_requested`` before it recycles a connection, ``link_disabled`` when Socket
  Mode is turned off); ``drop()`` closes the WebSocket; ``refuse_websockets(n)`` answers
  the next n upgrades with HTTP 503.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack_api import FakeSlack, SlackCall, _bearer_token

APP_TOKEN = "xapp-1-A0FAKEAPP-1-0123456789abcdef"


@dataclass
class SocketConnection:
    ticket: str
    ws: web.WebSocketResponse
    received: list[Any] = field(default_factory=list)
    closed: bool = False


class FakeSocketMode(FakeSlack):
    """FakeSlack plus Socket Mode; ``app_token`` is the only app-level token accepted."""

    def __init__(self, *, app_token: str = APP_TOKEN, app_id: str = "A0FAKEAPP", **kw: Any) -> None:
        super().__init__(**kw)
        self.app_token = app_token
        self.app_id = app_id
        self.tickets: dict[str, bool] = {}  # ticket -> used
        self.connections: list[SocketConnection] = []
        self.sent: dict[str, dict[str, Any]] = {}  # envelope_id -> envelope
        self.acks: dict[str, Any] = {}  # envelope_id -> the ack's payload (None: none)
        self.bad_frames: list[str] = []
        self.refused_upgrades = 0
        self._refuse = 0

    def routes(self, app: web.Application) -> None:
        # before FakeSlack's /api/{method}: the first matching route wins
        app.router.add_post("/api/apps.connections.open", self._connections_open)
        app.router.add_get("/link/", self._link)
        super().routes(app)

    async def stop(self) -> None:
        for conn in self.connections:
            if not conn.ws.closed:
                await conn.ws.close(code=1001)  # going away; lets the server shut down
        await super().stop()

    # ------------------------------------------------------------ apps.connections.open

    async def _connections_open(self, request: web.Request) -> web.Response:
        raw = await request.read()
        call = SlackCall(
            method="apps.connections.open",
            args={},
            headers=dict(request.headers),
            content_type=request.headers.get("Content-Type"),
        )
        self.calls.append(call)
        form = dict(urllib.parse.parse_qsl(raw.decode(errors="replace")))
        token = _bearer_token(request.headers.get("Authorization"))
        if token is None:
            token = form.get("token")
        status, body, headers = 200, self._open_answer(token), {}
        fault = self._take_fault("apps.connections.open")
        if fault is not None:
            status, body = fault.status, {"ok": False, "error": fault.error, **fault.extra}
            if fault.status == 429 and fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
        call.status, call.response = status, body
        return web.json_response(body, status=status, headers=headers)

    def _open_answer(self, token: str | None) -> dict[str, Any]:
        if token is None:
            return {"ok": False, "error": "not_authed"}
        if token.startswith(("xoxb-", "xoxp-")):
            return {"ok": False, "error": "not_allowed_token_type"}
        if token != self.app_token:
            return {"ok": False, "error": "invalid_auth"}
        ticket = str(uuid.uuid4())
        self.tickets[ticket] = False
        host = self.origin.replace("http://", "ws://")
        return {"ok": True, "url": f"{host}/link/?ticket={ticket}&app_id={self.app_id}"}

    # ------------------------------------------------------------ the WebSocket

    def refuse_websockets(self, times: int = 1) -> None:
        self._refuse += times

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self._refuse > 0:
            self._refuse -= 1
            self.refused_upgrades += 1
            return web.Response(status=503, text="service unavailable")
        if self.tickets.get(ticket, True):  # unknown or used
            return web.Response(status=401, text="invalid ticket")
        self.tickets[ticket] = True
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = SocketConnection(ticket=ticket, ws=ws)
        self.connections.append(conn)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": sum(1 for c in self.connections if not c.closed),
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._frame(conn, message.data)
        finally:
            conn.closed = True
        return ws

    def _frame(self, conn: SocketConnection, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            self.bad_frames.append(data)
            return
        conn.received.append(frame)
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        if not isinstance(envelope_id, str) or envelope_id not in self.sent:
            self.bad_frames.append(data)
            return
        self.acks[envelope_id] = frame.get("payload")

    def open_connections(self) -> list[SocketConnection]:
        return [c for c in self.connections if not c.closed and not c.ws.closed]

    def _current(self) -> SocketConnection:
        live = self.open_connections()
        if not live:
            raise AssertionError("no open Socket Mode connection\n" + self.summary())
        return live[-1]

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool = True
    ) -> str:
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        self.sent[envelope_id] = envelope
        await self._current().ws.send_json(envelope)
        return envelope_id

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        await self._current().ws.send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        )

    async def drop(self, code: int = 1011) -> None:
        conn = self._current()
        with contextlib.suppress(ConnectionError):
            await conn.ws.close(code=code)
        conn.closed = True

    def slash_command(self, text: str, *, user: str = "U0JANE0001") -> dict[str, Any]:
        """A ``slash_commands`` payload as Slack puts it in the envelope (strings only)."""
        return {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "team_domain": "fake",
            "channel_id": "C0INCIDENTS",
            "channel_name": "incident-response",
            "user_id": user,
            "user_name": self.users.get(user, {}).get("name", "someone"),
            "command": "/incident",
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.response_url_for(f"cmd-{secrets.token_hex(4)}"),
            "trigger_id": self.issue_trigger_id(),
        }

    def summary(self) -> str:
        lines = [super().summary(), f"socket connections ({len(self.connections)}):"]
        for conn in self.connections:
            lines.append(f"  ticket={conn.ticket[:8]} closed={conn.closed or conn.ws.closed}")
        lines.append(
            f"acks {len(self.acks)} of {len(self.sent)} sent; bad frames {len(self.bad_frames)}"
        )
        return "\n".join(lines)
