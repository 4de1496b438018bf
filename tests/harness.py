"""A router wired to loopback fakes, for flow tests: the real app, the real outbox
worker, the real slack_sdk client against FakeSlack, a frozen clock moved by hand."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient, TestServer

from router.clock import FrozenClock
from router.config import RouterConfig, Secrets, load_config
from router.metrics import Metrics
from router.slack.signing import sign
from router.web.app import WORKER, create_app
from router.web.context import SERVICES
from tests.conftest import AM_TOKEN, T0
from tests.fakes.slack_api import FakeSlack

SLACK_TOKEN = "xoxb-test-token"
SIGNING_SECRET = "test-signing-secret"
PRIMARY, SECONDARY, LEAD, RESPONDER, STRANGER = (
    "U0PRIMARY1", "U0SECOND02", "U0LEADER03", "U0RESPOND4", "U0STRANGE5",
)  # fmt: skip
INCIDENTS, OPS = "C0INCIDENTS", "C0OPERATORS"
USERS = {
    uid: {"name": uid.lower(), "real_name": uid, "email": f"{uid.lower()}@example.com", "tz": "UTC"}
    for uid in (PRIMARY, SECONDARY, LEAD, RESPONDER, STRANGER)
}


def router_config(tmp_path: Path, slack_url: str, **overrides: str) -> RouterConfig:
    document = {
        "store": {"url": f"sqlite:///{tmp_path}/router.db"},
        "slack": {"api_url": slack_url, "incident_channel": INCIDENTS, "operator_channel": OPS},
        "paging": {"ack_timeout_seconds": 300, "storm_limit": 5},
        "oncall": {
            "rotations": {
                role: {"members": [user], "start": "2026-01-05T09:00:00",
                       "handoff_time": "09:00", "timezone": "UTC"}
                for role, user in (("eng-primary", PRIMARY), ("eng-secondary", SECONDARY),
                                   ("leadership", LEAD))
            },
            "responders": [RESPONDER],
        },
    }  # fmt: skip
    path = tmp_path / "router.yaml"
    path.write_text(json.dumps(document))
    return load_config(path, {f"ROUTER__{k}": v for k, v in overrides.items()})


class Harness:
    def __init__(self, client: TestClient[Any, Any], slack: FakeSlack, clock: FrozenClock,
                 metrics: Metrics) -> None:  # fmt: skip
        self.client = client
        self.slack = slack
        self.clock = clock
        self.metrics = metrics

    @property
    def store(self) -> Any:
        return self.client.server.app[SERVICES].store

    async def alertmanager(self, payload: dict[str, Any]) -> Any:
        response = await self.client.post(
            "/webhooks/alertmanager", json=payload, headers={"Authorization": f"Bearer {AM_TOKEN}"}
        )
        assert response.status == 200, await response.text()
        return await response.json()

    async def press(self, action_id: str, value: str, user: str, *,
                    selected: str | None = None, action_ts: str | None = None,
                    message_ts: str = "1700000000.000100") -> Any:  # fmt: skip
        action: dict[str, Any] = {"type": "button", "action_id": action_id, "block_id": "b",
                                  "action_ts": action_ts or f"{time.time():.6f}"}  # fmt: skip
        if selected is not None:
            action = action | {"type": "static_select", "selected_option": {"value": selected}}
        else:
            action["value"] = value
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": "T0FAKETEAM"},
            "team": {"id": "T0FAKETEAM", "domain": "acme"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": "D1"},
            "trigger_id": "1.2.3",
            "response_url": self.slack.response_url_for(f"resp-{user}"),
            "actions": [action],
        }
        body = urlencode({"payload": json.dumps(payload)}).encode()
        headers = sign(SIGNING_SECRET, int(self.clock.now().timestamp()), body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.client.post("/slack/interactions", data=body, headers=headers)

    def kick(self) -> None:
        self.client.server.app[WORKER].kick()

    async def advance(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.kick()

    async def dm_blocks(self, user: str, index: int = 0) -> list[dict[str, Any]]:
        await self.slack.wait_for(lambda: len(self.slack.dms_to(user)) > index)
        return list(self.slack.dms_to(user)[index]["blocks"] or [])

    async def page_key(self, user: str = PRIMARY) -> str:
        for block in await self.dm_blocks(user):
            for element in block.get("elements", []):
                if element.get("action_id") == "page.declare":
                    return str(element["value"])
        raise AssertionError("no Declare button in the page")


@asynccontextmanager
async def running_router(tmp_path: Path, slack: FakeSlack | None = None,
                         **overrides: str) -> AsyncIterator[Harness]:  # fmt: skip
    own = slack is None
    slack = slack or FakeSlack(SLACK_TOKEN, channels=(INCIDENTS, OPS), users=USERS)
    if own:
        await slack.start()
    clock = FrozenClock(T0)
    metrics = Metrics()
    config = router_config(tmp_path, slack.base_url, **overrides)
    secrets = Secrets(ALERTMANAGER_TOKEN=AM_TOKEN, SLACK_BOT_TOKEN=SLACK_TOKEN,
                      SLACK_SIGNING_SECRET=SIGNING_SECRET)  # fmt: skip
    app = create_app(config, secrets, clock=clock, metrics=metrics, poll_seconds=0.05)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Harness(client, slack, clock, metrics)
    finally:
        await client.close()
        if own:
            await slack.stop()
