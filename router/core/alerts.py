"""The one alert model every source is normalised into.

Alertmanager and PagerDuty describe trouble differently; the lifecycle only ever sees
``Alert``. Parsing lives in ``router.adapters.payload``; this module imports nothing from it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Source(StrEnum):
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"  # Grafana alerting's webhook contact point
    PAGERDUTY = "pagerduty"
    SLACK = "slack"  # declared by a person with /incident declare


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class AlertChange(StrEnum):
    NEW = "new"  # first time this alert is seen
    RESOLVED = "resolved"  # was firing, now resolved
    REFIRED = "refired"  # was resolved, fires again with the same startsAt
    REPEAT = "repeat"  # nothing changed (Alertmanager resends the whole group)


class Link(BaseModel):
    model_config = ConfigDict(frozen=True)
    href: str
    text: str


class Truncation(BaseModel):
    """Alerts of the group that the sender cut from its message (Alertmanager's and
    Grafana's ``max_alerts``: ``truncatedAlerts``), which the router never sees.

    ``labels`` are what every one of them certainly carries: the group's labels
    (``groupLabels``). Not ``commonLabels``: both senders cut the list first and
    compute ``commonLabels`` over the alerts they kept (Alertmanager
    notify/webhook/webhook.go, Grafana receivers/webhook/v1/webhook.go), while every
    alert of a group has the group's labels, sent or not."""

    model_config = ConfigDict(frozen=True)
    count: int
    labels: dict[str, str] = Field(default_factory=dict)
    sender: str = "Alertmanager"  # who cut them, as people know it


class Alert(BaseModel):
    """One alert from one source, as the lifecycle sees it.

    ``group_key`` decides which page the alert belongs to (Alertmanager's groupKey,
    PagerDuty's incident id); ``fingerprint`` identifies the alert inside its group.
    ``ends_at`` is None while the alert fires (Alertmanager's year-1 zero time).
    """

    model_config = ConfigDict(frozen=True)

    source: Source
    group_key: str
    fingerprint: str
    status: AlertStatus
    starts_at: datetime
    ends_at: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    links: tuple[Link, ...] = ()
    # False for alerts the policy sends elsewhere (a vulnerability not being actively
    # exploited follows the normal remediation process: recorded, never paged).
    pageable: bool = True
    # What the message that carried this alert said about the alerts it left out;
    # the same object on every alert of that message. Not stored with the alert: the
    # page keeps the latest (each message carries the whole group, so the latest
    # count is the current one).
    truncation: Truncation | None = None

    @property
    def name(self) -> str:
        return self.labels.get("alertname") or self.annotations.get("title") or "alert"

    @property
    def summary(self) -> str:
        return (
            self.annotations.get("summary")
            or self.annotations.get("title")
            or self.annotations.get("description")
            or self.name
        )


_ZERO_TIME_PREFIX = "0001-01-01"
_FRACTION = re.compile(r"\.(\d+)")


@functools.lru_cache(maxsize=4096)
def parse_time(value: str) -> datetime | None:
    """Parse an RFC 3339 timestamp; Go's zero time (year 1) means "no time" (None).

    Alertmanager sends up to nine fractional digits; Python keeps six, so the rest
    are cut rather than rejected. Cached: the alerts of a group mostly share their
    times, and a datetime never changes.
    """
    if not value or value.startswith(_ZERO_TIME_PREFIX):
        return None
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], value, count=1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        # Stored and compared in UTC; 9999-12-31T23:00:00-05:00 has no UTC year.
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{value[:40]!r} is out of range in UTC") from exc


def short_hash(text: str) -> str:
    """A stable short id for opaque keys (group keys are long and may hold label values)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Keys (group keys, fingerprints, delivery ids) sit in unique indexes, and a
# PostgreSQL B-tree entry holds at most 2,704 bytes: a longer key could never be
# stored (its sender would retry forever). Longer ones keep a readable prefix and the
# hash of the whole, which still tells every two keys apart.
KEY_MAX_BYTES = 1024
_KEY_PREFIX_CHARS = 192


def bounded_key(text: str) -> str:
    """``text`` if it fits an index entry, else a prefix and the SHA-256 of all of it."""
    if len(text) * 4 <= KEY_MAX_BYTES:  # fits whatever its characters (UTF-8: 4 bytes at most)
        return text
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= KEY_MAX_BYTES:
        return text
    return f"{text[:_KEY_PREFIX_CHARS]}…sha256:{hashlib.sha256(encoded).hexdigest()}"


def reported(
    title: str,
    actor: str,
    now: datetime,
    *,
    description: str | None = None,
    confidential: bool = False,
) -> Alert:
    """A suspected incident a person reported (``/incident declare`` -> "page
    eng-primary"), as the alert it enters the intake as: triaged, recorded and paged
    like the monitoring's. What the declare form said travels on the alert: the
    description as an annotation, confidential as a label (the incident declared from
    its page is confidential)."""
    key = short_hash(f"{title}|{actor}|{now.isoformat()}")
    labels = {"alertname": title, "reporter": actor}
    if confidential:
        labels["confidential"] = "true"
    annotations = {"summary": f"Reported in Slack: {title}"}
    if description:
        annotations["description"] = description
    return Alert(
        source=Source.SLACK,
        group_key=f"slack:{key}",
        fingerprint=key,
        status=AlertStatus.FIRING,
        starts_at=now,
        labels=labels,
        annotations=annotations,
    )
