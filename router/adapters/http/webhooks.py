"""Alertmanager, Grafana and PagerDuty webhooks: verify, check, commit, answer.

The senders time out quickly (Alertmanager's deadline is max(group_interval, 10 s);
PagerDuty wants 2xx within 5 s), so handlers never call Slack or GitHub. The
Alertmanager and Grafana handlers check the whole body (a bad one is refused now,
naming the field) and commit it to the inbox as received; the inbox processor applies
it (``router.app.inbox``). PagerDuty events, few and each with a delivery id, are applied
in the request's own transaction. 4xx means "do not retry" to all of them, so it is
used only for requests that can never succeed; a store failure, or too many big
bodies at once, is 503, which they all retry.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import logging

from aiohttp import web

from router.adapters.alertmanager import webhook as alertmanager
from router.adapters.grafana import webhook as grafana
from router.adapters.http.budget import BudgetSpent
from router.adapters.http.context import SERVICES, Services
from router.adapters.http.errors import (
    Problem,
    check_json_request,
    json_ok,
    parse_json,
    read_body,
)
from router.adapters.pagerduty import webhook as pagerduty
from router.adapters.payload import PayloadError
from router.adapters.store import StoreError
from router.core.alerts import Alert

log = logging.getLogger(__name__)


def _check_alertmanager_auth(request: web.Request, services: Services) -> None:
    """Alertmanager's and Grafana's auth: a bearer token, or basic auth with the token
    as the password (``alertmanager.auth``)."""
    settings = services.config.alertmanager
    if settings.auth == "none":
        return
    token = services.secrets.ALERTMANAGER_TOKEN
    header = request.headers.get("Authorization", "")
    if token and settings.auth == "bearer":
        # What Alertmanager sends, compared whole (in constant time) before parsing.
        raw = header.encode("utf-8", "surrogateescape")
        if hmac.compare_digest(raw, _bearer(token)):
            return
    challenge = {"WWW-Authenticate": "Bearer" if settings.auth == "bearer" else "Basic"}
    if not header:
        raise Problem(401, "unauthorized", "missing Authorization header", headers=challenge)
    if not token:
        raise Problem(
            401, "unauthorized", "ALERTMANAGER_TOKEN is not configured", headers=challenge
        )
    # aiohttp keeps bytes that are not UTF-8 as lone surrogates: compare bytes, as sent.
    scheme, _, credentials = header.encode("utf-8", "surrogateescape").partition(b" ")
    if settings.auth == "bearer":
        ok = scheme.lower() == b"bearer" and hmac.compare_digest(
            credentials.strip(), token.encode()
        )
    else:
        ok = False
        if scheme.lower() == b"basic":
            try:
                decoded = base64.b64decode(credentials, validate=True)
                user, _, password = decoded.decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            # compare both, always, so timing does not reveal which one was wrong
            user_ok = hmac.compare_digest(user.encode(), settings.basic_username.encode())
            password_ok = hmac.compare_digest(password.encode(), token.encode())
            ok = user_ok and password_ok
    if not ok:
        raise Problem(401, "unauthorized", "wrong credentials", headers=challenge)


@functools.lru_cache(maxsize=4)
def _bearer(token: str) -> bytes:
    return b"Bearer " + token.encode()


async def alertmanager_webhook(request: web.Request) -> web.Response:
    """Alertmanager's webhook; Grafana's contact point may point here too (version "1")."""
    return await _alerting_webhook(request, "alertmanager")


async def grafana_webhook(request: web.Request) -> web.Response:
    return await _alerting_webhook(request, "grafana")


async def _alerting_webhook(request: web.Request, path: str) -> web.Response:
    services = request.app[SERVICES]
    _check_alertmanager_auth(request, services)
    limit = services.config.server.max_body_bytes
    length = check_json_request(request, limit)
    budget = services.body_budget
    wanted = length or limit
    held = budget.take_now(wanted)
    if held is None:
        try:
            held = await budget.take(wanted)
        except BudgetSpent as exc:
            raise Problem(
                503, "too_busy", "too many large bodies in flight; retry",
                headers={"Retry-After": "1"},
            ) from exc  # fmt: skip
    try:
        body = await read_body(request, limit, checked=True)
        try:
            checked = _check_alerting(body, path)
        except PayloadError as exc:
            raise Problem(exc.status, "invalid_payload", exc.message, field=exc.field) from exc
        try:
            await services.intake.enqueue(path, body, checked.statuses, checked.source)
        except StoreError as exc:
            log.error("store failed, answering 503 so %s retries: %s", path, exc)
            raise Problem(503, "store_unavailable", "could not store the alerts; retry") from exc
    finally:
        budget.give_back(held)
    # Durable now, and applied exactly once by the inbox processor (router.app.inbox).
    return json_ok({"status": "accepted", "alerts": len(checked.statuses)})


def _check_alerting(body: bytes, path: str) -> alertmanager.Checked:
    """The body checked in full, before it is answered. The fast path first (one pass
    over the bytes, no alerts built); when it fails, the body is decoded and parsed,
    which reads Grafana's version "1" too or names the problem precisely."""
    if path == "alertmanager":
        checked = alertmanager.check_body(body)
        if checked is not None:
            return checked
    alerts = _parse_alerting(body, path)
    source = alerts[0].source.value if alerts else path
    return alertmanager.Checked(source, tuple(a.status.value for a in alerts))


def _parse_alerting(body: bytes, path: str) -> list[Alert]:
    # The fast path first (one pass over the bytes); when it fails, decode the body
    # again for an error that names the problem precisely.
    if path == "grafana":
        alerts = grafana.parse_body(body)
        return alerts if alerts is not None else grafana.parse(parse_json(body))
    alerts = alertmanager.parse_body(body)
    return alerts if alerts is not None else alertmanager.parse(parse_json(body))


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
        webhook_id = pagerduty.webhook_id(request.headers.get("X-Webhook-Id"))
    except PayloadError as exc:
        raise Problem(exc.status, "invalid_payload", exc.message, field=exc.field) from exc
    # X-Webhook-Id is the same on every retry of one delivery; the event id is the same
    # in every subscription's delivery of the event. A repeat of either is a duplicate.
    deliveries = [f"event:{event.event_id}"]
    if webhook_id:
        deliveries.insert(0, webhook_id)
    try:
        result = await services.intake.accept("pagerduty", event.alerts, deliveries)
    except StoreError as exc:
        log.error("store failed, answering 503 so PagerDuty retries: %s", exc)
        raise Problem(503, "store_unavailable", "could not store the event; retry") from exc
    body_out = result.as_json() | {"event_type": event.event_type}
    return json_ok(body_out, status=202)
