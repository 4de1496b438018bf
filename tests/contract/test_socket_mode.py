"""Socket Mode against a loopback stand-in of apps.connections.open and its WebSocket.

The real slack_sdk aiohttp client connects to tests/fakes/slack_socket_mode.py; the tests
wait on what the stand-in saw (connections, acks), never on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from router.adapters.slack.socket_mode import (
    Backoff,
    Inbound,
    SocketModeMetrics,
    SocketModeReceiver,
    command_form,
)
from tests.fakes.slack_socket_mode import APP_TOKEN, FakeSocketMode

BLOCK_ACTIONS = {
    "type": "block_actions",
    "user": {"id": "U0JANE0001", "username": "jane", "name": "jane", "team_id": "T0FAKETEAM"},
    "api_app_id": "A0FAKEAPP",
    "token": "legacy-verification-token",
    "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0JANE"},
    "trigger_id": "4916855695380.3485157640.72f11de3d52bb9593d6931af772a323e",
    "team": {"id": "T0FAKETEAM", "domain": "fake"},
    "channel": {"id": "D0JANE", "name": "directmessage"},
    "message": {"type": "message", "ts": "1700000000.000100", "text": "page"},
    "state": {"values": {}},
    "response_url": "https://hooks.slack.com/actions/T0FAKETEAM/1/abc",
    "actions": [
        {
            "type": "button",
            "action_id": "page.declare",
            "block_id": "page_actions",
            "value": "p86e62eccfb83593a",
            "action_ts": "1700000003.000200",
        }
    ],
}


class Recorder:
    """An InboundHandler that records what it got and answers what the test says."""

    def __init__(self) -> None:
        self.got: list[Inbound] = []
        self.answer: Callable[[Inbound], Awaitable[dict[str, Any] | None]] | None = None

    async def __call__(self, inbound: Inbound) -> dict[str, Any] | None:
        self.got.append(inbound)
        return await self.answer(inbound) if self.answer else None


@pytest.fixture
async def slack() -> AsyncIterator[FakeSocketMode]:
    async with FakeSocketMode() as fake:
        yield fake


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def handler() -> Recorder:
    return Recorder()


class Waits:
    """The backoff's sleeps, recorded and not waited (the delays are what is tested)."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


Start = Callable[..., Awaitable[SocketModeReceiver]]


@pytest.fixture
async def start(
    slack: FakeSocketMode, handler: Recorder, registry: CollectorRegistry
) -> AsyncIterator[Start]:
    """Start a receiver on the stand-in (keywords override the defaults); all are
    stopped after the test."""
    made: list[SocketModeReceiver] = []

    async def make(**changes: Any) -> SocketModeReceiver:
        options: dict[str, Any] = {
            "app_token": APP_TOKEN,
            "handler": handler,
            "metrics": SocketModeMetrics(registry),
            "api_url": slack.base_url,
            "backoff": Backoff(first=0.01, factor=2.0, cap=0.04, jitter=0.2),
            "sleep": Waits(),
            "rand": lambda: 0.5,  # no jitter: the delays are exact
        }
        options.update(changes)
        receiver = SocketModeReceiver(options.pop("app_token"), options.pop("handler"), **options)
        made.append(receiver)
        await receiver.start()
        return receiver

    yield make
    for receiver in made:
        await receiver.stop()


@pytest.fixture
async def receiver(start: Start) -> SocketModeReceiver:
    return await start()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def connected(slack: FakeSocketMode, count: int = 1) -> None:
    await slack.wait_for(
        lambda: len(slack.open_connections()) == 1 and len(slack.connections) == count
    )


# ------------------------------------------------------------------ connecting


async def test_connects_with_the_app_token(
    slack: FakeSocketMode, receiver: SocketModeReceiver, registry: CollectorRegistry
) -> None:
    await connected(slack)
    (call,) = slack.calls_to("apps.connections.open")
    assert call.headers["Authorization"] == f"Bearer {APP_TOKEN}"
    assert call.response is not None
    assert set(call.response) == {"ok", "url"}
    assert call.response["url"].startswith("ws://127.0.0.1:")
    assert "/link/?ticket=" in call.response["url"]
    await slack.wait_for(lambda: receiver.connected)
    assert sample(registry, "router_slack_socket_connections_total") == 1
    assert sample(registry, "router_slack_socket_connected") == 1
    assert receiver.last_error is None
    assert "xapp" not in repr(receiver)


def test_a_bot_token_cannot_open_socket_mode(registry: CollectorRegistry) -> None:
    with pytest.raises(ValueError, match="app-level token") as caught:
        SocketModeReceiver("xoxb-123-secret", Recorder(), metrics=SocketModeMetrics(registry))
    assert "secret" not in str(caught.value)


async def test_a_wrong_app_token_backs_off_and_says_why(
    slack: FakeSocketMode, start: Start, registry: CollectorRegistry
) -> None:
    waits = Waits()
    made = await start(app_token="xapp-1-A0FAKEAPP-1-wrong", sleep=waits)
    await slack.wait_for(lambda: len(slack.calls_to("apps.connections.open")) >= 5)
    assert made.last_error == "slack apps.connections.open: invalid_auth"
    assert waits.asked[:4] == pytest.approx([0.01, 0.02, 0.04, 0.04])  # capped
    assert sample(registry, "router_slack_socket_connect_failures_total", stage="url") >= 4
    assert slack.connections == []


async def test_backoff_then_connects_once_slack_answers(
    slack: FakeSocketMode, start: Start, registry: CollectorRegistry
) -> None:
    slack.fail_next("apps.connections.open", status=503, times=3)
    made = await start(backoff=Backoff(first=0.01, factor=3.0, cap=10.0))
    await connected(slack)
    assert made.delays == pytest.approx([0.01, 0.03, 0.09])
    assert made.last_error is None
    assert sample(registry, "router_slack_socket_connect_failures_total", stage="url") == 3


async def test_a_rate_limit_is_waited_out(slack: FakeSocketMode, start: Start) -> None:
    slack.fail_next("apps.connections.open", status=429, retry_after=7)
    made = await start()
    await connected(slack)
    assert made.delays == [7.0]  # Retry-After, not the 0.01 s backoff


async def test_a_refused_websocket_gets_a_fresh_url(
    slack: FakeSocketMode, start: Start, registry: CollectorRegistry
) -> None:
    slack.refuse_websockets(2)
    await start()
    await connected(slack)
    assert slack.refused_upgrades == 2
    # each attempt asked for its own URL: a ticket opens one connection
    assert len(slack.calls_to("apps.connections.open")) == 3
    assert list(slack.tickets.values()) == [False, False, True]  # only the last opened
    assert sample(registry, "router_slack_socket_connect_failures_total", stage="websocket") == 2


# ------------------------------------------------------------------ envelopes and acks


async def test_a_slash_command_is_answered_in_its_ack(
    slack: FakeSocketMode,
    receiver: SocketModeReceiver,
    handler: Recorder,
    registry: CollectorRegistry,
) -> None:
    async def reply(inbound: Inbound) -> dict[str, Any]:
        return {"response_type": "ephemeral", "text": f"you said {inbound.body['text']}"}

    handler.answer = reply
    await connected(slack)
    payload = slack.slash_command("status INC-1")
    envelope = await slack.send_envelope("slash_commands", payload)
    await slack.wait_for(lambda: envelope in slack.acks)
    assert slack.acks[envelope] == {"response_type": "ephemeral", "text": "you said status INC-1"}
    (got,) = handler.got
    assert got.kind == "slash_commands"
    assert got.envelope_id == envelope
    # the form /slack/commands decodes: every value a string
    assert got.body == payload
    assert all(isinstance(v, str) for v in got.body.values())
    assert sample(registry, "router_slack_socket_envelopes_total", type="slash_commands") == 1
    assert sample(registry, "router_slack_socket_acks_total", outcome="answered") == 1
    assert sample(registry, "router_slack_socket_ack_seconds_count") == 1


async def test_a_button_press_is_acknowledged_empty(
    slack: FakeSocketMode, receiver: SocketModeReceiver, handler: Recorder
) -> None:
    await connected(slack)
    envelope = await slack.send_envelope("interactive", BLOCK_ACTIONS)
    await slack.wait_for(lambda: envelope in slack.acks)
    assert slack.acks[envelope] is None
    (got,) = handler.got
    assert (got.kind, got.body) == ("interactive", BLOCK_ACTIONS)  # what payload= holds
    assert slack.bad_frames == []


async def test_a_modal_submission_can_keep_the_modal_open(
    slack: FakeSocketMode, receiver: SocketModeReceiver, handler: Recorder
) -> None:
    async def refuse(inbound: Inbound) -> dict[str, Any]:
        assert inbound.body["type"] == "view_submission"
        return {"response_action": "errors", "errors": {"title": "Say what is wrong."}}

    handler.answer = refuse
    await connected(slack)
    envelope = await slack.send_envelope(
        "interactive", {"type": "view_submission", "user": {"id": "U0JANE0001"}, "view": {}}
    )
    await slack.wait_for(lambda: envelope in slack.acks)
    assert slack.acks[envelope] == {
        "response_action": "errors",
        "errors": {"title": "Say what is wrong."},
    }


async def test_other_envelopes_are_acknowledged_and_ignored(
    slack: FakeSocketMode,
    receiver: SocketModeReceiver,
    handler: Recorder,
    registry: CollectorRegistry,
) -> None:
    await connected(slack)
    envelope = await slack.send_envelope(
        "events_api", {"type": "event_callback", "event": {"type": "app_mention"}},
        accepts_response_payload=False,
    )  # fmt: skip
    await slack.wait_for(lambda: envelope in slack.acks)
    assert handler.got == []
    assert sample(registry, "router_slack_socket_envelopes_total", type="events_api") == 1
    assert sample(registry, "router_slack_socket_acks_total", outcome="empty") == 1


async def test_a_slow_handler_is_acknowledged_before_it_finishes(
    slack: FakeSocketMode, start: Start, handler: Recorder, registry: CollectorRegistry
) -> None:
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(inbound: Inbound) -> dict[str, Any]:
        await release.wait()
        finished.append(inbound.envelope_id)
        return {"text": "too late to be seen"}

    handler.answer = slow
    await start(ack_within=0.05)
    await connected(slack)
    envelope = await slack.send_envelope("slash_commands", slack.slash_command("help"))
    await slack.wait_for(lambda: envelope in slack.acks)
    assert slack.acks[envelope] is None  # acknowledged empty, within Slack's 3 s
    assert finished == []
    assert sample(registry, "router_slack_socket_acks_total", outcome="late") == 1
    release.set()
    await slack.wait_for(lambda: finished == [envelope])  # the work still completes


async def test_a_failing_handler_still_acknowledges(
    slack: FakeSocketMode,
    receiver: SocketModeReceiver,
    handler: Recorder,
    registry: CollectorRegistry,
) -> None:
    async def broken(inbound: Inbound) -> dict[str, Any]:
        raise KeyError("a bug")

    handler.answer = broken
    await connected(slack)
    envelope = await slack.send_envelope("interactive", BLOCK_ACTIONS)
    await slack.wait_for(lambda: envelope in slack.acks)
    assert sample(registry, "router_slack_socket_acks_total", outcome="error") == 1


async def test_many_envelopes_at_once(
    slack: FakeSocketMode, receiver: SocketModeReceiver, handler: Recorder
) -> None:
    await connected(slack)
    sent = [await slack.send_envelope("interactive", BLOCK_ACTIONS) for _ in range(25)]
    await slack.wait_for(lambda: all(e in slack.acks for e in sent))
    assert sorted(i.envelope_id for i in handler.got) == sorted(sent)


# ------------------------------------------------------------------ reconnecting


async def test_slack_asks_for_a_new_connection(
    slack: FakeSocketMode,
    receiver: SocketModeReceiver,
    handler: Recorder,
    registry: CollectorRegistry,
) -> None:
    await connected(slack)
    await slack.disconnect("refresh_requested")
    await connected(slack, count=2)
    assert slack.connections[0].closed or slack.connections[0].ws.closed
    assert len(slack.calls_to("apps.connections.open")) == 2  # a fresh URL
    assert sample(registry, "router_slack_socket_reconnects_total", reason="refresh") == 1
    # and the new connection carries envelopes
    envelope = await slack.send_envelope("interactive", BLOCK_ACTIONS)
    await slack.wait_for(lambda: envelope in slack.acks)


async def test_a_dropped_connection_is_remade(
    slack: FakeSocketMode, receiver: SocketModeReceiver, registry: CollectorRegistry
) -> None:
    await connected(slack)
    await slack.drop()
    await connected(slack, count=2)
    await slack.wait_for(
        lambda: sample(registry, "router_slack_socket_reconnects_total", reason="dropped") == 1
    )
    assert sample(registry, "router_slack_socket_connections_total") == 2
    await slack.drop()
    await connected(slack, count=3)
    envelope = await slack.send_envelope("slash_commands", slack.slash_command("help"))
    await slack.wait_for(lambda: envelope in slack.acks)


async def test_stop_closes_the_connection(
    slack: FakeSocketMode, start: Start, registry: CollectorRegistry
) -> None:
    made = await start()
    await connected(slack)
    await made.stop()
    await slack.wait_for(lambda: slack.open_connections() == [])
    assert sample(registry, "router_slack_socket_connected") == 0
    assert made.connected is False


def test_command_form_is_strings() -> None:
    assert command_form({"text": "x", "is_enterprise_install": False, "n": 3, "none": None}) == {
        "text": "x",
        "is_enterprise_install": "false",
        "n": "3",
    }


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    backoff = Backoff(first=1.0, factor=2.0, cap=60.0, jitter=0.2)
    assert [backoff.delay(n, lambda: 0.5) for n in (1, 2, 3, 7, 8, 20)] == [1, 2, 4, 60, 60, 60]
    assert backoff.delay(1, lambda: 0.0) == pytest.approx(0.8)
    assert backoff.delay(1, lambda: 1.0) == pytest.approx(1.2)
