"""Alertmanager and PagerDuty webhooks: verify, check, commit, answer.

Both senders time out quickly (Alertmanager's deadline is max(group_interval, 10 s);
PagerDuty wants 2xx within 5 s), so handlers never call Slack or GitHub. The
Alertmanager handler checks the whole body (a bad one is refused now, naming the
field) and commits it to the inbox as received; the inbox processor applies it
(``router.inbox``). PagerDuty events, few and each with a delivery id, are applied in
the request's own transaction. 4xx means "do not retry" to both senders, so it is
used only for requests that can never succeed; a store failure, or too many big
bodies at once, is 503, which both retry.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from aiohttp import web

from router.sources import PayloadError, alertmanager, pagerduty
from router.store import StoreError
from router.web.budget import BudgetSpent
from router.web.context import SERVICES, Services
from router.web.errors import (
    Problem,
    check_json_request,
    json_ok,
    parse_json,
    read_body,
)

log = logging.getLogger(__name__)


def _check_alertmanager_auth(request: web.Request, services: Services) -> None:
    settings = services.config.alertmanager
    if settings.auth == "none":
        return
    token = services.secrets.ALERTMANAGER_TOKEN
    header = request.headers.get("Authorization", "")
    challenge = {"WWW-Authenticate": "Bearer" if settings.auth == "bearer" else "Basic"}
    if not header:
        raise Problem(401, "unauthorized", "missing Authorization header", headers=challenge)
    if not token:
        raise Problem(
            401, "unauthorized", "ALERTMANAGER_TOKEN is not configured", headers=challenge
        )
    scheme, _, credentials = header.partition(" ")
    if settings.auth == "bearer":
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        )
    else:
        ok = False
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(credentials).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            # compare both, always, so timing does not reveal which one was wrong
            user_ok = hmac.compare_digest(user.encode(), settings.basic_username.encode())
            password_ok = hmac.compare_digest(password.encode(), token.encode())
            ok = user_ok and password_ok
    if not ok:
        raise Problem(401, "unauthorized", "wrong credentials", headers=challenge)


async def alertmanager_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    _check_alertmanager_auth(request, services)
    limit = services.config.server.max_body_bytes
    check_json_request(request, limit)
    budget = services.body_budget
    try:
        held = await budget.take(request.content_length or limit)
    except BudgetSpent as exc:
        raise Problem(
            503, "too_busy", "too many large bodies in flight; retry",
            headers={"Retry-After": "1"},
        ) from exc  # fmt: skip
    try:
        body = await read_body(request, limit)
        try:
            checked = alertmanager.check_body(body)
            if checked is None:  # not valid: decode it again, for a precise error
                alertmanager.parse(parse_json(body))
                raise PayloadError("not an Alertmanager version 4 payload")
        except PayloadError as exc:
            raise Problem(exc.status, "invalid_payload", exc.message, field=exc.field) from exc
        try:
            await services.intake.enqueue("alertmanager", body, checked.statuses)
        except StoreError as exc:
            log.error("store failed, answering 503 so Alertmanager retries: %s", exc)
            raise Problem(503, "store_unavailable", "could not store the alerts; retry") from exc
    finally:
        budget.give_back(held)
    # Durable now, and applied exactly once by the inbox processor (router.inbox).
    return json_ok({"status": "accepted", "alerts": len(checked.statuses)})


async def pagerduty_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    secret = services.secrets.PAGERDUTY_WEBHOOK_SECRET
    if not secret:
        raise Problem(404, "not_configured", "PAGERDUTY_WEBHOOK_SECRET is not set")
    if request.content_type != "application/json":
        raise Problem(415, "unsupported_media_type", "Content-Type must be application/json")
    body = await read_body(request, services.config.server.max_body_bytes)
    # Several secrets may be listed comma-separated while one is being rotated.
    secrets = [s.strip().encode() for s in secret.split(",") if s.strip()]
    try:
        pagerduty.verify_signature(secrets, body, request.headers.get("X-PagerDuty-Signature"))
    except pagerduty.SignatureMissing as exc:
        raise Problem(400, "signature_missing", str(exc)) from exc
    except pagerduty.SignatureInvalid as exc:
        raise Problem(403, "signature_invalid", str(exc)) from exc
    try:
        event = pagerduty.parse(parse_json(body))
    except PayloadError as exc:
        raise Problem(exc.status, "invalid_payload", exc.message, field=exc.field) from exc
    # X-Webhook-Id is the same on every retry; the event id is the fallback.
    delivery_id = request.headers.get("X-Webhook-Id") or event.event_id
    try:
        result = await services.intake.accept("pagerduty", event.alerts, delivery_id=delivery_id)
    except StoreError as exc:
        log.error("store failed, answering 503 so PagerDuty retries: %s", exc)
        raise Problem(503, "store_unavailable", "could not store the event; retry") from exc
    body_out = result.as_json() | {"event_type": event.event_type}
    return json_ok(body_out, status=202)
