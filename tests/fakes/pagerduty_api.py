"""A loopback fake of PagerDuty's Events API v2 (``POST /v2/enqueue``).

Built to /work/shared/protocols.md sections 3 and 7::

    async with FakePagerDuty(routing_key=ROUTING_KEY) as pd:
        adapter = PagerDutyAdapter(pd.events_url, ROUTING_KEY)
        ...
        assert pd.events[0]["event_action"] == "trigger"

What it holds to:

- Only ``POST /v2/enqueue`` exists (another path: 404; another verb: 405). The body
  must be JSON sent as ``Content-Type: application/json``; anything else is a 400
  (this fake being strict: PagerDuty's answer to a wrong content type is not
  documented).
- No auth header: the ``routing_key`` in the body must be 32 characters and equal the
  configured one, or 400 ``Invalid routing key``.
- ``event_action`` is trigger/acknowledge/resolve; ``dedup_key`` at most 255 chars
  (required for acknowledge/resolve; a trigger without one gets a fresh key);
  triggers need ``payload.summary``, ``payload.source`` and ``payload.severity`` in
  critical/error/warning/info. Every rejection is 400
  ``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``.
- Success is **202** ``{"status": "success", "message": "Event processed",
  "dedup_key": ...}``. ``alerts`` tracks each dedup_key's state; an ack or resolve
  of no open alert is accepted and dropped, as PagerDuty does.
- ``fail_next(status=429 | 5xx, times=n)`` answers the next n requests with that
  status before validating them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["DEFAULT_ROUTING_KEY", "FakePagerDuty", "PagerDutyCall"]

DEFAULT_ROUTING_KEY = "R0UT1NGK3Y0123456789abcdef012345"  # 32 chars, like a real one
_ACTIONS = ("trigger", "acknowledge", "resolve")
_SEVERITIES = ("critical", "error", "warning", "info")
_MAX_DEDUP_KEY = 255
_STATES = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}


@dataclass
class PagerDutyCall:
    """One request as the fake saw it, and what it answered."""

    http_method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    response: dict[str, Any] = field(default_factory=dict)


class _Invalid(Exception):
    def __init__(self, *errors: str) -> None:
        super().__init__(*errors)
        self.errors = list(errors)


class FakePagerDuty(LoopbackServer):
    """Events API v2 on 127.0.0.1 with a random port."""

    def __init__(self, routing_key: str = DEFAULT_ROUTING_KEY) -> None:
        super().__init__()
        self.routing_key = routing_key
        self.calls: list[PagerDutyCall] = []
        self.events: list[dict[str, Any]] = []  # accepted events, routing_key included
        self.alerts: dict[str, str] = {}  # dedup_key -> triggered/acknowledged/resolved
        self._faults: list[list[int]] = []  # [status, times left]

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/v2/enqueue", self._handle)

    @property
    def events_url(self) -> str:
        return f"{self.origin}/v2/enqueue"

    def fail_next(self, status: int = 429, times: int = 1) -> None:
        if status != 429 and status < 500:
            raise ValueError("fail_next takes 429 or a 5xx status")
        self._faults.append([status, times])

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        call = PagerDutyCall(request.method, request.path, dict(request.headers), body)
        self.calls.append(call)
        call.status, call.response = self._respond(request, body)
        return web.json_response(call.response, status=call.status)

    def _respond(self, request: web.Request, body: Any) -> tuple[int, dict[str, Any]]:
        if request.method != "POST":
            return 405, {"status": "method not allowed", "message": "Only POST is supported"}
        if self._faults:
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] <= 0:
                self._faults.pop(0)
            if fault[0] == 429:
                message = "Requests for this service are arriving too quickly. Please retry later."
                return 429, {"status": "throttle event", "message": message}
            return fault[0], {"status": "error", "message": "Internal server error"}
        try:
            if request.content_type != "application/json":
                raise _Invalid("Content-Type must be application/json")
            if not isinstance(body, dict):
                raise _Invalid("Body is not a JSON object")
            dedup_key = self._validate(body)
        except _Invalid as exc:
            return 400, {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": exc.errors,
            }
        self.events.append(body)
        action = body["event_action"]
        if action == "trigger" or self.alerts.get(dedup_key) in ("triggered", "acknowledged"):
            self.alerts[dedup_key] = _STATES[action]
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}

    def _validate(self, body: dict[str, Any]) -> str:
        key = body.get("routing_key")
        if not isinstance(key, str) or len(key) != 32 or key != self.routing_key:
            raise _Invalid("Invalid routing key")
        action = body.get("event_action")
        if action not in _ACTIONS:
            raise _Invalid("'event_action' is missing or invalid")
        dedup_key = body.get("dedup_key")
        if dedup_key is None or dedup_key == "":
            if action != "trigger":
                raise _Invalid("'dedup_key' is missing or blank")
            dedup_key = uuid.uuid4().hex
        if not isinstance(dedup_key, str):
            raise _Invalid("'dedup_key' must be a string")
        if len(dedup_key) > _MAX_DEDUP_KEY:
            raise _Invalid(f"'dedup_key' is longer than {_MAX_DEDUP_KEY} characters")
        if action == "trigger":
            payload = body.get("payload")
            if not isinstance(payload, dict):
                raise _Invalid("'payload' is missing or invalid")
            errors = [
                f"'payload.{name}' is missing or blank"
                for name in ("summary", "source")
                if not isinstance(payload.get(name), str) or not payload[name].strip()
            ]
            if payload.get("severity") not in _SEVERITIES:
                errors.append("'payload.severity' is missing or invalid")
            if errors:
                raise _Invalid(*errors)
        return dedup_key
