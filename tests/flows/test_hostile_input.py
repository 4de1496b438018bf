"""Bad input of every class gets its documented 4xx and a JSON error naming the field;
what can be kept is kept, on both store engines. Never a 500: a 500 is a bug.

The classes: nesting depth, numbers out of range, non-numeric headers, invalid UTF-8
(in bodies and in header bytes), lone surrogates, NUL characters (PostgreSQL's text
refuses them), huge strings and label maps, wrong types at every level, empty
bodies, wrong or missing content types, multipart and chunked bodies, duplicate form
fields, Slack payloads of the wrong shape, PagerDuty envelopes with odd ``data``.
"""

from __future__ import annotations

import gzip
import json
import random
import string
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest

from router.adapters.pagerduty.webhook import sign as pd_sign
from router.adapters.slack.signing import sign as slack_sign
from tests.conftest import (
    AM_TOKEN,
    am_alert,
    am_payload,
    pd_event,
    postgres_schema,
    postgres_url,
    skip_unless_ci,
)
from tests.fuzz import raw
from tests.harness import PRIMARY, SIGNING_SECRET, Harness, inbox_drained, running_router

AM = "/webhooks/alertmanager"
PD = "/webhooks/pagerduty"
AUTH = {"Authorization": f"Bearer {AM_TOKEN}", "Content-Type": "application/json"}
PD_SECRET = "hostile-pd-secret"


# -- a router on either engine ---------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the harness's SQLite file; else a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield None
        return
    try:
        psycopg.connect(postgres_url(), connect_timeout=2).close()
    except psycopg.Error:
        skip_unless_ci(f"no PostgreSQL at {postgres_url()}")
    with postgres_schema("router_hostile_") as url:
        yield url


@asynccontextmanager
async def router(tmp_path: Path, store_url: str | None = None) -> AsyncIterator[Harness]:
    overrides = {"STORE__URL": store_url} if store_url else {}
    async with running_router(tmp_path, pagerduty_secret=PD_SECRET, **overrides) as h:
        yield h


async def answer(response: Any) -> tuple[int, dict[str, Any]]:
    body = await response.json()
    assert set(body) <= {"error", "message", "field"} and body["message"], body
    return response.status, body


def refused(status: int, error: str, field: str | None) -> tuple[int, str, str | None]:
    return status, error, field


async def count_alerts(h: Harness) -> int:
    found: int = await h.store.run(lambda tx: tx.count_alerts())
    return found


def no_500(h: Harness) -> None:
    for code in ("500", "503"):
        for endpoint in (AM, PD, "/webhooks/grafana", "/slack/interactions", "/slack/commands"):
            value = h.sample("router_http_requests_total", {"endpoint": endpoint, "code": code})
            assert not value, f"{endpoint} answered {code}"


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _with_label(value: str) -> bytes:
    payload = am_payload()
    payload["alerts"][0]["labels"]["instance"] = "@@"
    return _json(payload).replace(b'"@@"', value.encode())


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# -- Alertmanager bodies ---------------------------------------------------------------

_NOT_NUMBERS = _json(am_payload()).replace(b'"truncatedAlerts": 0', b'"truncatedAlerts": NaN')

AM_REFUSED = [
    ("5000 nested [", _deep(5000), refused(400, "malformed_json", None)),
    ("deep inside a label", _with_label(_deep(3000).decode()),
     refused(400, "malformed_json", None)),
    ("a lone surrogate", _with_label('"api-\\ud800"'),
     refused(400, "malformed_json", "alerts.0.labels.instance")),
    ("a lone low surrogate", _with_label('"\\udc00x"'),
     refused(400, "malformed_json", "alerts.0.labels.instance")),
    ("invalid UTF-8", _with_label('"api-@"').replace(b"@", b"\xff\xfe"),
     refused(400, "malformed_json", None)),
    ("an empty body", b"", refused(400, "malformed_json", None)),
    ("whitespace", b"  \n", refused(400, "malformed_json", None)),
    ("an array", b"[]", refused(400, "invalid_payload", None)),
    ("a string", b'"4"', refused(400, "invalid_payload", None)),
    ("null", b"null", refused(400, "invalid_payload", None)),
    ("NUL in groupKey", _json(am_payload(groupKey="{}:{a=\u0000}")),
     refused(422, "invalid_payload", "groupKey")),
    ("NUL in a fingerprint", _json(am_payload(alerts=[am_alert("f\u0000")])),
     refused(422, "invalid_payload", "alerts.0.fingerprint")),
    ("truncatedAlerts beyond uint64", _json(am_payload(truncatedAlerts=2**64)),
     refused(422, "invalid_payload", "truncatedAlerts")),
    ("truncatedAlerts negative", _json(am_payload(truncatedAlerts=-1)),
     refused(422, "invalid_payload", "truncatedAlerts")),
    ("truncatedAlerts NaN", _NOT_NUMBERS, refused(422, "invalid_payload", "truncatedAlerts")),
    ("truncatedAlerts 1e400", _NOT_NUMBERS.replace(b"NaN", b"1e400"),
     refused(422, "invalid_payload", "truncatedAlerts")),
    ("truncatedAlerts 2.5", _json(am_payload(truncatedAlerts=2.5)),
     refused(422, "invalid_payload", "truncatedAlerts")),
    ("startsAt with no year in UTC", _json(am_payload(alerts=[am_alert("a") | {
        "startsAt": "9999-12-31T23:59:59-01:00"}])),
     refused(422, "invalid_payload", "alerts.0.startsAt")),
    ("startsAt a number", _json(am_payload(alerts=[am_alert("a") | {"startsAt": 1e300}])),
     refused(422, "invalid_payload", "alerts.0.startsAt")),
    ("endsAt garbage", _json(am_payload(status="resolved", alerts=[
        am_alert("a", "resolved") | {"endsAt": "2024-02-30T00:00:00Z"}])),
     refused(422, "invalid_payload", "alerts.0.endsAt")),
    ("version a number", _json(am_payload(version=4)), refused(422, "invalid_payload", "version")),
    ("groupKey empty", _json(am_payload(groupKey="")), refused(422, "invalid_payload", "groupKey")),
    ("groupKey a list", _json(am_payload(groupKey=["x"])),
     refused(422, "invalid_payload", "groupKey")),
    ("status unknown", _json(am_payload(status="burning")),
     refused(422, "invalid_payload", "status")),
    ("alerts an object", _json(am_payload(alerts={})), refused(422, "invalid_payload", "alerts")),
    ("an alert a string", _json(am_payload(alerts=["a"])),
     refused(422, "invalid_payload", "alerts.0")),
    ("labels a list", _json(am_payload(alerts=[am_alert("a") | {"labels": []}])),
     refused(422, "invalid_payload", "alerts.0.labels")),
    ("a label a number", _json(am_payload(alerts=[am_alert("a") | {"labels": {"x": 1}}])),
     refused(422, "invalid_payload", "alerts.0.labels.x")),
    ("a label an object", _json(am_payload(alerts=[am_alert("a") | {"labels": {"x": {}}}])),
     refused(422, "invalid_payload", "alerts.0.labels.x")),
    ("annotations a string", _json(am_payload(alerts=[am_alert("a") | {"annotations": "x"}])),
     refused(422, "invalid_payload", "alerts.0.annotations")),
    ("groupLabels a list", _json(am_payload(groupLabels=[1])),
     refused(422, "invalid_payload", "groupLabels")),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in AM_REFUSED],
                         ids=[c[0] for c in AM_REFUSED])  # fmt: skip
async def test_alertmanager_refuses_naming_the_field(
    tmp_path: Path, body: bytes, expected: tuple[int, str, str | None]
) -> None:
    async with router(tmp_path) as h:
        status, error = await answer(await h.client.post(AM, data=body, headers=AUTH))
        assert (status, error["error"], error.get("field")) == expected, error
        assert await count_alerts(h) == 0
        no_500(h)


def _random_text(size: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits + "äé€😀") for _ in range(size))


def _kept() -> list[tuple[str, dict[str, Any]]]:
    nul = am_payload(alerts=[am_alert("n") | {
        "labels": {"alertname": "Nul\u0000Name", "instance": "a\u0000b"},
        "annotations": {"summary": "with \u0000 inside"}}])  # fmt: skip
    long_key = am_payload(groupKey="{}:{" + _random_text(20_000, 1) + "}",
                          alerts=[am_alert(_random_text(5_000, 2))])  # fmt: skip
    many = am_alert("m")
    many["labels"] = {f"label_{i}": _random_text(20, i) for i in range(3_000)} | {
        "alertname": "ManyLabels"
    }
    nullable = am_alert("z") | {"annotations": None}
    emoji = am_alert("e")
    emoji["labels"]["instance"] = "api-\U0001f600"
    return [
        ("NUL in label and annotation values", nul),
        ("a 20 kB group key and a 5 kB fingerprint", long_key),
        ("3,000 labels", am_payload(alerts=[many], groupKey="{}:{many}")),
        ("annotations null (a nil Go map)", am_payload(alerts=[nullable], groupKey="{}:{z}")),
        ("an emoji, escaped as a surrogate pair", am_payload(alerts=[emoji], groupKey="{}:{e}")),
    ]


@pytest.mark.parametrize(("payload"), [c[1] for c in _kept()], ids=[c[0] for c in _kept()])
async def test_alertmanager_keeps_what_can_be_kept_on_both_engines(
    tmp_path: Path, store_url: str | None, payload: dict[str, Any]
) -> None:
    # ensure_ascii: non-ASCII goes as \u escapes (a surrogate pair for the emoji).
    body = json.dumps(payload, ensure_ascii=True).encode()
    async with router(tmp_path, store_url) as h:
        first = await h.client.post(AM, data=body, headers=AUTH)
        assert first.status == 200, await first.text()
        assert (await first.json())["alerts"] == 1
        again = await h.client.post(AM, data=body, headers=AUTH)  # a resend is a repeat
        assert again.status == 200, await again.text()
        await inbox_drained(h.store)
        assert await count_alerts(h) == 1
        [(seen,)] = await h.store.run(lambda tx: tx._rows("SELECT seen_count FROM alerts"))
        assert seen == 2
        await h.dm_blocks(PRIMARY)  # and it pages
        pages = await h.store.run(lambda tx: tx.pages())
        [stored] = await h.store.run(lambda tx: tx.alerts_in_group(pages[0].group_key))
        sent = payload["alerts"][0]
        assert stored.labels == sent["labels"]
        assert stored.annotations == (sent["annotations"] or {})
        no_500(h)


# -- PagerDuty -------------------------------------------------------------------------


def _pd(event_type: str = "incident.triggered", **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(pd_event(event_type, "ev-1"))
    for path, value in changes.items():
        node = document
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return document


PD_REFUSED = [
    ("5000 nested [", _deep(5000), refused(400, "malformed_json", None)),
    ("an array", b"[]", refused(400, "invalid_payload", None)),
    ("no event", b"{}", refused(422, "invalid_payload", "event")),
    ("event a list", _json({"event": []}), refused(422, "invalid_payload", "event")),
    ("data a list", _json(_pd(event__data=[])), refused(422, "invalid_payload", "event.data")),
    ("data a string", _json(_pd(event__data="x")), refused(422, "invalid_payload", "event.data")),
    ("data null", _json(_pd(event__data=None)), refused(422, "invalid_payload", "event.data")),
    ("an incident without id", _json(_pd(event__data={"type": "incident"})),
     refused(422, "invalid_payload", "event.data.id")),
    ("an incident id a number", _json(_pd(event__data__id=7)),
     refused(422, "invalid_payload", "event.data.id")),
    ("NUL in the incident id", _json(_pd(event__data__id="P\u0000")),
     refused(422, "invalid_payload", "event.data.id")),
    ("NUL in the event id", _json(_pd(event__id="e\u0000")),
     refused(422, "invalid_payload", "event.id")),
    ("a number beyond any integer", _json(_pd(event__data__number=1.5)),
     refused(422, "invalid_payload", "event.data.number")),
    ("occurred_at out of range", _json(_pd(event__occurred_at="9999-12-31T23:30:00-05:00")),
     refused(422, "invalid_payload", "event.occurred_at")),
    ("service a string", _json(_pd(event__data__service="API")),
     refused(422, "invalid_payload", "event.data.service")),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in PD_REFUSED],
                         ids=[c[0] for c in PD_REFUSED])  # fmt: skip
async def test_pagerduty_refuses_naming_the_field(
    tmp_path: Path, body: bytes, expected: tuple[int, str, str | None]
) -> None:
    async with router(tmp_path) as h:
        headers = {"Content-Type": "application/json",
                   "X-PagerDuty-Signature": pd_sign(PD_SECRET.encode(), body)}  # fmt: skip
        status, error = await answer(await h.client.post(PD, data=body, headers=headers))
        assert (status, error["error"], error.get("field")) == expected, error
        no_500(h)


@pytest.mark.parametrize(
    "data",
    [{"type": "ping"}, {}, {"type": 5}, {"type": "incident_note", "incident": []}],
    ids=["a ping", "empty", "type a number", "a note of odd shape"],
)
async def test_pagerduty_events_it_does_not_read_are_accepted_whatever_their_data(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    # PagerDuty disables a subscription after three 4xx: what we ignore, we accept.
    async with router(tmp_path) as h:
        body = _json(_pd("incident.annotated", event__data=data))
        headers = {"Content-Type": "application/json",
                   "X-PagerDuty-Signature": pd_sign(PD_SECRET.encode(), body)}  # fmt: skip
        response = await h.client.post(PD, data=body, headers=headers)
        assert response.status == 202
        assert (await response.json())["alerts"] == 0


async def test_pagerduty_header_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    async with router(tmp_path) as h:
        body = pd_event()
        good = pd_sign(PD_SECRET.encode(), body).encode()
        server = h.client.server
        cases = [
            ([("X-PagerDuty-Signature", b"v1=\xff\xfe" + good[3:])], 403, "signature_invalid"),
            ([("X-PagerDuty-Signature", "v1=é" + good[4:].decode())], 403, "signature_invalid"),
            ([("X-PagerDuty-Signature", good), ("X-Webhook-Id", b"wh-\xff")], 400,
             "invalid_payload"),
        ]  # fmt: skip
        for headers, status, error in cases:
            request = raw.request_bytes(
                "POST", PD, [("Content-Type", "application/json"), *headers], body
            )
            got = await raw.send(str(server.host), int(server.port or 0), request)
            assert got.status == status, (headers, got)
            assert json.loads(got.body)["error"] == error
        no_500(h)


async def test_pagerduty_long_ids_are_kept_on_both_engines(
    tmp_path: Path, store_url: str | None
) -> None:
    async with router(tmp_path, store_url) as h:
        document = _pd(event__id=_random_text(6_000, 3), event__data__id=_random_text(6_000, 4))
        body = _json(document)
        headers = {"Content-Type": "application/json", "X-Webhook-Id": _random_text(4_000, 5),
                   "X-PagerDuty-Signature": pd_sign(PD_SECRET.encode(), body)}  # fmt: skip
        first = await h.client.post(PD, data=body, headers=headers)
        assert first.status == 202, await first.text()
        again = await h.client.post(PD, data=body, headers=headers)
        assert (await again.json())["status"] == "duplicate"
        no_500(h)


# -- Slack -----------------------------------------------------------------------------


async def signed(h: Harness, path: str, body: bytes, **headers: str) -> Any:
    sent = slack_sign(SIGNING_SECRET, int(h.clock.now().timestamp()), body)
    sent["Content-Type"] = "application/x-www-form-urlencoded"
    sent.update(headers)
    return await h.client.post(path, data=body, headers=sent)


def _interaction(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": PRIMARY},
        "container": {"type": "message", "message_ts": "1700000000.000100"},
        "actions": [{"type": "button", "action_id": "page.declare", "value": "p123",
                     "action_ts": "1700000001.000200"}],
    }  # fmt: skip
    payload.update(changes)
    return payload


def _form(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return urlencode({"payload": text}).encode()


SLACK_REFUSED = [
    ("payload not JSON", _form("{nope"), refused(400, "invalid_payload", "payload")),
    ("payload 5000 nested [", _form(_deep(5000).decode()),
     refused(400, "invalid_payload", "payload")),
    ("payload an array", _form([]), refused(400, "invalid_payload", "payload")),
    ("payload a number", _form(1), refused(400, "invalid_payload", "payload")),
    ("payload null", _form("null"), refused(400, "invalid_payload", "payload")),
    ("payload a string", _form('"block_actions"'), refused(400, "invalid_payload", "payload")),
    ("no payload field", b"type=block_actions", refused(400, "invalid_payload", "payload")),
    ("payload twice", _form(_interaction()) + b"&" + _form(_interaction()),
     refused(400, "malformed_form", "payload")),
    ("no user", _form({k: v for k, v in _interaction().items() if k != "user"}),
     refused(400, "invalid_payload", "payload.user")),
    ("user a string", _form(_interaction(user="U1")),
     refused(400, "invalid_payload", "payload.user")),
    ("user id a number", _form(_interaction(user={"id": 5})),
     refused(400, "invalid_payload", "payload.user.id")),
    ("user id with NUL", _form(_interaction(user={"id": "U\u0000"})),
     refused(400, "invalid_payload", "payload.user.id")),
    ("container a string", _form(_interaction(container="x")),
     refused(400, "invalid_payload", "payload.container")),
    ("message_ts a list", _form(_interaction(container={"message_ts": []})),
     refused(400, "invalid_payload", "payload.container.message_ts")),
    ("actions an object", _form(_interaction(actions={"action_id": "page.declare"})),
     refused(400, "invalid_payload", "payload.actions")),
    ("a thousand actions", _form(_interaction(actions=[{"action_id": "x"}] * 1000)),
     refused(400, "invalid_payload", "payload.actions")),
    ("an action a number", _form(_interaction(actions=[1])),
     refused(400, "invalid_payload", "payload.actions.0")),
    ("an action a list", _form(_interaction(actions=[[]])),
     refused(400, "invalid_payload", "payload.actions.0")),
    ("action_id a number", _form(_interaction(actions=[{"action_id": 5}])),
     refused(400, "invalid_payload", "payload.actions.0.action_id")),
    ("value an object", _form(_interaction(actions=[{"action_id": "page.declare",
                                                      "value": {"a": 1}}])),
     refused(400, "invalid_payload", "payload.actions.0.value")),
    ("value with NUL", _form(_interaction(actions=[{"action_id": "page.declare",
                                                     "value": "p\u0000"}])),
     refused(400, "invalid_payload", "payload.actions.0.value")),
    ("selected_option a string", _form(_interaction(actions=[{
        "action_id": "page.dismiss_reason", "selected_option": "x"}])),
     refused(400, "invalid_payload", "payload.actions.0.selected_option")),
    ("a lone surrogate", _form(json.dumps(_interaction()).replace("p123", "\\ud800")),
     refused(400, "invalid_payload", "payload.actions.0.value")),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in SLACK_REFUSED],
                         ids=[c[0] for c in SLACK_REFUSED])  # fmt: skip
async def test_slack_interactions_refuse_naming_the_field(
    tmp_path: Path, body: bytes, expected: tuple[int, str, str | None]
) -> None:
    async with router(tmp_path) as h:
        status, error = await answer(await signed(h, "/slack/interactions", body))
        assert (status, error["error"], error.get("field")) == expected, error
        assert await h.jobs() == []
        no_500(h)


@pytest.mark.parametrize(
    ("timestamp", "signature", "field"),
    [
        ("abc", None, "X-Slack-Request-Timestamp"),
        ("1" * 5000, None, "X-Slack-Request-Timestamp"),
        ("١٧٠٠٠٠٠٠٠٠", None, "X-Slack-Request-Timestamp"),  # Arabic-Indic digits
        ("-1700000000", None, "X-Slack-Request-Timestamp"),
        ("1700000000.5", None, "X-Slack-Request-Timestamp"),
        (None, "v0=é" + "0" * 63, "X-Slack-Signature"),
        (None, "v0=" + "0" * 64, "X-Slack-Signature"),
        ("1000000000", None, "X-Slack-Signature"),  # 2001: signed right, but stale
    ],
)
@pytest.mark.parametrize("path", ["/slack/interactions", "/slack/commands"])
async def test_slack_headers_that_are_not_a_signature_are_401_naming_the_header(
    tmp_path: Path, path: str, timestamp: str | None, signature: str | None, field: str
) -> None:
    async with router(tmp_path) as h:
        body = _form(_interaction())
        headers = slack_sign(SIGNING_SECRET, int(h.clock.now().timestamp()), body)
        if timestamp is not None:
            headers = slack_sign(SIGNING_SECRET, 0, body) | {"X-Slack-Request-Timestamp": timestamp}
            if timestamp.isdigit() and timestamp.isascii() and len(timestamp) < 12:
                headers = slack_sign(SIGNING_SECRET, int(timestamp), body)
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, error = await answer(await h.client.post(path, data=body, headers=headers))
        assert (status, error["error"], error.get("field")) == (401, "signature_invalid", field)
        no_500(h)


async def test_slack_signature_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    async with router(tmp_path) as h:
        body = _form(_interaction())
        stamp = str(int(h.clock.now().timestamp()))
        request = raw.request_bytes("POST", "/slack/interactions", [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Slack-Request-Timestamp", stamp),
            ("X-Slack-Signature", b"v0=\xff\xfe\xfd"),
        ], body)  # fmt: skip
        server = h.client.server
        got = await raw.send(str(server.host), int(server.port or 0), request)
        assert got.status == 401
        assert json.loads(got.body)["field"] == "X-Slack-Signature"


@pytest.mark.parametrize(
    "action",
    [
        {"action_id": "page.escalate", "value": "p1|²"},  # "²".isdigit(), int("²") raises
        {"action_id": "page.dismiss_reason", "selected_option": {"value": "p1|³"}},
        {"action_id": "page.dismiss_reason", "selected_option": {"value": "p1|" + "9" * 5000}},
        {"action_id": "incident.mitigated", "value": "INC-²"},
        {"action_id": "incident.mitigated", "value": "INC-" + "9" * 30},  # beyond 64 bits
        {"action_id": "incident.mitigated", "value": "INC-" + "9" * 5000},
        {
            "action_id": "incident.severity",
            "selected_option": {"value": "INC-99999999999999999999|high"},
        },
        {"action_id": "report.page", "value": "x" * 3000},  # a long title, as delivery id
    ],
)
async def test_slack_buttons_with_odd_numbers_do_nothing(
    tmp_path: Path, action: dict[str, Any]
) -> None:
    async with router(tmp_path) as h:
        response = await signed(h, "/slack/interactions", _form(_interaction(actions=[action])))
        assert response.status == 200, await response.text()
        assert await h.incidents() == []
        no_500(h)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"command": "/incident", "text": "help"}, refused(400, "invalid_payload", "user_id")),
        ({"user_id": "", "text": "help"}, refused(400, "invalid_payload", "user_id")),
        ({"user_id": "U\u0000", "text": "help"}, refused(400, "invalid_payload", "user_id")),
        ({"user_id": "U1", "text": "status\u0000"}, refused(400, "invalid_payload", "text")),
    ],
)
async def test_slash_command_fields_refused_naming_the_field(
    tmp_path: Path, form: dict[str, str], expected: tuple[int, str, str | None]
) -> None:
    async with router(tmp_path) as h:
        status, error = await answer(await signed(h, "/slack/commands", urlencode(form).encode()))
        assert (status, error["error"], error.get("field")) == expected


async def test_slash_command_with_a_repeated_field_is_400(tmp_path: Path) -> None:
    async with router(tmp_path) as h:
        body = b"user_id=U1&text=help&text=status"
        status, error = await answer(await signed(h, "/slack/commands", body))
        assert (status, error["error"], error["field"]) == (400, "malformed_form", "text")


@pytest.mark.parametrize("ref", ["INC-" + "9" * 30, "INC-" + "9" * 5000, "inc-²"])
async def test_slash_command_naming_an_impossible_incident_says_so(
    tmp_path: Path, ref: str
) -> None:
    async with router(tmp_path) as h:
        answer_ = await h.command(f"status {ref}", PRIMARY)
        assert answer_["response_type"] == "ephemeral"
        assert (
            "no INC" in answer_["text"]
            or "no inc" in answer_["text"].lower()
            or ("No incident is open" in answer_["text"])
        )
        no_500(h)


# -- content types, multipart, chunked, auth bytes -----------------------------------


async def test_content_types_and_bodies(tmp_path: Path) -> None:
    async with router(tmp_path) as h:
        body = _json(am_payload())
        token = {"Authorization": f"Bearer {AM_TOKEN}"}
        missing = await h.client.post(AM, data=body, headers=token)
        text = await h.client.post(AM, data=body, headers=token | {"Content-Type": "text/plain"})
        multipart = await h.client.post(AM, data={"payload": body.decode()}, headers=token)
        form = {"payload": json.dumps(_interaction())}
        slack_multipart = await h.client.post("/slack/interactions", data=form)
        for response in (missing, text, multipart):
            status, error = await answer(response)
            assert (status, error["error"]) == (415, "unsupported_media_type")
        assert slack_multipart.status == 401  # unsigned: refused before its type is read

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 100):
                yield body[start : start + 100]

        chunked = await h.client.post(AM, data=chunks(), headers=AUTH)
        assert chunked.status == 200, await chunked.text()
        charset = await h.client.post(
            AM, data=body, headers=token | {"Content-Type": "application/json; charset=utf-8"}
        )
        assert charset.status == 200
        no_500(h)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_that_does_not_decompress_is_400(tmp_path: Path, encoding: str) -> None:
    async with router(tmp_path) as h:
        # aiohttp closes the connection after such a body: not one to reuse
        bad = {"Content-Encoding": encoding, "Connection": "close"}
        response = await h.client.post(AM, data=b"not compressed", headers=AUTH | bad)
        status, error = await answer(response)
        assert (status, error["error"], error["field"]) == (
            400, "malformed_body", "Content-Encoding",
        )  # fmt: skip
        good = await h.client.post(
            AM, data=gzip.compress(_json(am_payload())), headers=AUTH | {"Content-Encoding": "gzip"}
        )
        assert good.status == 200  # and a compressed one is read
        no_500(h)


async def test_authorization_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    async with router(tmp_path) as h:
        body = _json(am_payload())
        server = h.client.server
        for value in (b"Bearer \xff\xfe", b"Basic \xff\xfe==", b"\xff", b"Bearer " + b"x" * 7000):
            request = raw.request_bytes(
                "POST", AM, [("Content-Type", "application/json"), ("Authorization", value)], body
            )
            got = await raw.send(str(server.host), int(server.port or 0), request)
            assert got.status == 401, (value, got)
            assert json.loads(got.body)["error"] == "unauthorized"
        assert await count_alerts(h) == 0
        no_500(h)


async def test_a_real_bug_is_still_a_500_and_counted(tmp_path: Path) -> None:
    async with router(tmp_path) as h:
        from router.adapters.http.context import SERVICES

        intake = h.client.server.app[SERVICES].intake

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug")

        intake.enqueue = broken  # type: ignore[method-assign]
        response = await h.client.post(AM, data=_json(am_payload()), headers=AUTH)
        assert response.status == 500
        assert (await response.json())["error"] == "internal"
        assert h.sample("router_http_requests_total", {"endpoint": AM, "code": "500"}) == 1
        assert h.sample("router_http_errors_total", {"endpoint": AM}) == 1


async def test_a_huge_alert_name_still_reaches_the_on_call(tmp_path: Path) -> None:
    """Label values have no length limit; a Slack message has. The page is delivered."""
    async with router(tmp_path) as h:
        huge = am_alert("h")
        huge["labels"]["alertname"] = "Disk" * 25_000  # 100,000 characters
        huge["annotations"]["summary"] = "s" * 100_000
        payload = am_payload(groupKey="{}:{huge}", alerts=[huge])
        response = await h.client.post(AM, data=_json(payload), headers=AUTH)
        assert response.status == 200
        blocks = await h.dm_blocks(PRIMARY)
        await h.settle()
        assert not [j for j in await h.jobs() if j.status.value == "dead"]
        [dm] = h.slack.dms_to(PRIMARY)
        assert dm["text"].startswith("Suspected incident: DiskDisk") and len(dm["text"]) < 1000
        assert all(len(str(block)) < 4000 for block in blocks)
