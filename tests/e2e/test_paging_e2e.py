"""Alert -> page DM -> signed button press -> announcement, with the router as a process.

The router runs as deployed (``python -m router serve``) with a real ``SlackAdapter``
pointed at FakeSlack, which runs on this test's event loop: the tests are async and
wait with ``await slack.wait_for(...)`` so the fake can answer meanwhile. Alerts come
from the real Alertmanager (``amtool``), from a signed PagerDuty V3 webhook, or from a
plain Alertmanager-format POST; decisions are Slack ``block_actions`` form posts,
signed as Slack signs them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import pytest

from router.adapters.pagerduty import webhook as pd_source
from tests.e2e.conftest import (
    INCIDENTS,
    PRIMARY,
    SLACK_SIGNING_SECRET,
    RouterProcess,
    StartAlertmanager,
    StartRouter,
    alert_document,
    declare_value,
    page_dms,
    paging_config,
    press_body,
    slack_env,
    slack_signed_headers,
)
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack

pytestmark = pytest.mark.e2e

WAIT = 20.0  # Alertmanager's group_wait, the outbox and Slack round trips add seconds
PD_WEBHOOK_SECRET = "e2e-pd-webhook-secret"
OUTAGE_CLAUSE = "extreme or complete production outage"


# -- helpers ----------------------------------------------------------------------


def all_text(message: dict[str, Any] | None) -> str:
    """The message's text and every text inside its blocks, one per line."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message or {})
    return "\n".join(found)


async def post_interaction(
    router: RouterProcess, body: bytes, secret: str = SLACK_SIGNING_SECRET
) -> tuple[int, str, Any]:
    headers = slack_signed_headers(body, secret)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{router.url}/slack/interactions", data=body, headers=headers) as response,
    ):
        return response.status, response.content_type, await response.json(content_type=None)


async def declare(router: RouterProcess, slack: FakeSlack, page: dict[str, Any]) -> None:
    body = press_body(PRIMARY, "page.declare", declare_value(page), slack, page["ts"])
    status, _, answer = await post_interaction(router, body)
    assert status == 200, answer
    assert answer == {"ok": True, "refused": [], "replies": []}


async def wait_announcement(slack: FakeSlack, router: RouterProcess) -> dict[str, Any]:
    try:
        announced = await slack.wait_for(lambda: slack.messages_in(INCIDENTS), timeout=WAIT)
    except AssertionError:
        print(f"router output:\n{router.output()}")
        raise
    assert len(announced) == 1, announced
    return announced[0]


async def wait_page(slack: FakeSlack, router: RouterProcess, name: str) -> dict[str, Any]:
    try:
        pages = await slack.wait_for(lambda: page_dms(slack, name), timeout=WAIT)
    except AssertionError:
        print(f"router output:\n{router.output()}")
        raise
    assert len(pages) == 1, pages
    return pages[0]


def pd_webhook_body(title: str, incident_id: str, incident_key: str | None = None) -> bytes:
    body = {
        "event": {
            "id": str(uuid.uuid4()),
            "event_type": "incident.triggered",
            "resource_type": "incident",
            "occurred_at": "2026-03-02T10:00:00.000Z",
            "agent": None,
            "client": None,
            "data": {
                "id": incident_id,
                "type": "incident",
                "self": f"https://api.pagerduty.com/incidents/{incident_id}",
                "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
                "number": 7,
                "status": "triggered",
                "incident_key": incident_key or uuid.uuid4().hex,
                "created_at": "2026-03-02T09:59:58Z",
                "title": title,
                "service": {"id": "PSVC001", "type": "service_reference", "summary": "Checkout"},
                "assignees": [],
                "escalation_policy": {"id": "PESC001", "type": "escalation_policy_reference"},
                "teams": [],
                "priority": None,
                "urgency": "high",
                "resolve_reason": None,
            },
        }
    }
    return json.dumps(body).encode()


async def post_pagerduty(
    router: RouterProcess, body: bytes, secret: str = PD_WEBHOOK_SECRET
) -> tuple[int, Any]:
    headers = {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": pd_source.sign(secret.encode(), body),
        "X-Webhook-Id": str(uuid.uuid4()),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{router.url}/webhooks/pagerduty", data=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def post_alertmanager(router: RouterProcess, name: str) -> None:
    document = alert_document(name)
    headers = {"Authorization": f"Bearer {router.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(router.webhook_url, json=document, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()


# -- tests ------------------------------------------------------------------------


async def test_alertmanager_alert_pages_and_a_signed_declare_announces(
    fake_slack: FakeSlack, start_router_async: StartRouter, start_alertmanager: StartAlertmanager
) -> None:
    router = start_router_async(config=paging_config(fake_slack), env=slack_env())
    am = start_alertmanager(router.webhook_url, router.token)
    name = "E2EPagingOutage"
    await asyncio.to_thread(
        am.amtool_run,
        "alert",
        "add",
        f"alertname={name}",
        "severity=critical",
        "instance=api-1",
        "--annotation=summary=checkout returns 500",
    )
    try:
        page = await wait_page(fake_slack, router, name)
    except AssertionError:
        print(f"alertmanager output:\n{am.output()}")
        raise
    assert "critical" in page["text"]
    assert f'policy clause "{OUTAGE_CLAUSE}"' in all_text(page)

    # A press signed with the wrong secret is refused with a JSON 401; nothing happens.
    body = press_body(PRIMARY, "page.declare", declare_value(page), fake_slack, page["ts"])
    status, content_type, answer = await post_interaction(router, body, secret="not-the-secret")
    assert (status, content_type) == (401, "application/json")
    assert answer["error"] == "signature_invalid", answer
    assert router.query("SELECT * FROM incidents") == []

    await declare(router, fake_slack, page)
    announcement = await wait_announcement(fake_slack, router)
    everything = all_text(announcement)
    assert "INC-1" in announcement["text"]
    assert f"<@{PRIMARY}>" in announcement["text"]
    assert "critical" in everything
    assert f'policy clause "{OUTAGE_CLAUSE}"' in everything

    # The page itself is edited to say it was declared.
    await fake_slack.wait_for(
        lambda: "Declared *INC-1*" in all_text(fake_slack.message(page["channel"], page["ts"])),
        timeout=WAIT,
    )
    [incident] = router.query("SELECT number, status FROM incidents")
    assert incident["number"] == 1
    assert len(fake_slack.dms_to(PRIMARY)) == 1  # paged once, then edited in place


async def test_pagerduty_webhook_pages_and_a_signed_declare_announces(
    fake_slack: FakeSlack, start_router_async: StartRouter
) -> None:
    env = slack_env() | {"PAGERDUTY_WEBHOOK_SECRET": PD_WEBHOOK_SECRET}
    router = start_router_async(config=paging_config(fake_slack), env=env)
    title = "E2E checkout errors from PagerDuty"
    body = pd_webhook_body(title, "PE2E001")

    status, answer = await post_pagerduty(router, body, secret="wrong-secret")
    assert status == 403, answer
    status, answer = await post_pagerduty(router, body)
    assert status == 202, answer

    page = await wait_page(fake_slack, router, title)
    [stored] = router.query("SELECT json_extract(state, '$.suggestion') AS s FROM pages")
    suggestion = json.loads(stored["s"])
    severity = suggestion["severity"]
    assert severity in page["text"]

    await declare(router, fake_slack, page)
    announcement = await wait_announcement(fake_slack, router)
    everything = all_text(announcement)
    assert "INC-1" in announcement["text"]
    assert f"<@{PRIMARY}>" in announcement["text"]
    assert title in announcement["text"]
    assert f"*Suggested severity*\n{severity}" in everything
    assert f'policy clause "{suggestion["clause"]}"' in everything
    assert "PagerDuty" in everything  # the incident's link
    await fake_slack.wait_for(
        lambda: "Declared *INC-1*" in all_text(fake_slack.message(page["channel"], page["ts"])),
        timeout=WAIT,
    )


async def test_pagerduty_events_trigger_on_page_and_acknowledge_on_declare(
    fake_slack: FakeSlack, fake_pagerduty: FakePagerDuty, start_router_async: StartRouter
) -> None:
    config = paging_config(fake_slack) | {"pagerduty": {"events_url": fake_pagerduty.events_url}}
    env = slack_env() | {
        "PAGERDUTY_ROUTING_KEY": fake_pagerduty.routing_key,
        "PAGERDUTY_WEBHOOK_SECRET": PD_WEBHOOK_SECRET,
    }
    router = start_router_async(config=config, env=env)
    name = "E2EPhonePage"
    await post_alertmanager(router, name)

    def triggers() -> list[dict[str, Any]]:
        return [e for e in fake_pagerduty.events if e["event_action"] == "trigger"]

    try:
        [trigger] = await fake_slack.wait_for(triggers, timeout=WAIT)
    except AssertionError:
        print(f"router output:\n{router.output()}\npagerduty calls: {fake_pagerduty.calls}")
        raise
    dedup_key = trigger["dedup_key"]
    assert dedup_key.startswith("router:"), trigger
    assert trigger["payload"]["severity"] == "critical"
    assert name in trigger["payload"]["summary"]
    assert fake_pagerduty.alerts[dedup_key] == "triggered"

    # PagerDuty's own webhook for the incident we triggered must not page again.
    echo = pd_webhook_body(f"{name} on api-1", "PE2E002", incident_key=dedup_key)
    status, answer = await post_pagerduty(router, echo)
    assert status == 202, answer

    page = await wait_page(fake_slack, router, name)
    await declare(router, fake_slack, page)
    await wait_announcement(fake_slack, router)

    def acknowledged() -> list[dict[str, Any]]:
        return [e for e in fake_pagerduty.events if e["event_action"] == "acknowledge"]

    [ack] = await fake_slack.wait_for(acknowledged, timeout=WAIT)
    assert ack["dedup_key"] == dedup_key
    assert fake_pagerduty.alerts[dedup_key] == "acknowledged"
    assert [c.status for c in fake_pagerduty.calls] == [202, 202]
    assert len(router.query("SELECT key FROM pages")) == 1
    assert len(fake_slack.dms_to(PRIMARY)) == 1
