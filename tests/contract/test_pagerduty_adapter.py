"""PagerDutyAdapter against FakePagerDuty."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from router.adapters.pagerduty.events import PagerDutyAdapter
from router.app.effects import PermanentFailure, RetryLater
from router.core.jobs import JobKind, JobStatus, StoredJob
from tests.fakes.pagerduty_api import FakePagerDuty

ROUTING_KEY = "R0UT1NGK3Y0123456789abcdef012345"
TRIGGER = {
    "event_action": "trigger",
    "dedup_key": "am:5c1e2a1f0d9b7e44",
    "payload": {"summary": "HighLatency on api-1", "source": "api-1", "severity": "critical"},
    "links": [{"href": "https://runbooks/latency", "text": "runbook"}],
}


def job(payload: dict[str, Any]) -> StoredJob:
    return StoredJob(
        id=1,
        kind=JobKind.PAGERDUTY_EVENT,
        key="k",
        payload=payload,
        due_at=datetime.now(UTC),
        attempts=1,
        status=JobStatus.RUNNING,
    )


async def no_results(key: str) -> dict[str, Any] | None:
    return None


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty(routing_key=ROUTING_KEY) as fake:
        yield fake


@pytest.fixture
async def adapter(pd: FakePagerDuty) -> AsyncIterator[PagerDutyAdapter]:
    made = PagerDutyAdapter(pd.events_url, ROUTING_KEY, timeout=5)
    yield made
    await made.close()


async def test_trigger_is_accepted(pd: FakePagerDuty, adapter: PagerDutyAdapter):
    result = await adapter.run(job(TRIGGER), no_results)

    assert result == {"dedup_key": "am:5c1e2a1f0d9b7e44"}
    [event] = pd.events
    assert event["routing_key"] == ROUTING_KEY
    assert event["payload"] == TRIGGER["payload"]
    assert event["links"] == TRIGGER["links"]
    assert pd.calls[0].headers["Content-Type"].startswith("application/json")
    assert pd.alerts == {"am:5c1e2a1f0d9b7e44": "triggered"}


async def test_acknowledge_and_resolve_need_no_payload(
    pd: FakePagerDuty, adapter: PagerDutyAdapter
):
    await adapter.run(job(TRIGGER), no_results)
    for action in ("acknowledge", "resolve"):
        await adapter.run(
            job({"event_action": action, "dedup_key": TRIGGER["dedup_key"]}), no_results
        )
    assert [e["event_action"] for e in pd.events] == ["trigger", "acknowledge", "resolve"]
    assert "payload" not in pd.events[2]
    assert pd.alerts[TRIGGER["dedup_key"]] == "resolved"


async def test_rejected_event_is_permanent(pd: FakePagerDuty):
    adapter = PagerDutyAdapter(pd.events_url, "X" * 32)
    try:
        with pytest.raises(PermanentFailure) as raised:
            await adapter.run(job(TRIGGER), no_results)
    finally:
        await adapter.close()
    assert "HTTP 400" in raised.value.reason
    assert "Invalid routing key" in raised.value.reason
    assert pd.events == []


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"payload": {**TRIGGER["payload"], "severity": "page"}}, "severity 'page'"),
        ({"payload": {**TRIGGER["payload"], "severity": "CRITICAL"}}, "severity"),
        ({"payload": {"source": "api-1", "severity": "info"}}, "payload.summary"),
        ({"event_action": "escalate"}, "event_action"),
        ({"dedup_key": None}, "dedup_key is required"),
        ({"dedup_key": "k" * 256}, "dedup_key is longer"),
    ],
)
async def test_invalid_job_fails_before_any_request(
    pd: FakePagerDuty, adapter: PagerDutyAdapter, change: dict[str, Any], match: str
):
    with pytest.raises(PermanentFailure, match=match):
        await adapter.run(job({**TRIGGER, **change}), no_results)
    assert pd.calls == []


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_throttled_or_server_error_retries_later(
    pd: FakePagerDuty, adapter: PagerDutyAdapter, status: int
):
    pd.fail_next(status=status)
    with pytest.raises(RetryLater, match=f"HTTP {status}"):
        await adapter.run(job(TRIGGER), no_results)
    assert (await adapter.run(job(TRIGGER), no_results))["dedup_key"] == TRIGGER["dedup_key"]


async def test_connection_refused_retries_later():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = PagerDutyAdapter(f"http://127.0.0.1:{port}/v2/enqueue", ROUTING_KEY)
    try:
        with pytest.raises(RetryLater, match="ClientConnector"):
            await adapter.run(job(TRIGGER), no_results)
    finally:
        await adapter.close()


async def test_routing_key_is_never_logged(pd: FakePagerDuty, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    reasons: list[str] = []
    for key in (ROUTING_KEY, "Y" * 32):
        adapter = PagerDutyAdapter(pd.events_url, key)
        try:
            await adapter.run(job(TRIGGER), no_results)
            pd.fail_next(status=429)
            with pytest.raises(RetryLater) as retry:
                await adapter.run(job(TRIGGER), no_results)
            reasons.append(retry.value.reason)
        except PermanentFailure as exc:
            reasons.append(exc.reason)
        finally:
            reasons.append(repr(adapter))
            await adapter.close()

    assert pd.events  # the right key got through, the wrong one was refused
    assert any("Invalid routing key" in r for r in reasons)
    assert caplog.records  # the adapter does log: ids and statuses
    for secret in (ROUTING_KEY, "Y" * 32):
        assert secret not in caplog.text
        assert not any(secret in r for r in reasons)


async def test_fake_rejects_a_non_json_body(pd: FakePagerDuty, adapter: PagerDutyAdapter):
    session = adapter._ensure_session()
    async with session.post(pd.events_url, data=b"routing_key=x") as response:
        assert response.status == 400
        assert (await response.json())["status"] == "invalid event"
