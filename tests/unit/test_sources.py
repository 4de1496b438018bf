"""Parsing both sources into the one Alert model."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from router.adapters.alertmanager import webhook as alertmanager
from router.adapters.pagerduty import webhook as pagerduty
from router.adapters.payload import PayloadError
from router.core.alerts import AlertStatus, Source, parse_time
from tests.conftest import am_alert, am_payload, pd_event


def test_zero_end_time_means_still_firing() -> None:
    assert parse_time("0001-01-01T00:00:00Z") is None


def test_nanosecond_fractions_are_cut_not_rejected() -> None:
    parsed = parse_time("2024-05-01T10:00:00.123456789Z")
    assert parsed == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_offsets_are_kept() -> None:
    parsed = parse_time("2024-05-01T12:00:00+02:00")
    assert parsed is not None and parsed.astimezone(UTC).hour == 10


def test_alertmanager_firing_alert() -> None:
    [alert] = alertmanager.parse(am_payload())
    assert alert.source is Source.ALERTMANAGER
    assert alert.group_key == '{}:{alertname="HighLatency"}'
    assert alert.fingerprint == "5c1e2a1f0d9b7e44"
    assert alert.status is AlertStatus.FIRING
    assert alert.ends_at is None
    assert alert.starts_at == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert alert.labels["instance"] == "api-1"
    assert [link.text for link in alert.links] == ["Source", "Runbook"]
    assert alert.summary == "p99 > 1s"


def test_alertmanager_resolved_alert_carries_its_end() -> None:
    [alert] = alertmanager.parse(am_payload(status="resolved", alerts=[am_alert("f1", "resolved")]))
    assert alert.status is AlertStatus.RESOLVED
    assert alert.ends_at == datetime(2024, 5, 1, 10, 5, tzinfo=UTC)


def test_alertmanager_whole_group_is_parsed() -> None:
    alerts = alertmanager.parse(am_payload(alerts=[am_alert("a"), am_alert("b", "resolved")]))
    assert [(a.fingerprint, a.status.value) for a in alerts] == [
        ("a", "firing"),
        ("b", "resolved"),
    ]


def test_missing_fingerprint_is_computed_from_labels() -> None:
    first = am_alert("")
    second = am_alert("")
    [a] = alertmanager.parse(am_payload(alerts=[first]))
    [b] = alertmanager.parse(am_payload(alerts=[second]))
    assert a.fingerprint and a.fingerprint == b.fingerprint


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        (am_payload(version="3"), "version", "unsupported payload version '3'"),
        ({k: v for k, v in am_payload().items() if k != "groupKey"}, "groupKey", "required"),
        (am_payload(alerts="nope"), "alerts", "valid list"),
        (am_payload(alerts=[{"status": "firing"}]), "alerts.0.labels", "required"),
        (am_payload(alerts=[am_alert("f") | {"status": "burning"}]), "alerts.0.status", "firing"),
        (am_payload(alerts=[am_alert("f") | {"startsAt": "yesterday"}]), "alerts.0.startsAt", ""),
    ],
)
def test_alertmanager_schema_errors_name_the_field(
    payload: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        alertmanager.parse(payload)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert caught.value.status == 422


def test_alertmanager_body_must_be_an_object() -> None:
    with pytest.raises(PayloadError) as caught:
        alertmanager.parse([1, 2])
    assert caught.value.status == 400


def _valid_payloads() -> list[dict[str, object]]:
    linked = am_alert("l")
    linked["annotations"] |= {"runbook_url": "https://runbooks/x", "dashboard_url": "ftp://no"}
    nanos = am_alert("n") | {"startsAt": "2024-05-01T10:00:00.123456789Z"}
    return [
        am_payload(),
        am_payload(alerts=[am_alert("a"), am_alert("b", "resolved")]),
        am_payload(alerts=[am_alert("")]),  # fingerprint computed from the labels
        am_payload(alerts=[linked, nanos]),
        am_payload(futureField={"x": 1}),  # newer Alertmanagers add fields
    ]


@pytest.mark.parametrize("payload", _valid_payloads())
def test_the_fast_path_reads_exactly_what_parse_reads(payload: dict[str, object]) -> None:
    body = json.dumps(payload).encode()
    fast = alertmanager.parse_body(body)
    assert fast is not None
    assert fast == alertmanager.parse(json.loads(body))
    assert [a.model_dump() for a in fast] == [
        a.model_dump() for a in alertmanager.parse(json.loads(body))
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        json.dumps(am_payload(version="3")).encode(),
        json.dumps(am_payload(alerts="nope")).encode(),
        '{"version": "4", "groupKey": "\xe9"'.encode("latin-1"),  # not UTF-8
    ],
)
def test_the_fast_path_leaves_bad_bodies_to_parse_for_a_precise_error(body: bytes) -> None:
    assert alertmanager.parse_body(body) is None


def test_the_fast_path_names_a_bad_time_as_parse_does() -> None:
    body = json.dumps(am_payload(alerts=[am_alert("f") | {"startsAt": "yesterday"}])).encode()
    with pytest.raises(PayloadError) as caught:
        alertmanager.parse_body(body)
    assert caught.value.field == "alerts.0.startsAt"


# -- PagerDuty ---------------------------------------------------------------


def test_signature_accepts_any_matching_entry_during_rotation() -> None:
    body = b'{"event":{}}'
    header = "v1=deadbeef," + pagerduty.sign(b"new", body)
    pagerduty.verify_signature([b"new"], body, header)  # no exception
    pagerduty.verify_signature([b"old", b"new"], body, pagerduty.sign(b"old", body))


def test_signature_over_raw_bytes_not_reserialised_json() -> None:
    body = b'{"event": {"a": 1}}'
    reserialised = b'{"event":{"a":1}}'
    with pytest.raises(pagerduty.SignatureInvalid):
        pagerduty.verify_signature([b"s"], reserialised, pagerduty.sign(b"s", body))


@pytest.mark.parametrize("header", [None, "", "sha256=abc", "v2=abc"])
def test_signature_missing_or_malformed(header: str | None) -> None:
    with pytest.raises(pagerduty.SignatureMissing):
        pagerduty.verify_signature([b"s"], b"{}", header)


def test_signature_wrong_secret() -> None:
    with pytest.raises(pagerduty.SignatureInvalid):
        pagerduty.verify_signature([b"s"], b"{}", pagerduty.sign(b"other", b"{}"))


def test_pagerduty_triggered_becomes_a_firing_alert() -> None:
    import json

    event = pagerduty.parse(json.loads(pd_event("incident.triggered", "ev-1")))
    assert event.event_id == "ev-1"
    [alert] = event.alerts
    assert alert.source is Source.PAGERDUTY
    assert alert.group_key == "pagerduty:PGR0VU2"
    assert alert.status is AlertStatus.FIRING
    assert alert.labels == {"alertname": "A little bump", "service": "API", "urgency": "high"}
    assert alert.links[0].href == "https://acme.pagerduty.com/incidents/PGR0VU2"


def test_pagerduty_resolved_keeps_the_same_natural_key() -> None:
    import json

    fired = pagerduty.parse(json.loads(pd_event("incident.triggered"))).alerts[0]
    resolved = pagerduty.parse(json.loads(pd_event("incident.resolved"))).alerts[0]
    assert resolved.status is AlertStatus.RESOLVED
    assert (fired.group_key, fired.fingerprint, fired.starts_at) == (
        resolved.group_key,
        resolved.fingerprint,
        resolved.starts_at,
    )
    assert resolved.ends_at is not None


def test_pagerduty_unknown_and_ping_events_are_ignored_not_refused() -> None:
    ping = {"event": {"id": "p", "event_type": "pagey.ping", "occurred_at": "2020-10-02T18:45:22Z",
                      "data": {"type": "ping", "message": "Hello"}}}  # fmt: skip
    assert pagerduty.parse(ping).alerts == []


def test_pagerduty_envelope_errors_name_the_field() -> None:
    with pytest.raises(PayloadError) as caught:
        pagerduty.parse({"event": {"event_type": "incident.triggered"}})
    assert caught.value.field == "event.id"


def test_pagerduty_incidents_the_router_triggered_are_not_taken_back_in() -> None:
    import json

    document = json.loads(pd_event("incident.triggered"))
    document["event"]["data"]["incident_key"] = "router:p0123456789abcdef"
    assert pagerduty.parse(document).alerts == []
