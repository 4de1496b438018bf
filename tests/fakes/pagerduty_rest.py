"""A loopback fake of PagerDuty's REST API ``GET /oncalls``, for the on-call provider.

Built to /work/shared/protocols.md section 8.4 and PagerDuty's OpenAPI reference
(PagerDuty/api-schema ``reference/REST/openapiv3.json``: ``/oncalls``, ``Oncall``,
``Pagination``, the error object)::

    async with FakePagerDutyRest(token="pd-token") as pd:
        pd.add_user("PJANE01", "Jane Doe", "jane@example.com")
        pd.add_shift("PSCHED1", "PJANE01", start, end)
        config = PagerDutyOncallConfig(api_url=pd.api_url, schedules={"eng-primary": "PSCHED1"})

What it holds to:

- Only ``GET /oncalls`` exists: another path is 404, another verb 405, both with
  PagerDuty's error object ``{"error": {"message", "code"}}``.
- Auth is ``Authorization: Token token=<token>``; a missing or wrong header (``Bearer``
  included) is 401 ``{"error": {"message": "Authentication failed", "code": 2006}}``.
- ``Accept`` must be ``application/vnd.pagerduty+json;version=2`` (the versioning
  header): anything else is 406. Strict on purpose; PagerDuty itself may default.
- Query: ``schedule_ids[]`` (repeatable), ``since``/``until`` (ISO 8601 with an offset;
  ``until`` before ``since`` or more than 90 days ahead is 400 code 2001),
  ``earliest=true`` (only the earliest on-call per escalation policy, level and user),
  ``include[]=users`` (the ``user`` reference becomes a user object with ``email``),
  ``time_zone`` (times rendered in it; by default in the account's zone,
  America/New_York, so a client must read the offsets), ``limit`` (default 25, at most
  100) and ``offset``. An unknown parameter is 400: the router sends none.
- Each shift of a schedule appears once per escalation policy using the schedule
  (``use_schedule`` says which, at which level), as PagerDuty does; shifts overlapping
  the window are returned with their real start and end, not clipped.
- The answer is ``{"oncalls": [...], "limit", "offset", "more", "total": null}``.
- Every answer carries ``ratelimit-limit``, ``ratelimit-remaining`` and
  ``ratelimit-reset``. ``fail_next(status, times=n, reset=s)`` answers the next n
  requests with 429 (``ratelimit-reset: s``) or a 5xx before anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = ["ACCEPT", "FakePagerDutyRest", "RestCall"]

ACCEPT = "application/vnd.pagerduty+json;version=2"
ACCOUNT_ZONE = "America/New_York"
_PARAMS = frozenset(
    {"schedule_ids[]", "since", "until", "earliest", "include[]", "time_zone", "limit", "offset"}
)
_MAX_AHEAD = timedelta(days=90)
_RATE_LIMIT = 960


@dataclass
class RestCall:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    status: int = 0
    response: Any = None


@dataclass
class _Shift:
    schedule: str
    user: str
    start: datetime
    end: datetime


@dataclass
class _Policy:
    id: str
    name: str
    levels: dict[str, int] = field(default_factory=dict)  # schedule id -> level


class FakePagerDutyRest(LoopbackServer):
    def __init__(
        self, token: str = "pd-rest-token", now: Callable[[], datetime] | None = None
    ) -> None:
        """``now``: PagerDuty's clock (default ``since``, the 90-day limit)."""
        super().__init__()
        self.token = token
        self._now = now or (lambda: datetime.now(UTC))
        self.users: dict[str, dict[str, Any]] = {}
        self.schedules: dict[str, str] = {}  # id -> name
        self.shifts: list[_Shift] = []
        self.policies: dict[str, _Policy] = {}
        self.calls: list[RestCall] = []
        self._faults: list[list[Any]] = []  # [status, times left, reset]

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    @property
    def api_url(self) -> str:
        return self.origin

    # ------------------------------------------------------------------ setting up

    def add_user(self, user_id: str, name: str, email: str) -> None:
        self.users[user_id] = {"name": name, "email": email}

    def add_schedule(self, schedule_id: str, name: str | None = None) -> None:
        """A schedule, used at level 1 of an escalation policy of its own."""
        self.schedules.setdefault(schedule_id, name or f"Schedule {schedule_id}")
        if not any(schedule_id in p.levels for p in self.policies.values()):
            self.use_schedule(f"PEP{schedule_id[-4:]}", schedule_id, 1)

    def use_schedule(self, policy_id: str, schedule_id: str, level: int) -> None:
        policy = self.policies.setdefault(policy_id, _Policy(policy_id, f"Policy {policy_id}"))
        policy.levels[schedule_id] = level

    def add_shift(self, schedule_id: str, user_id: str, start: datetime, end: datetime) -> None:
        if user_id not in self.users:
            raise ValueError(f"unknown user {user_id}")
        self.add_schedule(schedule_id)
        self.shifts.append(_Shift(schedule_id, user_id, start.astimezone(UTC), end.astimezone(UTC)))

    def rotate(
        self, schedule_id: str, users: list[str], start: datetime, length: timedelta, count: int
    ) -> None:
        """``count`` shifts of ``length``, the users taking turns from ``start``."""
        for i in range(count):
            self.add_shift(
                schedule_id, users[i % len(users)], start + i * length, start + (i + 1) * length
            )

    def fail_next(self, status: int = 503, times: int = 1, reset: int = 1) -> None:
        if status != 429 and status < 500:
            raise ValueError("fail_next takes 429 or a 5xx status")
        self._faults.append([status, times, reset])

    def requests_to(self, path: str) -> list[RestCall]:
        return [c for c in self.calls if c.path == path]

    def summary(self) -> str:
        return "\n".join(f"{c.method} {c.path} {c.query} -> {c.status}" for c in self.calls)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.Response:
        call = RestCall(
            request.method,
            request.path,
            list(request.query.items()),
            dict(request.headers),
        )
        self.calls.append(call)
        status, body, headers = self._respond(request)
        call.status, call.response = status, body
        headers |= {
            "ratelimit-limit": str(_RATE_LIMIT),
            "ratelimit-remaining": "0" if status == 429 else str(_RATE_LIMIT - len(self.calls)),
            "ratelimit-reset": headers.get("ratelimit-reset", "60"),
        }
        return web.json_response(body, status=status, headers=headers)

    def _respond(self, request: web.Request) -> tuple[int, Any, dict[str, str]]:
        if request.path != "/oncalls":
            return 404, _error("Not Found", 2100), {}
        if request.method != "GET":
            return 405, _error("Method Not Allowed", 2100), {}
        if self._faults:
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] <= 0:
                self._faults.pop(0)
            if fault[0] == 429:
                return 429, _error("Rate Limit Exceeded", 2020), {"ratelimit-reset": str(fault[2])}
            return fault[0], _error("Internal Server Error", 5000), {}
        if request.headers.get("Authorization") != f"Token token={self.token}":
            return 401, _error("Authentication failed", 2006), {}
        if request.headers.get("Accept") != ACCEPT:
            return 406, _error("Not Acceptable: send Accept: " + ACCEPT, 2001), {}
        try:
            return 200, self._oncalls(request), {}
        except _Invalid as exc:
            return 400, _error("Invalid Input Provided", exc.code, [str(exc)]), {}

    def _oncalls(self, request: web.Request) -> dict[str, Any]:
        query = request.query
        unknown = sorted(set(query) - _PARAMS)
        if unknown:
            raise _Invalid(f"unknown parameters: {', '.join(unknown)}")
        zone = ZoneInfo(query.get("time_zone", ACCOUNT_ZONE))
        now = self._now()
        since = _time(query.get("since"), "since") or now
        until = _time(query.get("until"), "until") or now
        if until < since:
            raise _Invalid("until must not be before since", 2005)
        if until > now + _MAX_AHEAD:
            raise _Invalid("on-call shifts are limited to 90 days in the future", 2005)
        limit = min(int(query.get("limit", "25")), 100)
        offset = int(query.get("offset", "0"))
        wanted = set(query.getall("schedule_ids[]", []))
        users_included = "users" in query.getall("include[]", [])
        earliest = query.get("earliest") == "true"
        entries: list[tuple[datetime, int, _Policy, _Shift]] = []
        for policy in self.policies.values():
            for schedule, level in policy.levels.items():
                if wanted and schedule not in wanted:
                    continue
                for shift in self.shifts:
                    if shift.schedule == schedule and shift.start < until and shift.end > since:
                        entries.append((shift.start, level, policy, shift))
        entries.sort(key=lambda e: (e[0], e[1], e[2].id, e[3].user))
        if earliest:
            seen: set[tuple[str, int, str]] = set()
            first = []
            for entry in entries:
                key = (entry[2].id, entry[1], entry[3].user)
                if key not in seen:
                    seen.add(key)
                    first.append(entry)
            entries = first
        page = entries[offset : offset + limit]
        return {
            "oncalls": [self._entry(p, lvl, s, zone, users_included) for _, lvl, p, s in page],
            "limit": limit,
            "offset": offset,
            "more": offset + limit < len(entries),
            "total": None,
        }

    def _entry(
        self, policy: _Policy, level: int, shift: _Shift, zone: ZoneInfo, users: bool
    ) -> dict[str, Any]:
        info = self.users[shift.user]
        user: dict[str, Any] = {
            "id": shift.user,
            "type": "user_reference",
            "summary": info["name"],
            "self": f"{self.origin}/users/{shift.user}",
            "html_url": f"https://acme.pagerduty.com/users/{shift.user}",
        }
        if users:
            user |= {
                "type": "user",
                "name": info["name"],
                "email": info["email"],
                "time_zone": ACCOUNT_ZONE,
                "role": "user",
            }
        return {
            "escalation_policy": {
                "id": policy.id,
                "type": "escalation_policy_reference",
                "summary": policy.name,
                "self": f"{self.origin}/escalation_policies/{policy.id}",
                "html_url": f"https://acme.pagerduty.com/escalation_policies/{policy.id}",
            },
            "escalation_level": level,
            "schedule": {
                "id": shift.schedule,
                "type": "schedule_reference",
                "summary": self.schedules[shift.schedule],
                "self": f"{self.origin}/schedules/{shift.schedule}",
                "html_url": f"https://acme.pagerduty.com/schedules/{shift.schedule}",
            },
            "user": user,
            "start": shift.start.astimezone(zone).isoformat(),
            "end": shift.end.astimezone(zone).isoformat(),
        }


class _Invalid(Exception):
    def __init__(self, message: str, code: int = 2001) -> None:
        super().__init__(message)
        self.code = code


def _error(message: str, code: int, errors: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return {"error": body}


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"{name} is not an ISO 8601 time", 2004) from None
    if parsed.tzinfo is None:
        raise _Invalid(f"{name} has no UTC offset", 2004)
    return parsed.astimezone(UTC)
