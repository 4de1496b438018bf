"""Grafana alerting's webhook contact point -> Alert.

Grafana sends Alertmanager's webhook shape as ``"version": "1"``, with fields of its
own (grafana/alerting receivers/webhook/v1/webhook.go ``webhookMessage``,
templates/template_data.go ``ExtendedAlert``; the payload documented in Grafana's
docs, alerting/configure-notifications/manage-contact-points/integrations/
webhook-notifier.md):

* on the message: ``orgId``, ``title``, ``state`` (``alerting`` or ``ok``) and
  ``message`` (the rendered notification text of the same alerts; read but not kept,
  since the alerts themselves are);
* on each alert: ``silenceURL``, ``dashboardURL``, ``panelURL`` and ``imageURL``
  (shown as links on the page), ``values`` (query ref -> number) and the older
  ``valueString`` (kept as the annotations ``values`` and ``valueString``).

The group key is prefixed with the organisation: two Grafana orgs (or a Grafana and
an Alertmanager) may send the same ``groupKey``, e.g. ``{}:{}``, for unrelated alerts.
Auth is Alertmanager's (a bearer token, or basic auth); like Alertmanager, Grafana
retries a 5xx and drops a 4xx.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from router.adapters.alertmanager.webhook import (
    AlertmanagerAlert,
    AlertmanagerMessage,
    link,
    to_alerts,
    validate,
)
from router.adapters.payload import PayloadError, decode_json
from router.core.alerts import Alert, Link, Source

_MESSAGE_FIELDS = ("orgId", "title", "state", "message")
_ALERT_FIELDS = ("silenceURL", "dashboardURL", "panelURL", "imageURL", "values", "valueString")


def _web(href: str) -> bool:
    return href.startswith(("http://", "https://"))


def _number(value: float | None) -> str:
    if value is None:
        return "null"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


class GrafanaAlert(AlertmanagerAlert):
    silenceURL: str = ""
    dashboardURL: str = ""  # "" when the rule is not linked to a dashboard
    panelURL: str = ""
    imageURL: str = ""
    values: dict[str, float | None] | None = None  # a nil Go map arrives as null
    valueString: str = ""

    def leading_links(self) -> list[Link]:
        found = [
            link(href, text)
            for text, href in (
                ("Dashboard", self.dashboardURL),
                ("Panel", self.panelURL),
                ("Silence", self.silenceURL),
            )
            if _web(href)
        ]
        return found

    def trailing_links(self) -> list[Link]:
        return [link(self.imageURL, "Image")] if _web(self.imageURL) else []

    def kept_annotations(self) -> dict[str, str]:
        extra: dict[str, str] = {}
        if self.values:
            extra["values"] = ", ".join(
                f"{ref}={_number(value)}" for ref, value in sorted(self.values.items())
            )
        if self.valueString:
            extra["valueString"] = self.valueString
        # The rule's own annotations win should one have the same name.
        return {**extra, **self.annotations} if extra else self.annotations


class GrafanaMessage(AlertmanagerMessage):
    orgId: int = Field(0, ge=0, le=2**63 - 1, strict=True)  # an int64 in Grafana
    title: str = ""
    state: str = ""
    message: str = ""
    alerts: list[GrafanaAlert]  # type: ignore[assignment]  # Grafana's, with its fields


def looks_like_grafana(document: dict[str, Any]) -> bool:
    """A version "1" body with Grafana's fields: what its contact point sends."""
    if document.get("version") != "1":
        return False
    if any(key in document for key in _MESSAGE_FIELDS):
        return True
    alerts = document.get("alerts")
    return isinstance(alerts, list) and any(
        isinstance(alert, dict) and any(key in alert for key in _ALERT_FIELDS) for alert in alerts
    )


def _alerts(message: GrafanaMessage) -> list[Alert]:
    return to_alerts(message, Source.GRAFANA, group_prefix=f"grafana/{message.orgId}:")


def parse_body(body: bytes) -> list[Alert] | None:
    """The fast path: the raw body validated in one pass; None if it is not valid
    (then ``parse`` of the decoded document says precisely why)."""
    try:
        message = GrafanaMessage.model_validate_json(body)
    except ValidationError:
        return None
    return _alerts(message) if message.version == "1" else None


def parse(document: Any) -> list[Alert]:
    """Validate a Grafana webhook body (already JSON-decoded) into alerts."""
    if not isinstance(document, dict):
        raise PayloadError("the body must be a JSON object", status=400)
    version = document.get("version")
    if version != "1":
        raise PayloadError(
            f"unsupported payload version {str(version)[:20]!r}; Grafana's webhook"
            ' contact point sends version "1"',
            field="version",
        )
    return _alerts(validate(GrafanaMessage, document))


def parse_raw(body: bytes) -> list[Alert]:
    """A stored body (checked when it arrived) as alerts; ``PayloadError`` if not valid."""
    alerts = parse_body(body)
    return alerts if alerts is not None else parse(decode_json(body))
