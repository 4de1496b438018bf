"""Mutation fuzzing of a live router: real, valid requests of every endpoint, each
mutated in its bytes, its structure, its headers and its types, then sent.

    python -m tests.fuzz.mutate --count 1500 [--seed N] [--store sqlite|postgres|URL]

Bodies are signed after their mutation (bearer token, PagerDuty HMAC, Slack v0
signature over the exact bytes sent), so a mutation reaches the parser behind the
signature; header mutations come after signing and break the auth itself. Every
tenth request is left valid, so pages open and incidents are declared, and later
mutations reach the lifecycle. The run prints the answers per endpoint and status,
and fails on any 5xx, any request left unanswered, any 4xx that is not the JSON
error shape, and any unhandled error in the router's log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import hmac
import json
import random
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from router.adapters.pagerduty.webhook import sign as pd_sign
from tests.fuzz import raw
from tests.fuzz.live import (
    AM_TOKEN,
    LEAD,
    PD_SECRET,
    PRIMARY,
    RESPONDER,
    SECONDARY,
    SIGNING_SECRET,
    Live,
    live_router,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
STRANGER = "U0STRANGER"
PLACEHOLDER = "@@FUZZ@@"


@dataclass
class Request:
    method: str
    path: str
    body: bytes = b""
    kind: str = "none"  # json | slack-payload | form | none
    auth: str | None = None  # bearer | pagerduty | slack
    content_type: str | None = None
    headers: list[tuple[str, bytes | str]] = field(default_factory=list)
    mutations: list[str] = field(default_factory=list)
    raw_override: bytes | None = None  # the whole request, when a mutation wrote it

    @property
    def endpoint(self) -> str:
        path = self.path.split("?")[0]
        known = ("/webhooks/alertmanager", "/webhooks/grafana", "/webhooks/pagerduty",
                 "/slack/interactions", "/slack/commands", "/healthz", "/readyz", "/metrics",
                 "/openapi.json")  # fmt: skip
        return f"{self.method} {path if path in known else '(another path)'}"


# -- valid requests of every endpoint ------------------------------------------------


def _fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def _json_request(path: str, document: Any, auth: str) -> Request:
    return Request("POST", path, json.dumps(document).encode(), "json", auth, "application/json")


class Seeds:
    """Valid requests, drawn at random; they follow what the router has said (page
    keys from its console output) so that buttons press real pages."""

    def __init__(self, rng: random.Random, live: Live) -> None:
        self.rng = rng
        self.live = live
        self.alertmanager = [_fixture("alertmanager/high_latency.json"),
                             _fixture("alertmanager/truncated.json")]  # fmt: skip
        self.grafana = [
            _fixture(f"grafana/{n}.json") for n in ("firing", "resolved", "value_string")
        ]
        self.pagerduty = [
            _fixture(f"pagerduty/{n}.json")
            for n in ("incident_triggered", "incident_acknowledged", "incident_resolved",
                      "incident_reopened", "incident_annotated", "service_updated")
        ]  # fmt: skip

    def any(self) -> Request:
        makers: list[Callable[[], Request]] = [
            self.am, self.am, self.am, self.grafana_request, self.grafana_request,
            self.pd, self.pd, self.interaction, self.interaction, self.interaction,
            self.command, self.command, self.ssl_check, self.probe,
        ]  # fmt: skip
        return self.rng.choice(makers)()

    def am(self) -> Request:
        document = json.loads(json.dumps(self.rng.choice(self.alertmanager)))
        if self.rng.random() < 0.5:  # a new group: a new page
            document["groupKey"] = f'{{}}:{{alertname="Fuzz{self.rng.randrange(40)}"}}'
        if self.rng.random() < 0.3:
            document["status"] = "resolved"
            for alert in document["alerts"]:
                alert["status"] = "resolved"
                alert["endsAt"] = "2024-05-01T11:00:00Z"
        return _json_request("/webhooks/alertmanager", document, "bearer")

    def grafana_request(self) -> Request:
        document = json.loads(json.dumps(self.rng.choice(self.grafana)))
        path = self.rng.choice(["/webhooks/grafana", "/webhooks/grafana", "/webhooks/alertmanager"])
        return _json_request(path, document, "bearer")

    def pd(self) -> Request:
        document = json.loads(json.dumps(self.rng.choice(self.pagerduty)))
        if self.rng.random() < 0.7:
            document["event"]["id"] = str(uuid.UUID(int=self.rng.getrandbits(128)))
        if self.rng.random() < 0.3 and isinstance(document["event"]["data"], dict):
            document["event"]["data"]["id"] = f"PFUZZ{self.rng.randrange(10)}"
        request = _json_request("/webhooks/pagerduty", document, "pagerduty")
        request.headers.append(("X-Webhook-Id", str(uuid.UUID(int=self.rng.getrandbits(128)))))
        return request

    def _page_key(self) -> str:
        keys = self.live.page_keys()
        return self.rng.choice(keys) if keys and self.rng.random() < 0.8 else "p0123456789abcdef"

    def _action(self) -> dict[str, Any]:
        rng = self.rng
        key = self._page_key()
        ref = f"INC-{rng.randrange(1, 4)}"
        user = rng.choice([PRIMARY, SECONDARY, RESPONDER, STRANGER, LEAD])
        choices: list[dict[str, Any]] = [
            {"type": "button", "action_id": "page.declare", "value": key},
            {"type": "button", "action_id": "page.dismiss", "value": key},
            {"type": "static_select", "action_id": "page.dismiss_reason",
             "selected_option": {"value": f"{key}|{rng.randrange(6)}"}},
            {"type": "button", "action_id": "page.escalate", "value": f"{key}|{rng.randrange(3)}"},
            {"type": "static_select", "action_id": "incident.severity",
             "block_id": f"incident|{ref}|roles",
             "selected_option": {"value": f"{ref}|{rng.choice(['critical', 'high', 'low'])}"}},
            {"type": "users_select",
             "action_id": rng.choice(["incident.comms", "incident.handoff"]),
             "block_id": f"incident|{ref}|roles", "selected_user": user},
            {"type": "button", "action_id": rng.choice([
                "incident.accept_handoff", "incident.escalate", "incident.issue",
                "incident.mitigated", "incident.resolve"]), "value": ref},
            {"type": "button", "action_id": rng.choice(["report.commander", "report.page"]),
             "value": f"fuzz report {rng.randrange(100)}"},
        ]  # fmt: skip
        action = rng.choice(choices)
        action["action_ts"] = f"{time.time():.6f}"
        return action

    def interaction(self) -> Request:
        user = self.rng.choice([PRIMARY, PRIMARY, RESPONDER, SECONDARY, STRANGER])
        payload: dict[str, Any] = {
            "type": "block_actions" if self.rng.random() < 0.9 else "view_submission",
            "user": {"id": user, "username": user.lower(), "team_id": "T0FUZZ"},
            "team": {"id": "T0FUZZ", "domain": "fuzz"},
            "container": {"type": "message", "message_ts": f"{time.time():.6f}",
                          "channel_id": "D0FUZZ"},
            "trigger_id": "1.2.3",
            "response_url": "http://127.0.0.1:9/actions/fuzz",
            "actions": [self._action() for _ in range(self.rng.choice([1, 1, 1, 2]))],
        }  # fmt: skip
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return Request("POST", "/slack/interactions", body, "slack-payload", "slack",
                       "application/x-www-form-urlencoded")  # fmt: skip

    def command(self) -> Request:
        rng = self.rng
        ref = rng.choice(["", "INC-1 ", "INC-2 "])
        text = rng.choice([
            "help", "status", f"status {ref}", f"declare fuzz incident {rng.randrange(9)}",
            f"severity {ref}high the checkout is down", f"role comms {ref}<@{RESPONDER}>",
            f"handoff {ref}<@{SECONDARY}>", f"accept {ref}", f"escalate {ref}need help",
            f"vendor {ref}acme", f"update {ref}still on it", f"flag {ref}outage",
            f"issue {ref}", f"mitigated {ref}", f"resolve {ref}fixed it", "postmortem done",
        ])  # fmt: skip
        form = {
            "command": "/incident", "text": text,
            "user_id": rng.choice([PRIMARY, RESPONDER, STRANGER]), "user_name": "fuzz",
            "channel_id": "C0FUZZINCS", "team_id": "T0FUZZ",
            "response_url": "http://127.0.0.1:9/commands/fuzz", "trigger_id": "1.2.3",
        }  # fmt: skip
        return Request("POST", "/slack/commands", urlencode(form).encode(), "form", "slack",
                       "application/x-www-form-urlencoded")  # fmt: skip

    def ssl_check(self) -> Request:
        body = (FIXTURES / "slack/ssl_check.form").read_bytes()
        return Request("POST", "/slack/commands", body, "form", None,
                       "application/x-www-form-urlencoded")  # fmt: skip

    def probe(self) -> Request:
        return Request("GET", self.rng.choice(["/healthz", "/readyz", "/metrics", "/openapi.json"]))


# -- mutations ----------------------------------------------------------------------

_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**31, 2**63, 2**64, 10**30, -(10**30), 1.5, 1e308, -0.0,
    "", " ", "x" * 50_000, "a\x00b", "\x00", "²", "١٢٣", "9" * 5000, "INC-²", "p|²",
    "INC-99999999999999999999", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59",
    "2024-02-30T00:00:00Z", "not a time", "<script>", "😀" * 100, {}, [], [[]], {"": ""},
    {"a": {"b": {"c": [1, {"d": None}]}}}, list(range(200)),
    {f"k{i}": f"v{i}" for i in range(2000)},
]  # fmt: skip
_RAW_VALUES = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", '"\\ud800"', '"x\\udc00y"',
    '"\\u0000"', "[" * 5000 + "]" * 5000, '{"a": 1, "a": 2}', "123456789" * 600,
]  # fmt: skip


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [here]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*here, key))
    elif isinstance(node, list):
        for index, child in enumerate(node[:20]):
            found += _paths(child, (*here, index))
    return found


def _set(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return document


class Mutator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    # the body: its structure, then its bytes ----------------------------------------

    def structure(self, request: Request) -> None:
        """A change at a random place in the JSON (the Slack payload's, for Slack)."""
        rng = self.rng
        text, form = self._document_text(request)
        if text is None:
            return
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):  # an earlier mutation broke it: leave it
            return
        path = rng.choice(_paths(document))
        what = rng.random()
        raw_value: str | None = None
        if what < 0.45:
            value = json.loads(json.dumps(rng.choice(_VALUES)))
            document = _set(document, path, value)
            request.mutations.append(f"{'.'.join(map(str, path))}={json.dumps(value)[:30]}")
        elif what < 0.65:
            raw_value = rng.choice(_RAW_VALUES)
            document = _set(document, path, PLACEHOLDER)
            request.mutations.append(f"{'.'.join(map(str, path))}={raw_value[:30]}")
        elif what < 0.8 and path:
            parent = document
            for part in path[:-1]:
                parent = parent[part]
            del parent[path[-1]]
            request.mutations.append(f"del {'.'.join(map(str, path))}")
        elif what < 0.9:
            value = [document] if not path else None
            document = value if not path else _set(document, path, [_get(document, path)])
            request.mutations.append(f"wrap {'.'.join(map(str, path))}")
        else:
            target = _get(document, path)
            if isinstance(target, dict):
                target[rng.choice(["unknown", "__proto__", "", "\u202e"])] = rng.choice(
                    _VALUES[:12]
                )
            request.mutations.append(f"add key at {'.'.join(map(str, path))}")
        text = json.dumps(document)
        if raw_value is not None:
            text = text.replace(json.dumps(PLACEHOLDER), raw_value, 1)
        self._put_document_text(request, text, form)

    def _document_text(self, request: Request) -> tuple[str | None, list[tuple[str, str]]]:
        if request.kind == "json":
            return request.body.decode(errors="replace"), []
        if request.kind == "slack-payload":
            form = parse_qsl(request.body.decode(errors="replace"), keep_blank_values=True)
            return dict(form).get("payload"), form
        return None, []

    def _put_document_text(self, request: Request, text: str, form: list[tuple[str, str]]) -> None:
        if request.kind == "json":
            request.body = text.encode(errors="surrogatepass")
        else:
            fields = [(k, text if k == "payload" else v) for k, v in form]
            request.body = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()

    def form(self, request: Request) -> None:
        rng = self.rng
        if request.kind not in ("form", "slack-payload"):
            return self.structure(request)
        fields = parse_qsl(request.body.decode(errors="replace"), keep_blank_values=True)
        choice = rng.randrange(7)
        if choice == 0 and fields:
            fields.append(rng.choice(fields))
            request.mutations.append("duplicate field")
        elif choice == 1 and fields:
            fields.pop(rng.randrange(len(fields)))
            request.mutations.append("drop field")
        elif choice == 2:
            odd = rng.choice(["[]", "1", "null", '"x"', "{", "{}"])
            fields = [(k, odd if k == "payload" else v) for k, v in fields]
            request.mutations.append("payload not an object")
        elif choice == 3 and fields:
            key = rng.choice(fields)[0]
            fields = [(k, rng.choice([str(x)[:5000] for x in _VALUES]) if k == key else v)
                      for k, v in fields]  # fmt: skip
            request.mutations.append(f"{key}=odd")
        elif choice == 4:
            request.body += rng.choice([b"&%00=%00", b"&text=%ff%fe", b"&&&", b"&=", b"&%zz"])
            request.mutations.append("odd form bytes")
            return None
        elif choice == 5:
            request.body = urlencode({"payload": "[" * 3000}).encode()
            request.mutations.append("payload nested deep")
            return None
        else:
            return self.structure(request)
        request.body = urlencode(fields).encode()
        return None

    def bytes_(self, request: Request) -> None:
        rng = self.rng
        body = bytearray(request.body)
        choice = rng.randrange(10)
        at = rng.randrange(len(body) + 1)
        if choice == 0 and body:
            body[min(at, len(body) - 1)] ^= 1 << rng.randrange(8)
            request.mutations.append("flip a bit")
        elif choice == 1:
            body[at:at] = rng.randbytes(rng.randrange(1, 20))
            request.mutations.append("insert random bytes")
        elif choice == 2:
            del body[at : at + rng.randrange(1, 200)]
            request.mutations.append("delete bytes")
        elif choice == 3:
            del body[at:]
            request.mutations.append("truncate")
        elif choice == 4:
            body[at:at] = rng.choice([b"\x00", b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90"])
            request.mutations.append("invalid UTF-8 / NUL bytes")
        elif choice == 5:
            body = bytearray()
            request.mutations.append("empty body")
        elif choice == 6:
            body = bytearray(bytes(body) * rng.choice([3, 50, 400]))
            request.mutations.append("repeated body")
        elif choice == 7:
            body[at:at] = body[at : at + rng.randrange(1, 400)]
            request.mutations.append("duplicate a slice")
        elif choice == 8:
            body = bytearray(rng.randbytes(rng.randrange(1, 3000)))
            request.mutations.append("random bytes")
        else:
            body = bytearray(b"[" * 5000 + b"]" * 5000)
            request.mutations.append("5000 nested [")
        request.body = bytes(body)

    # after signing: the request line and the headers -----------------------------------

    def headers(self, request: Request) -> None:
        rng = self.rng
        headers = request.headers
        choice = rng.randrange(12)
        names = {name.lower() for name, _ in headers}

        def replace(name: str, value: bytes | str | None) -> None:
            headers[:] = [(n, v) for n, v in headers if n.lower() != name.lower()]
            if value is not None:
                headers.append((name, value))

        if choice == 0:
            replace("Content-Type", rng.choice([
                None, "text/plain", "application/json", "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=fuzz", "application/json; charset=utf-16", "",
                b"\xff/\xfe", "application/json; charset=latin-1", "*/*",
            ]))  # fmt: skip
            request.mutations.append("content type")
        elif choice == 1:
            replace("Authorization", rng.choice([
                None, "Bearer wrong", b"Bearer \xff\xfe", "Basic !!!", "Basic " + "A" * 7000,
                b"\xff", "Bearer", "bearer " + AM_TOKEN, "Basic YWxlcnRtYW5hZ2VyOnc=", " ",
            ]))  # fmt: skip
            request.mutations.append("authorization")
        elif choice == 2:
            replace("X-Slack-Request-Timestamp", rng.choice([
                None, "abc", "1" * 5000, "١٧٠٠٠٠٠٠٠٠", "-5", "", "1000000000", "99999999999",
                "1e9", b"\xff\xfe", " 17 ",
            ]))  # fmt: skip
            request.mutations.append("slack timestamp")
        elif choice == 3:
            replace("X-Slack-Signature", rng.choice([
                None, "v0=", "v0=zz", b"v0=\xff\xfe", "v0=" + "0" * 64, "v1=abc", "é",
            ]))  # fmt: skip
            request.mutations.append("slack signature")
        elif choice == 4:
            replace("X-PagerDuty-Signature", rng.choice([
                None, "v1=", "v2=abc", b"v1=\xff\xfe", "v1=00," * 500, ",,,", "v1=é",
            ]))  # fmt: skip
            request.mutations.append("pagerduty signature")
        elif choice == 5:
            replace("X-Webhook-Id", rng.choice([b"\xff\xfe", "w" * 7000, "", "é", "a b\tc"]))
            request.mutations.append("webhook id")
        elif choice == 6:
            headers[:] = [(n, v) for n, v in headers if n.lower() != "content-length"]
            headers.append(("Transfer-Encoding", "chunked"))
            request.body = _chunked(request.body, rng)
            request.mutations.append("chunked")
        elif choice == 7:
            boundary = "fuzzboundary"
            request.body = (
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n".encode()
                + request.body + f"\r\n--{boundary}--\r\n".encode()
            )  # fmt: skip
            replace("Content-Type", f"multipart/form-data; boundary={boundary}")
            request.mutations.append("multipart")
        elif choice == 8:
            request.method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST"])
            request.mutations.append(f"method {request.method}")
        elif choice == 9:
            request.path = rng.choice([
                request.path + "/", request.path + "?x=%ff&y", "/webhooks/%ff", "/" + "a" * 3000,
                request.path.upper(), "/webhooks/../webhooks/alertmanager", "/ui/x",
            ])  # fmt: skip
            request.mutations.append("path")
        elif choice == 10 and rng.random() < 0.5:
            encoding = rng.choice(["gzip", "deflate", "br", "zstd", "gzip, deflate", "bogus"])
            if rng.random() < 0.5 and encoding in ("gzip", "deflate"):
                request.body = (gzip.compress if encoding == "gzip" else zlib.compress)(
                    request.body
                )
            headers.append(("Content-Encoding", encoding))
            request.mutations.append(f"content-encoding {encoding}")
        elif choice == 10 and names:
            name, value = rng.choice(headers)
            headers.append((name, value))
            request.mutations.append(f"duplicate {name}")
        else:
            headers.append((rng.choice(["X-Fuzz", "Accept", "Accept-Encoding"]),
                            rng.choice(["x" * 6000, "gzip", b"\xff", "*/*"])))  # fmt: skip
            request.mutations.append("extra header")


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    node = document
    for part in path:
        node = node[part]
    return node


def _chunked(body: bytes, rng: random.Random) -> bytes:
    out = bytearray()
    start = 0
    while start < len(body):
        size = rng.randrange(1, 512)
        chunk = body[start : start + size]
        out += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        start += size
    return bytes(out + b"0\r\n\r\n")


def sign(request: Request, now: int) -> None:
    """The headers a real sender adds for the body as it now is."""
    headers: list[tuple[str, bytes | str]] = []
    if request.content_type:
        headers.append(("Content-Type", request.content_type))
    if request.auth == "bearer":
        headers.append(("Authorization", f"Bearer {AM_TOKEN}"))
    elif request.auth == "pagerduty":
        headers.append(("X-PagerDuty-Signature", pd_sign(PD_SECRET.encode(), request.body)))
    elif request.auth == "slack":
        # By hand, over the bytes: slack_sdk's signer refuses bodies that are not UTF-8.
        base = f"v0:{now}:".encode() + request.body
        digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
        headers += [("X-Slack-Request-Timestamp", str(now)), ("X-Slack-Signature", f"v0={digest}")]
    request.headers = headers + request.headers


# -- the run -------------------------------------------------------------------------


@dataclass
class Outcome:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # 5xx, no answer
    misshapen: list[str] = field(default_factory=list)  # a 4xx that is not our JSON error
    sent: int = 0


def _describe(request: Request) -> str:
    body = request.body[:160]
    return f"{request.endpoint} [{'; '.join(request.mutations)}] body={body!r}"


async def _one(live: Live, request: Request, outcome: Outcome) -> None:
    data = raw.request_bytes(request.method, request.path, request.headers, request.body)
    try:
        answer = await raw.send(live.host, live.port, data, seconds=20)
    except (TimeoutError, OSError) as exc:
        outcome.failures.append(f"no answer ({exc!r}): {_describe(request)}")
        outcome.statuses[(request.endpoint, 0)] += 1
        return
    outcome.sent += 1
    outcome.statuses[(request.endpoint, answer.status)] += 1
    if answer.status >= 500 or answer.status == 0:
        outcome.failures.append(f"{answer.status}: {_describe(request)} -> {answer.body[:200]!r}")
    elif 400 <= answer.status < 500 and not _error_shape(answer.body):
        outcome.misshapen.append(f"{answer.status}: {_describe(request)} -> {answer.body[:120]!r}")


def _error_shape(body: bytes) -> bool:
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(document, dict)
        and set(document) <= {"error", "message", "field"}
        and isinstance(document.get("error"), str)
        and isinstance(document.get("message"), str)
    )


async def fuzz(live: Live, count: int, seed: int, concurrency: int = 8) -> Outcome:
    rng = random.Random(seed)
    seeds = Seeds(rng, live)
    mutator = Mutator(rng)
    outcome = Outcome()
    limit = asyncio.Semaphore(concurrency)
    tasks = []

    async def run(request: Request) -> None:
        async with limit:
            await _one(live, request, outcome)

    for index in range(count):
        request = seeds.any()
        if index % 10:  # every tenth stays valid, so the lifecycle moves on
            for _ in range(rng.choice([1, 1, 2, 3])):
                stage = rng.random()
                if stage < 0.35:
                    mutator.structure(request)
                elif stage < 0.5:
                    mutator.form(request)
                elif stage < 0.7:
                    mutator.bytes_(request)
        sign(request, int(time.time()))
        if index % 10 and rng.random() < 0.35:
            mutator.headers(request)
        tasks.append(asyncio.create_task(run(request)))
        if len(tasks) >= concurrency * 4:  # keep the page keys fresh for the buttons
            await asyncio.gather(*tasks)
            tasks.clear()
    await asyncio.gather(*tasks)
    return outcome


def report(outcome: Outcome, live: Live, count: int, seed: int, store: str) -> bool:
    print(f"mutation fuzz: {count} requests, seed {seed}, store {store}")
    endpoints = sorted({endpoint for endpoint, _ in outcome.statuses})
    codes = sorted({code for _, code in outcome.statuses})
    width = max(len(e) for e in endpoints) + 2
    print("endpoint".ljust(width) + "".join(f"{c:>6}" for c in codes))
    for endpoint in endpoints:
        row = "".join(f"{outcome.statuses.get((endpoint, c), 0):>6}" for c in codes)
        print(endpoint.ljust(width) + row)
    totals = Counter[int]()
    for (_, code), n in outcome.statuses.items():
        totals[code] += n
    print("by status: " + ", ".join(f"{code}: {n}" for code, n in sorted(totals.items())))
    five = sum(n for code, n in totals.items() if code >= 500)
    unanswered = totals.get(0, 0)
    problems = live.log_problems()
    print(
        f"5xx: {five}   unanswered: {unanswered}   4xx without the JSON error shape: "
        f"{len(outcome.misshapen)}   unhandled errors in the router's log: {len(problems)}"
    )
    for line in (outcome.failures + outcome.misshapen)[:20]:
        print("  " + line)
    for line in problems[:10]:
        print("  log: " + line)
    if not live.alive():
        print("the router died")
    ok = not five and not unanswered and not outcome.misshapen and not problems and live.alive()
    print("ok" if ok else "FAILED")
    return ok


def run(count: int, seed: int, store: str = "sqlite", workdir: Path | None = None) -> bool:
    """Start a router, fuzz it, print the figures; True when nothing failed."""
    with contextlib.ExitStack() as stack:
        url = None
        if store == "postgres":
            from tests.conftest import postgres_schema

            url = stack.enter_context(postgres_schema("router_fuzz_"))
        elif store != "sqlite":
            url = store
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="router-fuzz-"))
        live = stack.enter_context(live_router(workdir or Path(scratch), store_url=url))
        outcome = asyncio.run(fuzz(live, count, seed))
        return report(outcome, live, count, seed, store)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz.mutate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--store", default="sqlite", help="sqlite, postgres, or a store URL")
    parser.add_argument("--workdir", type=Path, help="keep the router's config, store and log here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    return 0 if run(args.count, seed, args.store, args.workdir) else 1


if __name__ == "__main__":
    sys.exit(main())
