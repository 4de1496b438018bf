"""A loopback fake of Atlassian Statuspage's REST API v1 (the incidents of one page).

Built to /work/shared/protocols.md section 8.6 and Statuspage's OpenAPI description
(``Incident``, ``IncidentUpdate``, ``postPagesPageIdIncidents``, ``ErrorEntity``, as
generated clients publish it; api.statuspage.io/v1)::

    async with FakeStatuspage(api_key="sp-key", page_id="gytm4qzbx9t6",
                              components={"8kbf7d35c070": "API"}) as sp:
        adapter = StatuspageAdapter(StatuspageConfig(api_url=sp.api_url, ...), "sp-key")

What it holds to:

- ``Authorization: OAuth <key>`` only (``Bearer`` is refused like a wrong key): 401
  ``{"error": "Could not authenticate"}``, Statuspage's own answer.
- ``GET``/``POST /v1/pages/{page}/incidents``, ``GET .../incidents/unresolved``
  (``page``, ``per_page``), ``GET``/``PATCH .../incidents/{id}``. Another page or
  incident is 404 ``{"error": "The requested resource could not be found."}``; another
  verb 405. Bodies are JSON ``{"incident": {...}}`` with ``Content-Type:
  application/json`` (400 otherwise).
- Creating needs ``name`` (at most 255 characters); ``status`` is investigating,
  identified, monitoring or resolved; ``body`` at most 25,000 characters;
  ``components`` maps known component ids to operational, under_maintenance,
  degraded_performance, partial_outage or major_outage; ``metadata``'s top-level values
  must be objects. A violation is 422 ``{"error": "<what>"}`` (the wording is this
  fake's; Statuspage documents only that the body is an ``ErrorEntity``).
- Incidents have Statuspage's shape: ``id``, ``name``, ``status``, ``impact`` (from
  the worst component status), ``shortlink``, ``page_id``, ``metadata``, the
  timestamps, ``components`` and ``incident_updates`` (newest first, each with
  ``status``, ``body``, ``affected_components``, ``deliver_notifications``...). Each
  create or PATCH with a status or body adds an update; components change status on
  the page; ``notified`` lists the updates delivered to subscribers.
- ``fail_next(status, times=n, retry_after=s, method=...)`` answers the next n requests
  (of that verb) with 420, 429 or a 5xx (``commit=True``: carry the request out first,
  like a lost answer).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["FakeStatuspage", "StatuspageCall"]

_STATUSES = ("investigating", "identified", "monitoring", "resolved")
_COMPONENT = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
_IMPACT = {"major_outage": "critical", "partial_outage": "major", "degraded_performance": "minor"}
_NOT_FOUND = {"error": "The requested resource could not be found."}


@dataclass
class StatuspageCall:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0
    response: Any = None


class _Unprocessable(Exception):
    pass


class FakeStatuspage(LoopbackServer):
    def __init__(self, api_key: str, page_id: str, components: dict[str, str]) -> None:
        super().__init__()
        self.api_key = api_key
        self.page_id = page_id
        self.components = {
            cid: {"id": cid, "name": name, "status": "operational"}
            for cid, name in components.items()
        }
        self.incidents: dict[str, dict[str, Any]] = {}
        self.calls: list[StatuspageCall] = []
        self.notified: list[str] = []  # update ids delivered to subscribers
        self._faults: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    @property
    def api_url(self) -> str:
        return f"{self.origin}/v1"

    def fail_next(
        self,
        status: int = 429,
        times: int = 1,
        retry_after: int | None = None,
        *,
        commit: bool = False,
        method: str | None = None,
    ) -> None:
        """``method``: only requests with that HTTP verb fail (default: any)."""
        if status not in (420, 429) and status < 500:
            raise ValueError("fail_next takes 420, 429 or a 5xx status")
        self._faults.append(
            {
                "status": status,
                "times": times,
                "retry_after": retry_after,
                "commit": commit,
                "method": method,
            }
        )

    def _fault(self, method: str) -> dict[str, Any] | None:
        for fault in self._faults:
            if fault["method"] in (None, method):
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def writes(self) -> list[StatuspageCall]:
        return [c for c in self.calls if c.method in ("POST", "PATCH") and c.status < 300]

    def summary(self) -> str:
        return "\n".join(f"{c.method} {c.path} -> {c.status}" for c in self.calls)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        call = StatuspageCall(
            request.method, request.path, dict(request.query), dict(request.headers), body
        )
        self.calls.append(call)
        headers: dict[str, str] = {}
        fault = self._fault(request.method)
        if fault is not None and not fault["commit"]:
            call.status, call.response = (
                fault["status"],
                {
                    "error": "Rate limit exceeded"
                    if fault["status"] in (420, 429)
                    else "Internal Server Error"
                },
            )
        else:
            call.status, call.response = self._respond(request, body)
            if fault is not None:
                call.status, call.response = fault["status"], {"error": "Internal Server Error"}
        if fault is not None and fault["retry_after"] is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        return web.json_response(call.response, status=call.status, headers=headers)

    def _respond(self, request: web.Request, body: Any) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"OAuth {self.api_key}":
            return 401, {"error": "Could not authenticate"}
        match = re.fullmatch(r"/v1/pages/([^/]+)/incidents(?:/([^/]+))?", request.path)
        if not match or match[1] != self.page_id:
            return 404, _NOT_FOUND
        target, method = match[2], request.method
        if method in ("POST", "PATCH", "PUT") and (
            request.content_type != "application/json"
            or not isinstance(body, dict)
            or not isinstance(body.get("incident"), dict)
        ):
            return 400, {"error": 'Body must be JSON {"incident": {...}}'}
        try:
            if target is None and method == "GET":
                return 200, list(reversed(self.incidents.values()))
            if target is None and method == "POST":
                return 201, self._create(body["incident"])
            if target == "unresolved" and method == "GET":
                page = int(request.query.get("page", "1"))
                per_page = int(request.query.get("per_page", "100"))
                open_ = [i for i in reversed(self.incidents.values()) if i["status"] != "resolved"]
                return 200, open_[(page - 1) * per_page : page * per_page]
            if target is not None and target in self.incidents:
                if method == "GET":
                    return 200, self.incidents[target]
                if method == "PATCH":
                    return 200, self._update(self.incidents[target], body["incident"])
            elif target is not None and method in ("GET", "PATCH"):
                return 404, _NOT_FOUND
        except _Unprocessable as exc:
            return 422, {"error": str(exc)}
        return 405, {"error": "Method Not Allowed"}

    def _check(self, fields: dict[str, Any], creating: bool) -> None:
        name = fields.get("name")
        if creating and (not isinstance(name, str) or not name.strip()):
            raise _Unprocessable("Name can't be blank")
        if name is not None and len(str(name)) > 255:
            raise _Unprocessable("Name is too long (maximum is 255 characters)")
        if "status" in fields and fields["status"] not in _STATUSES:
            raise _Unprocessable("Status is not included in the list")
        if len(str(fields.get("body") or "")) > 25_000:
            raise _Unprocessable("Body is too long (maximum is 25000 characters)")
        components = fields.get("components") or {}
        ids = list(components) + list(fields.get("component_ids") or [])
        if any(c not in self.components for c in ids):
            raise _Unprocessable("Components are invalid")
        if any(s not in _COMPONENT for s in components.values()):
            raise _Unprocessable("Component status is not included in the list")
        metadata = fields.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or not all(isinstance(v, dict) for v in metadata.values())
        ):
            raise _Unprocessable("Metadata top-level values must be objects")
        unknown = set(fields) - {
            "name",
            "status",
            "body",
            "components",
            "component_ids",
            "deliver_notifications",
            "metadata",
            "impact_override",
        }
        if unknown:
            raise _Unprocessable(f"Unknown fields: {', '.join(sorted(unknown))}")

    def _create(self, fields: dict[str, Any]) -> dict[str, Any]:
        self._check(fields, creating=True)
        now = _now()
        incident_id = _id()
        incident: dict[str, Any] = {
            "id": incident_id,
            "name": fields["name"],
            "status": fields.get("status", "investigating"),
            "created_at": now,
            "updated_at": now,
            "started_at": now,
            "monitoring_at": None,
            "resolved_at": None,
            "impact": "none",
            "impact_override": None,
            "shortlink": f"http://stspg.io/{secrets.token_hex(4)}",
            "page_id": self.page_id,
            "metadata": fields.get("metadata") or {},
            "postmortem_body": None,
            "components": [],
            "incident_updates": [],
        }
        self.incidents[incident_id] = incident
        self._apply(incident, fields, now)
        return incident

    def _update(self, incident: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        self._check(fields, creating=False)
        now = _now()
        if "name" in fields:
            incident["name"] = fields["name"]
        if "metadata" in fields:
            incident["metadata"] = fields["metadata"]
        self._apply(incident, fields, now)
        incident["updated_at"] = now
        return incident

    def _apply(self, incident: dict[str, Any], fields: dict[str, Any], now: str) -> None:
        affected = []
        for cid, status in (fields.get("components") or {}).items():
            component = self.components[cid]
            affected.append(
                {
                    "code": cid,
                    "name": component["name"],
                    "old_status": component["status"],
                    "new_status": status,
                }
            )
            component["status"] = status
        ids = set(fields.get("component_ids") or []) | set(fields.get("components") or {})
        if ids:
            incident["components"] = [dict(self.components[c]) for c in sorted(ids)]
        worst = [c["status"] for c in incident["components"]]
        incident["impact"] = next(
            (
                _IMPACT[s]
                for s in ("major_outage", "partial_outage", "degraded_performance")
                if s in worst
            ),
            "none",
        )
        status = fields.get("status", incident["status"])
        incident["status"] = status
        if status == "monitoring" and incident["monitoring_at"] is None:
            incident["monitoring_at"] = now
        if status == "resolved":
            incident["resolved_at"] = now
        if "body" in fields or "status" in fields:
            deliver = fields.get("deliver_notifications", True)
            update = {
                "id": _id(),
                "incident_id": incident["id"],
                "status": status,
                "body": fields.get("body") or "",
                "created_at": now,
                "updated_at": now,
                "display_at": now,
                "affected_components": affected or None,
                "deliver_notifications": deliver,
                "custom_tweet": None,
                "tweet_id": None,
            }
            incident["incident_updates"].insert(0, update)
            if deliver:
                self.notified.append(update["id"])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))
