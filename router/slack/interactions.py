"""``POST /slack/interactions``: button presses on pages.

Slack wants HTTP 200 within 3 seconds, so this handler only verifies, decides (a pure
lifecycle step inside one transaction) and commits the jobs; Slack is told about the
result by the outbox (message edits, the announcement, an ephemeral refusal).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from router import messages, paging
from router.page import Decision
from router.paging import DecisionResult
from router.slack import signing
from router.store import StoreError
from router.web.context import SERVICES, Services
from router.web.errors import Problem, read_body

log = logging.getLogger(__name__)

_DECISIONS = {
    messages.DECLARE: Decision.DECLARE,
    messages.DISMISS: Decision.DISMISS,
    messages.DISMISS_REASON: Decision.DISMISS,
    messages.ESCALATE: Decision.ESCALATE,
}


@dataclass(frozen=True)
class PageAction:
    decision: Decision
    page_key: str
    reason: str | None
    delivery_id: str


def verify(request: web.Request, services: Services, body: bytes) -> None:
    if services.slack_verifier is None:
        raise Problem(404, "not_configured", "SLACK_SIGNING_SECRET is not set")
    if not signing.is_valid(services.slack_verifier, body, request.headers):
        raise Problem(401, "signature_invalid",
                      "missing, stale (over 5 minutes) or wrong X-Slack-Signature")  # fmt: skip


async def read_signed_form(request: web.Request, services: Services) -> dict[str, str]:
    """Verify over the raw bytes first; only then decode the form."""
    body = await read_body(request, services.config.server.max_body_bytes)
    verify(request, services, body)
    if request.content_type != "application/x-www-form-urlencoded":
        raise Problem(415, "unsupported_media_type",
                      "Content-Type must be application/x-www-form-urlencoded")  # fmt: skip
    try:
        form = parse_qs(body.decode(), strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise Problem(400, "malformed_form", "body is not UTF-8 form data") from exc
    return {key: values[0] for key, values in form.items()}


def parse_actions(payload: dict[str, Any]) -> list[PageAction]:
    container = payload.get("container") or {}
    message_ts = str(container.get("message_ts") or (payload.get("message") or {}).get("ts", ""))
    user = payload["user"]["id"]
    found = []
    for action in payload.get("actions") or []:
        action_id = action.get("action_id")
        decision = _DECISIONS.get(action_id)
        if decision is None:
            continue  # not ours (a link button, a future control): ignore, do not fail
        reason = None
        if action_id == messages.DISMISS_REASON:
            value = str((action.get("selected_option") or {}).get("value", ""))
            page_key, _, index = value.partition("|")
            if index.isdigit() and int(index) < len(messages.DISMISS_REASONS):
                reason = messages.DISMISS_REASONS[int(index)]
        else:
            page_key = str(action.get("value", ""))
        # Slack retries and double clicks repeat action_ts; a new click has a new one.
        delivery = f"{action_id}:{message_ts}:{action.get('action_ts', '')}:{user}"
        found.append(PageAction(decision, page_key, reason, delivery))
    return found


async def slack_interactions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    form = await read_signed_form(request, services)
    try:
        payload = json.loads(form["payload"])
        user = payload["user"]["id"]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise Problem(400, "invalid_payload", "expected a form field payload with JSON",
                      field="payload") from exc  # fmt: skip
    if payload.get("type") != "block_actions" or services.policy is None:
        return web.Response(status=200)
    response_url = payload.get("response_url")
    policy = services.policy
    refusals = []
    for action in parse_actions(payload):
        now = services.clock.now()

        def unit(tx: Any, action: PageAction = action, now: datetime = now) -> DecisionResult:
            result = paging.decide(tx, action.page_key, action.decision, user, now, policy,
                                   action.reason, action.delivery_id)  # fmt: skip
            refusal = result.outcome.refusal
            if refusal and response_url:
                tx.enqueue([paging.respond_job(f"refusal:{action.delivery_id}", response_url,
                                               refusal)], now)  # fmt: skip
            return result

        try:
            result = await services.store.run(unit)
        except StoreError as exc:
            log.error("store failed on a Slack action; Slack will show an error: %s", exc)
            raise Problem(503, "store_unavailable", "could not record the action; retry") from exc
        if result.outcome.refusal:
            refusals.append(result.outcome.refusal)
            services.metrics.refusals.inc()
            log.info("refused %s on page %s by %s", action.decision.value, action.page_key, user)
        services.observe(result.outcome, result.decision_seconds)
    services.kick()
    # Slack ignores this body (the refusal reaches the person through response_url);
    # `router press` and other callers without a response_url read it here.
    return web.json_response({"ok": not refusals, "refused": refusals})
