"""Alertmanager webhook payload (version 4) -> Alert.

Facts this parser relies on (protocols.md section 1): each message carries the whole
group, not a diff; a firing alert's ``endsAt`` is Go's zero time; timestamps carry up
to nine fractional digits; ``groupKey`` is opaque.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, TypeVar

import msgspec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import CoreSchema, core_schema
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from router.adapters.payload import Key, Labels, PayloadError, decode_json, pydantic_field
from router.core.alerts import (
    Alert,
    AlertStatus,
    Link,
    Source,
    Truncation,
    bounded_key,
    parse_time,
    short_hash,
)

M = TypeVar("M", bound=BaseModel)


class AlertmanagerAlert(BaseModel):
    # Unknown keys are ignored: newer Alertmanagers add fields and must keep working.
    model_config = ConfigDict(extra="ignore")

    status: AlertStatus
    labels: dict[str, str]
    annotations: Labels = Field(default_factory=dict)
    startsAt: str
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: Key = ""

    def leading_links(self) -> list[Link]:
        """Links a sender puts ahead of the rule's (Grafana: dashboard, panel, silence)."""
        return []

    def trailing_links(self) -> list[Link]:
        """Links a sender puts after the rule's and the runbook (Grafana: the image)."""
        return []

    def kept_annotations(self) -> dict[str, str]:
        """The annotations to keep; a sender with fields of its own adds them here."""
        return self.annotations


class AlertmanagerMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str
    groupKey: Key = Field(min_length=1)
    truncatedAlerts: int = Field(0, ge=0, le=2**64 - 1, strict=True)  # a uint64 in Alertmanager
    status: AlertStatus
    receiver: str = ""
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertmanagerAlert]


def parse_body(body: bytes) -> list[Alert] | None:
    """The fast path for every delivery: decode and validate the raw body in one pass.

    pydantic's own JSON parser fills the model straight from the bytes, which skips
    ``json.loads`` and its dicts. None when the body is not a valid version 4
    payload: the caller then decodes it and calls ``parse``, whose errors name the
    problem precisely (bad JSON at a line and column, the field at fault)."""
    message = _message(body)
    if message is None:
        return None
    return to_alerts(message, Source.ALERTMANAGER)


def _message(body: bytes) -> AlertmanagerMessage | None:
    """The body validated straight from the bytes; None if it is not valid version 4."""
    try:
        message = AlertmanagerMessage.model_validate_json(body)
    except ValidationError:
        return None
    return message if message.version == "4" else None


# check_body's own schema: what AlertmanagerMessage accepts, checked without building
# the model. It is on the hot path (every delivery, before the router answers), where
# the model's instances, its enum members and its Python validators (Key, Labels)
# took over a quarter of the check's time. Here pydantic-core does it all, in typed
# dicts, with each validator's refusals written as constraints: Key refuses a NUL and
# otherwise only shortens (so: a pattern); Labels reads null as {} (so: or None),
# after decoding (_Decoded). The model stays: the inbox parses stored bodies with it.
# tests/unit/test_alertmanager_check.py holds the two equal on thousands of mutated
# bodies: a field or rule added to the model goes here too.
class _Decoded:
    """The value checked as the Python object its JSON decodes to, as after Labels'
    BeforeValidator: a key repeated in an object then counts once, with its last
    value (read from JSON, a dict schema checks every value of a repeated key)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.chain_schema([core_schema.any_schema(), handler(source)])


# AlertStatus's values: from JSON the enum takes exactly these strings (not "FIRING").
_Status = Literal["firing", "resolved"]
_NoNul = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
_Uint64 = Annotated[int, Field(ge=0, le=2**64 - 1, strict=True)]
_LabelsOrNull = Annotated[dict[str, str] | None, _Decoded()]  # Labels: null is {}


class _AlertShape(TypedDict):
    # Unknown keys are ignored, as by the model: pydantic's default for a TypedDict.
    status: _Status
    labels: dict[str, str]
    annotations: NotRequired[_LabelsOrNull]
    startsAt: str
    endsAt: NotRequired[str]
    generatorURL: NotRequired[str]
    fingerprint: NotRequired[_NoNul]


class _MessageShape(TypedDict):
    version: str
    groupKey: Annotated[_NoNul, StringConstraints(min_length=1)]
    truncatedAlerts: NotRequired[_Uint64]
    status: _Status
    receiver: NotRequired[str]
    groupLabels: NotRequired[_LabelsOrNull]
    commonLabels: NotRequired[_LabelsOrNull]
    commonAnnotations: NotRequired[_LabelsOrNull]
    externalURL: NotRequired[str]
    alerts: list[_AlertShape]


_SHAPE = TypeAdapter(_MessageShape)


@dataclass(frozen=True)
class Checked:
    """A valid delivery, not yet turned into alerts (the inbox stores its bytes)."""

    source: str  # whose alerts these are (Grafana's, sent to the Alertmanager path)
    statuses: tuple[str, ...]  # each alert's status, in order


def check_body(body: bytes) -> Checked | None:
    """What the webhook does before it answers: the whole body validated (so a bad
    one is refused now), without building the alerts, which the inbox processor does
    later. None when the body is not a valid version 4 payload (the caller decodes it
    again and calls ``parse``, for Grafana's version "1" or a precise error, as with
    ``parse_body``); a bad time raises ``PayloadError``."""
    alerts = _fast_shape(body)
    if alerts is None:
        try:
            message = _SHAPE.validate_json(body)
        except ValidationError:
            return None
        if message["version"] != "4":
            return None
        alerts = [(a["status"], a["startsAt"], a.get("endsAt", "")) for a in message["alerts"]]
    statuses = []
    for index, (status, starts_at, ends_at) in enumerate(alerts):
        _starts_at(starts_at, index)
        if status == "resolved":
            _time(ends_at, index, "endsAt")
        statuses.append(status)
    return Checked(_ALERTMANAGER, tuple(statuses))


_ALERTMANAGER = Source.ALERTMANAGER.value  # read once: an enum's value is a property


# check_body's fast path: msgspec's decoder, several times cheaper than even the
# schema above. It is stricter than the model on purpose, and only ever says "valid":
# a body it refuses, or any body holding what it does not judge the way the model
# does (a field Alertmanager does not send, a NUL or surrogate escape, a BOM, a
# negative or too-big truncatedAlerts, another version), goes to the schema, which
# decides. So what it accepts the model accepts (tests/unit/test_alertmanager_check.py),
# and every real Alertmanager delivery takes it.
class _FastAlert(msgspec.Struct, forbid_unknown_fields=True):
    status: _Status
    labels: dict[str, str]
    startsAt: str
    annotations: dict[str, str] | None = None
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class _FastMessage(msgspec.Struct, forbid_unknown_fields=True):
    version: str
    groupKey: str
    status: _Status
    alerts: list[_FastAlert]
    truncatedAlerts: int = 0
    receiver: str = ""
    groupLabels: dict[str, str] | None = None
    commonLabels: dict[str, str] | None = None
    commonAnnotations: dict[str, str] | None = None
    externalURL: str = ""


_FAST = msgspec.json.Decoder(_FastMessage)
# Escapes of a NUL or a UTF-16 surrogate, and a byte order mark: the schema's call.
# (Searched only in a body holding a backslash, which memchr finds at once: looking
# for the two bytes "\u" took longer than the decode itself.)
_FOR_THE_SCHEMA = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_BOM = b"\xef\xbb\xbf"


def _fast_shape(body: bytes) -> list[tuple[str, str, str]] | None:
    """Each alert's (status, startsAt, endsAt) when the body is surely valid; None
    when the schema must decide."""
    if body.startswith(_BOM) or (b"\\" in body and _FOR_THE_SCHEMA.search(body)):
        return None
    try:
        message = _FAST.decode(body)
    except msgspec.MsgspecError:
        return None
    if message.version != "4" or not message.groupKey:
        return None
    if not 0 <= message.truncatedAlerts <= 2**64 - 1:
        return None
    return [(a.status, a.startsAt, a.endsAt) for a in message.alerts]


def parse_raw(body: bytes) -> list[Alert]:
    """A stored body (checked when it arrived) as alerts; ``PayloadError`` if not valid."""
    alerts = parse_body(body)
    return alerts if alerts is not None else parse(decode_json(body))


def parse(document: Any) -> list[Alert]:
    """Validate an Alertmanager webhook body (already JSON-decoded) into alerts.

    Grafana's contact point sends Alertmanager's shape as version "1" with fields of
    its own; pointed at this path, it is read as Grafana (``router.adapters.grafana.webhook``)."""
    if not isinstance(document, dict):
        raise PayloadError("the body must be a JSON object", status=400)
    version = document.get("version")
    if version == "1":
        from router.adapters.grafana import webhook as grafana

        if grafana.looks_like_grafana(document):
            return grafana.parse(document)
    if version != "4":
        raise PayloadError(
            f'unsupported payload version {str(version)[:20]!r}; this router reads version "4"'
            ' (Alertmanager) and "1" (Grafana)',
            field="version",
        )
    return to_alerts(validate(AlertmanagerMessage, document), Source.ALERTMANAGER)


def parse_file(text: str) -> list[Alert]:
    """An Alertmanager or Grafana payload from a file (``router explain``)."""
    return parse(decode_json(text))


def validate(model: type[M], document: dict[str, Any]) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PayloadError(first["msg"], field=pydantic_field(first["loc"])) from exc


def to_alerts(message: AlertmanagerMessage, source: Source, group_prefix: str = "") -> list[Alert]:
    truncation = None
    if message.truncatedAlerts:
        truncation = Truncation(
            count=message.truncatedAlerts,
            labels=message.groupLabels,
            sender="Grafana" if source is Source.GRAFANA else "Alertmanager",
        )
    return [
        _to_alert(message, am, index, source, group_prefix, truncation)
        for index, am in enumerate(message.alerts)
    ]


def _time(value: str, index: int, name: str) -> datetime | None:
    """``value`` as a time; a ``PayloadError`` naming ``alerts.<index>.<name>`` if it is
    not one (the path is built only then: this runs for each alert of each delivery)."""
    try:
        return parse_time(value)
    except ValueError as exc:
        raise PayloadError(
            f"not an RFC 3339 timestamp: {value[:40]!r}", field=f"alerts.{index}.{name}"
        ) from exc


def _starts_at(value: str, index: int) -> datetime:
    """An alert's start: a real time (Go's zero time is refused here, not "no time")."""
    starts_at = _time(value, index, "startsAt")
    if starts_at is None:
        raise PayloadError("startsAt must be a real time", field=f"alerts.{index}.startsAt")
    return starts_at


@functools.lru_cache(maxsize=4096)
def link(href: str, text: str) -> Link:
    # Shared: a group's alerts mostly link the same rule and runbook; Link is frozen.
    return Link.model_construct(href=href, text=text)


def _to_alert(
    message: AlertmanagerMessage,
    am: AlertmanagerAlert,
    index: int,
    source: Source,
    group_prefix: str,
    truncation: Truncation | None,
) -> Alert:
    # model_construct: every value below is already validated (by the message model,
    # or built here), and validating it twice cost a fifth of a webhook's parsing time.
    links = am.leading_links()
    if am.generatorURL:
        links.append(link(am.generatorURL, "Source"))
    for key in ("runbook_url", "runbook", "dashboard_url"):
        href = am.annotations.get(key, "")
        if href.startswith(("http://", "https://")):
            links.append(link(href, key.split("_")[0].capitalize()))
    links += am.trailing_links()
    starts_at = _starts_at(am.startsAt, index)
    # The fingerprint is a hash of the label set; recompute one if a sender left it out.
    fingerprint = am.fingerprint or short_hash(repr(sorted(am.labels.items())))
    return Alert.model_construct(
        source=source,
        group_key=bounded_key(group_prefix + message.groupKey)
        if group_prefix
        else message.groupKey,
        fingerprint=fingerprint,
        status=am.status,
        starts_at=starts_at,
        ends_at=_time(am.endsAt, index, "endsAt") if am.status is AlertStatus.RESOLVED else None,
        labels=am.labels,
        annotations=am.kept_annotations(),
        links=tuple(links),
        truncation=truncation,
    )
