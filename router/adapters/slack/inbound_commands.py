"""``POST /slack/commands``: the ``/incident`` slash command.

Signed like interactions. The answer to the person who typed it is the HTTP body
(ephemeral: only they see it), within Slack's 3 seconds; everything others should see
(thread posts, the tracking issue) goes through the outbox.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from router.adapters.http.context import SERVICES, Services
from router.adapters.http.errors import Problem, read_body
from router.adapters.payload import PayloadError
from router.adapters.slack import forms
from router.adapters.slack import inbound_payload as slack_payload
from router.adapters.slack.inbound_interactions import read_signed_form
from router.adapters.store import StoreError
from router.app import incidents
from router.app.ports import Tx
from router.core.commands import UsageError, parse

log = logging.getLogger(__name__)


def _is_ssl_check(request: web.Request, body: bytes) -> bool:
    """Slack's check of the slash command URL's certificate: ``ssl_check=1&token=...``,
    unsigned, answered 200 with nothing (bolt-python's SslCheck middleware does the
    same, before verifying anything)."""
    if request.content_type != "application/x-www-form-urlencoded" or b"ssl_check" not in body:
        return False
    return parse_qs(body.decode(errors="replace")).get("ssl_check") == ["1"]


async def slack_commands(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await read_body(request, services.config.server.max_body_bytes)
    if _is_ssl_check(request, body):
        return web.Response(status=200, content_type="text/plain")  # empty: not a command
    form = await read_signed_form(request, services)
    try:
        slash = slack_payload.slash_command(form)
    except PayloadError as exc:
        raise Problem(exc.status, "invalid_payload", exc.message, field=exc.field) from exc
    return web.json_response(await handle_command(services, slash, form))


def ephemeral_body(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks:
        body["blocks"] = blocks
    return body


async def handle_command(
    services: Services, slash: slack_payload.SlashCommand, form: dict[str, str]
) -> dict[str, Any]:
    """A verified ``/incident`` (over HTTP or Socket Mode): the ephemeral answer."""
    user = slash.user_id
    if services.policy is None:
        return ephemeral_body("The router has no on-call schedule configured (oncall:).")
    try:
        command = parse(slash.text)
    except UsageError as exc:
        return ephemeral_body(str(exc))
    channel = form.get("channel_id") or None
    if command.name == "declare" and not command.text:
        # The declare form; it must open within the trigger's 3 seconds.
        opened = await forms.open_declare(services, form.get("trigger_id", ""), user, channel)
        if opened.opened:
            return ephemeral_body("Fill in the form to declare.")
        return ephemeral_body(opened.reply or "Type `/incident declare <title>`.")
    policy = services.policy
    now: datetime = services.clock.now()

    def unit(tx: Tx) -> incidents.CommandResult:
        return incidents.incident_command(tx, command, user, now, policy, channel)

    try:
        result = await services.store.run(unit)
    except StoreError as exc:
        log.error("store failed on /incident: %s", exc)
        return ephemeral_body("The router could not record that (its store is unavailable). Retry.")
    if result.outcome.refusal:
        log.info("refused /incident %s by %s", command.name, user)
    if result.outcome.unauthorized:
        services.metrics.refusals.inc()
    services.observe(result.outcome)
    services.kick()
    return ephemeral_body(result.reply, result.blocks)
