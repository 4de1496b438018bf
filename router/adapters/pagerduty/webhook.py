"""PagerDuty V3 webhooks -> Alert.

One event per request; the signature is HMAC-SHA256 of the raw body, several ``v1=``
entries during secret rotation, no timestamp (protocols.md section 2). Unknown event
types (including test pings) are accepted and ignored, never rejected: PagerDuty
disables a subscription after three 4xx in a row.

An incident is one alert for its whole life, whatever its events carry: keyed by the
incident id alone, so its resolution resolves what its trigger fired, and a reopen
is the same alert firing again.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from router.adapters.payload import Key, PayloadError, pydantic_field
from router.core.alerts import Alert, AlertStatus, Link, Source, parse_time
from router.core.page import ROUTER_DEDUP_PREFIX

# The alert key is (source, group, fingerprint, starts_at). An incident's events
# carry different times (``created_at`` is not always there, ``occurred_at`` is the
# event's), so a key made of either split one incident into several alerts, and the
# page of the first never resolved. The start in the key is this fixed time instead.
INCIDENT_START = datetime(1970, 1, 1, tzinfo=UTC)


class SignatureMissing(Exception):
    """No usable X-PagerDuty-Signature header (answer 400)."""


class SignatureInvalid(Exception):
    """No v1 signature matches the body (answer 403)."""


def verify_signature(secrets: list[bytes], body: bytes, header: str | None) -> None:
    """Raise unless one ``v1=`` entry matches one of the secrets (rotation-safe)."""
    if not header:
        raise SignatureMissing("missing X-PagerDuty-Signature header")
    # Bytes, as sent: compare_digest refuses str with anything but ASCII in it.
    raw = header.encode("utf-8", "surrogateescape")
    offered = [part.strip()[3:] for part in raw.split(b",") if part.strip().startswith(b"v1=")]
    if not offered:
        raise SignatureMissing("X-PagerDuty-Signature has no v1= entry")
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        # Check every entry in constant time; no early exit on a near match.
        if any(hmac.compare_digest(expected, sig.lower()) for sig in offered):
            return
    raise SignatureInvalid("X-PagerDuty-Signature does not match the body")


def sign(secret: bytes, body: bytes) -> str:
    """The header value PagerDuty would send; used by tests and the benchmark."""
    return "v1=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


_KEY: TypeAdapter[str] = TypeAdapter(Key)


def webhook_id(header: str | None) -> str | None:
    """``X-Webhook-Id``, checked like any key the store keeps."""
    if not header:
        return None
    try:
        return _KEY.validate_python(header.encode("utf-8", "surrogateescape").decode("utf-8"))
    except (UnicodeDecodeError, ValidationError) as exc:
        raise PayloadError(
            "X-Webhook-Id must be UTF-8 text without NUL", field="X-Webhook-Id", status=400
        ) from exc


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = ""
    summary: str = ""


class _Incident(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: Key
    type: str
    html_url: str = ""
    number: int | None = None
    status: str = ""
    title: str = ""
    urgency: str = ""
    created_at: str = ""
    incident_key: str | None = None
    service: _Ref | None = None
    priority: _Ref | None = None


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: Key
    event_type: str
    resource_type: str = ""
    occurred_at: str
    data: dict[str, Any]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event: _Event


@dataclass(frozen=True)
class PagerDutyEvent:
    event_id: str
    event_type: str
    alerts: list[Alert]


# Event types that change whether the incident is firing; the rest (annotated,
# priority_updated, reassigned...) are recorded but change nothing.
_FIRING = {"incident.triggered", "incident.reopened", "incident.unacknowledged"}
_RESOLVED = {"incident.resolved"}


def parse(document: Any) -> PagerDutyEvent:
    if not isinstance(document, dict):
        raise PayloadError("the body must be a JSON object", status=400)
    try:
        envelope = _Envelope.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PayloadError(first["msg"], field=pydantic_field(first["loc"])) from exc
    event = envelope.event
    if event.event_type not in _FIRING | _RESOLVED or event.data.get("type") != "incident":
        return PagerDutyEvent(event.id, event.event_type, [])
    try:
        incident = _Incident.model_validate(event.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PayloadError(
            first["msg"], field="event.data." + pydantic_field(first["loc"])
        ) from exc
    try:
        occurred = parse_time(event.occurred_at)
    except ValueError as exc:
        raise PayloadError("not an RFC 3339 timestamp", field="event.occurred_at") from exc
    if occurred is None:
        raise PayloadError("occurred_at must be a real time", field="event.occurred_at")
    if (incident.incident_key or "").startswith(ROUTER_DEDUP_PREFIX):
        # We triggered this PagerDuty incident ourselves (phone/SMS for a page): taking
        # it back in as a new alert would page the same people twice, in a loop.
        return PagerDutyEvent(event.id, event.event_type, [])
    resolved = event.event_type in _RESOLVED
    labels = {"alertname": incident.title or f"PagerDuty incident {incident.number}"}
    if incident.service and incident.service.summary:
        labels["service"] = incident.service.summary
    if incident.urgency:
        labels["urgency"] = incident.urgency
    if incident.priority and incident.priority.summary:
        labels["priority"] = incident.priority.summary
    alert = Alert(
        source=Source.PAGERDUTY,
        group_key=f"pagerduty:{incident.id}",
        fingerprint=incident.id,
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        starts_at=INCIDENT_START,
        ends_at=occurred if resolved else None,
        labels=labels,
        annotations={"summary": incident.title} if incident.title else {},
        links=(Link(href=incident.html_url, text="PagerDuty"),) if incident.html_url else (),
    )
    return PagerDutyEvent(event.id, event.event_type, [alert])
