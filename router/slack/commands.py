"""``POST /slack/commands``: the ``/incident`` slash command.

Signed like interactions. The answer to the person who typed it is the HTTP body
(ephemeral: only they see it), within Slack's 3 seconds; everything others should see
(thread posts, the tracking issue) goes through the outbox.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from router import units
from router.commands import UsageError, parse
from router.slack.interactions import read_signed_form
from router.store import StoreError
from router.web.context import SERVICES
from router.web.errors import Problem

log = logging.getLogger(__name__)


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks:
        body["blocks"] = blocks
    return web.json_response(body)


async def slack_commands(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    form = await read_signed_form(request, services)
    user = form.get("user_id")
    if not user:
        raise Problem(400, "invalid_payload", "missing user_id", field="user_id")
    if services.policy is None:
        return ephemeral("The router has no on-call schedule configured (oncall:).")
    try:
        command = parse(form.get("text", ""))
    except UsageError as exc:
        return ephemeral(str(exc))
    policy = services.policy
    now: datetime = services.clock.now()

    def unit(tx: Any) -> units.CommandResult:
        return units.incident_command(tx, command, user, now, policy)

    try:
        result = await services.store.run(unit)
    except StoreError as exc:
        log.error("store failed on /incident: %s", exc)
        return ephemeral("The router could not record that (its store is unavailable). Retry.")
    if result.outcome.refusal:
        log.info("refused /incident %s by %s", command.name, user)
    if "unauthorized" in result.outcome.events:
        services.metrics.refusals.inc()
    services.observe(result.outcome)
    services.kick()
    return ephemeral(result.reply, result.blocks)
