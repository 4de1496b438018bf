"""Socket Mode: Slack's interactions over a WebSocket, for routers the internet cannot reach.

Most routers run inside a private cluster. With Socket Mode (``slack.socket_mode: true``
and an app-level token ``SLACK_APP_TOKEN``, ``xapp-...``, scope ``connections:write``) the
router dials out: ``apps.connections.open`` hands it a WebSocket URL, and button presses,
slash commands and modal submissions arrive there as envelopes instead of as signed
POSTs to ``/slack/interactions`` and ``/slack/commands``. The app token authenticates the
connection, so there is no request signature to check; everything else is the same.

* ``interactive`` (``block_actions``, ``view_submission``) and ``slash_commands``
  envelopes go to one ``InboundHandler`` as an ``Inbound`` whose ``body`` has the shape
  the HTTP endpoints decode: the interaction payload (what ``payload=`` holds), or the
  slash command's fields as strings (the form). What the handler returns is the answer
  the HTTP endpoint would give (an ephemeral reply, ``response_action: errors``) and
  goes back in the acknowledgement.
* Every envelope is acknowledged within 3 seconds (``SocketModeResponse(envelope_id,
  payload)``): a handler still running after ``ack_within`` seconds is acknowledged
  empty, and finishes on its own (what it commits still stands; its reply is lost).
  Other envelope types (``events_api``) are acknowledged and ignored.
* Connections come and go: Slack asks for a new one (``disconnect``,
  ``refresh_requested``) every few hours, networks drop. Each attempt to connect gets a
  fresh URL (a URL opens one connection); failed attempts back off exponentially
  (``Backoff``, capped, with jitter). A bad token is retried at the cap and reported in
  ``last_error``.
* With several replicas each one connects; Slack delivers each envelope to one of them.

Built on slack_sdk's aiohttp client (``slack_sdk.socket_mode.aiohttp.SocketModeClient``):
its receive loop, ping/pong health check and message dispatch are used as they are;
its connect loop is replaced (it retries at a fixed interval with the same URL).
Metrics are ``SocketModeMetrics`` on the injected registry. Logs carry envelope types
and ids, never payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.slack.scopes import call_failure
from router.app.effects import RetryLater

log = logging.getLogger(__name__)

InboundKind = Literal["interactive", "slash_commands"]
HANDLED: frozenset[str] = frozenset({"interactive", "slash_commands"})
ACK_WITHIN = 2.5  # Slack wants the ack within 3 seconds
_ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 3.0, 5.0)


@dataclass(frozen=True)
class Inbound:
    """One interaction from Slack, as the HTTP endpoints would have it after verifying."""

    kind: InboundKind
    body: dict[str, Any]
    envelope_id: str
    retry_attempt: int | None = None


InboundHandler = Callable[[Inbound], Awaitable[dict[str, Any] | None]]


def check_app_token(token: str) -> None:
    """Refuse what cannot open Socket Mode, without repeating the token."""
    if not token.startswith("xapp-"):
        raise ValueError(
            "SLACK_APP_TOKEN must be an app-level token (xapp-...) with connections:write; "
            "a bot token (xoxb-...) cannot open Socket Mode"
        )


def command_form(payload: Mapping[str, Any]) -> dict[str, str]:
    """A ``slash_commands`` envelope's payload as the form ``/slack/commands`` decodes."""
    form = {}
    for key, value in payload.items():
        if isinstance(value, str):
            form[key] = value
        elif isinstance(value, bool):
            form[key] = "true" if value else "false"
        elif value is not None:
            form[key] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return form


class SocketModeMetrics:
    """Socket Mode's metrics on one registry (labels: reason, stage, type, outcome)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.connections = Counter(
            "router_slack_socket_connections",
            "Socket Mode WebSocket connections opened to Slack.",
            registry=r,
        )
        self.reconnects = Counter(
            "router_slack_socket_reconnects",
            "Connections opened after one ended: refresh (Slack asked), dropped.",
            ["reason"],
            registry=r,
        )
        self.connect_failures = Counter(
            "router_slack_socket_connect_failures",
            "Failed attempts to connect: url (apps.connections.open) or websocket.",
            ["stage"],
            registry=r,
        )
        self.connected = Gauge(
            "router_slack_socket_connected", "1 while a Socket Mode connection is up.", registry=r
        )
        self.envelopes = Counter(
            "router_slack_socket_envelopes",
            "Envelopes received from Slack, by type (interactive, slash_commands, ...).",
            ["type"],
            registry=r,
        )
        self.acks = Counter(
            "router_slack_socket_acks",
            "Envelopes acknowledged, by outcome: answered, empty (nothing to say or not "
            "ours), late (the handler overran), error (the handler failed).",
            ["outcome"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "router_slack_socket_ack_seconds",
            "Time from receiving an envelope to acknowledging it.",
            buckets=_ACK_BUCKETS,
            registry=r,
        )


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between connection attempts: ``first``, times ``factor``,
    at most ``cap`` seconds, each delay spread by +-``jitter`` so replicas drift apart."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.2

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        base = min(self.cap, self.first * self.factor ** max(0, attempt - 1))
        return base * (1 - self.jitter + 2 * self.jitter * rand())


@dataclass
class _State:
    connected_once: bool = False
    reconnect_reason: str = "dropped"
    last_error: str | None = None
    retry_after: float | None = None
    delays: list[float] = field(default_factory=list)


class _NoUrl(Exception):
    pass


class _Client(SocketModeClient):
    """slack_sdk's client with a connect loop that backs off and asks for a fresh URL
    on every attempt."""

    def __init__(self, receiver: SocketModeReceiver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._receiver = receiver

    async def connect(self) -> None:
        attempt = 0
        while not self.closed:
            if attempt:
                await self._receiver._pause(attempt)
                if self.closed:
                    return
            attempt += 1
            # As slack_sdk does: no automatic reconnect while the session is replaced,
            # and the old one closed first (Slack limits connections per app).
            self.auto_reconnect_enabled = False
            old = self.current_session
            if old is not None and not old.closed:
                with contextlib.suppress(Exception):
                    await old.close()
            if self.aiohttp_client_session.closed:
                self.aiohttp_client_session = aiohttp.ClientSession()
            try:
                url = await self.issue_new_wss_url()
            except _NoUrl as exc:
                self._receiver._failed("url", str(exc))
                continue
            except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                failure = call_failure("apps.connections.open", exc)
                after = failure.after if isinstance(failure, RetryLater) else None
                self._receiver._failed("url", failure.reason, after)
                continue
            try:
                session = await self.aiohttp_client_session.ws_connect(
                    url,
                    autoping=False,
                    heartbeat=self.ping_interval,
                    proxy=self.proxy,
                    ssl=self.web_client.ssl if self.web_client.ssl is not None else True,
                )
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self._receiver._failed("websocket", f"slack socket mode: {type(exc).__name__}")
                continue
            self.wss_uri = url
            self.current_session = session
            self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
            self.stale = False
            with contextlib.suppress(Exception):
                await session.ping(f"sdk-ping-pong:{time.time()}".encode())
            if self.current_session_monitor is not None:
                self.current_session_monitor.cancel()
            self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
            if self.message_receiver is not None:
                self.message_receiver.cancel()
            self.message_receiver = asyncio.ensure_future(self.receive_messages())
            self._receiver._connected()
            return

    async def issue_new_wss_url(self) -> str:
        # slack_sdk's sleeps out a rate limit itself and logs the failure; here the
        # connect loop waits (Retry-After, or the backoff) and says what failed.
        response = await self.web_client.apps_connections_open(app_token=self.app_token)
        url = response.get("url")
        if not isinstance(url, str) or not url.startswith(("wss://", "ws://")):
            raise _NoUrl("slack apps.connections.open: no WebSocket URL in the answer")
        return url

    async def connect_to_new_endpoint(self, force: bool = False) -> None:
        # slack_sdk's asks for a URL here and connect() would ask again; ours asks once.
        self._receiver._state.reconnect_reason = "refresh" if force else "dropped"
        self._receiver.metrics.connected.set(0)
        acquired = False
        try:
            try:
                acquired = await asyncio.wait_for(self.connect_operation_lock.acquire(), 5)
            except TimeoutError:
                acquired = False
            if force or (acquired and not await self.is_connected()):
                await self.connect()
        finally:
            if acquired:
                self.connect_operation_lock.release()


class SocketModeReceiver:
    """Receives Slack's interactions over Socket Mode and hands each to ``handler``.

    ``start`` returns at once; the connection is made (and remade) in the background.
    ``sleep`` and ``rand`` are injectable so tests can see the backoff without waiting.
    """

    def __init__(
        self,
        app_token: str,
        handler: InboundHandler,
        *,
        metrics: SocketModeMetrics,
        api_url: str = "https://slack.com/api/",
        ack_within: float = ACK_WITHIN,
        backoff: Backoff | None = None,
        ping_interval: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        check_app_token(app_token)
        self._app_token = app_token
        self._handler = handler
        self.metrics = metrics
        self._api_url = api_url
        self._ack_within = ack_within
        self._backoff = backoff or Backoff()
        self._ping_interval = ping_interval
        self._sleep = sleep
        self._rand = rand
        self._state = _State()
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._late: set[asyncio.Future[dict[str, Any] | None]] = set()

    def __repr__(self) -> str:
        return f"SocketModeReceiver(api_url={self._api_url!r})"  # never the token

    @property
    def connected(self) -> bool:
        session = self._client.current_session if self._client else None
        return session is not None and not session.closed

    @property
    def last_error(self) -> str | None:
        """Why the last attempt to connect failed (method and code; None once connected)."""
        return self._state.last_error

    @property
    def delays(self) -> list[float]:
        """The backoff delays waited so far, in order (for tests and diagnostics)."""
        return list(self._state.delays)

    async def start(self) -> None:
        if self._client is not None:
            return
        # slack_sdk's client makes its aiohttp session and message loop on construction:
        # it has to be built inside the running loop.
        self._client = _Client(
            self,
            app_token=self._app_token,
            web_client=AsyncWebClient(base_url=self._api_url, timeout=10),
            logger=logging.getLogger(f"{__name__}.sdk"),
            ping_interval=self._ping_interval,
        )
        self._client.socket_mode_request_listeners.append(self._on_request)
        self._task = asyncio.ensure_future(self._client.connect())

    async def stop(self) -> None:
        client, self._client = self._client, None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if client is not None:
            await client.close()  # type: ignore[no-untyped-call]  # slack_sdk leaves it bare
        self.metrics.connected.set(0)

    # ------------------------------------------------------------ connection events

    async def _pause(self, attempt: int) -> None:
        delay = self._backoff.delay(attempt, self._rand)
        if self._state.retry_after is not None:  # Slack said how long: at least that
            delay = max(delay, self._state.retry_after)
            self._state.retry_after = None
        self._state.delays.append(delay)
        await self._sleep(delay)

    def _failed(self, stage: str, reason: str, retry_after: float | None = None) -> None:
        self.metrics.connect_failures.labels(stage).inc()
        self._state.last_error = reason
        self._state.retry_after = retry_after
        log.warning("slack socket mode: could not connect (%s): %s", stage, reason)

    def _connected(self) -> None:
        self.metrics.connections.inc()
        self.metrics.connected.set(1)
        if self._state.connected_once:
            self.metrics.reconnects.labels(self._state.reconnect_reason).inc()
        self._state.connected_once = True
        self._state.last_error = None
        log.info("slack socket mode: connected")

    # ------------------------------------------------------------ envelopes

    async def _on_request(
        self, client: AsyncBaseSocketModeClient, request: SocketModeRequest
    ) -> None:
        started = time.monotonic()
        self.metrics.envelopes.labels(request.type).inc()
        answer: dict[str, Any] | None = None
        outcome = "empty"
        if request.type in HANDLED:
            kind: InboundKind = "interactive" if request.type == "interactive" else "slash_commands"
            body = request.payload if kind == "interactive" else command_form(request.payload)
            inbound = Inbound(kind, dict(body), request.envelope_id, request.retry_attempt)
            work = asyncio.ensure_future(self._handler(inbound))
            try:
                answer = await asyncio.wait_for(asyncio.shield(work), self._ack_within)
                outcome = "answered" if answer else "empty"
            except TimeoutError:
                outcome = "late"
                self._late.add(work)
                work.add_done_callback(self._late_done)
                log.warning("slack socket mode: %s %s acknowledged before its handler "
                            "finished", request.type, request.envelope_id)  # fmt: skip
            except Exception as exc:  # the handler's bug: Slack still gets its ack
                outcome = "error"
                log.error("slack socket mode: handler failed on %s %s: %s",
                          request.type, request.envelope_id, type(exc).__name__)  # fmt: skip
        if not request.accepts_response_payload:
            answer = None
        try:
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=request.envelope_id, payload=answer)
            )
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            # The connection went away: Slack shows the person an error; nothing is lost
            # that the handler committed.
            outcome = "error"
            log.warning("slack socket mode: ack of %s failed: %s", request.envelope_id,
                        type(exc).__name__)  # fmt: skip
        self.metrics.acks.labels(outcome).inc()
        self.metrics.ack_seconds.observe(time.monotonic() - started)

    def _late_done(self, work: asyncio.Future[dict[str, Any] | None]) -> None:
        self._late.discard(work)
        if not work.cancelled() and work.exception() is not None:
            log.error("slack socket mode: late handler failed: %s",
                      type(work.exception()).__name__)  # fmt: skip
