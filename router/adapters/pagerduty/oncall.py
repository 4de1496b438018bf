"""Who is on call, from PagerDuty's REST API: a task that keeps a snapshot fresh.

The core asks ``who_is_on(role, at)`` synchronously and without I/O, so this adapter
never answers a question itself. Every ``refresh_seconds`` it asks PagerDuty for the
shifts of the configured schedules over the next ``cache_seconds``, maps each person
to a Slack user id, and swaps in a new immutable ``OncallSnapshot``; ``current()``
hands out an ``OncallView`` (snapshot, config fallback, failure state) that a decision
uses from start to end.

The request, per PagerDuty's REST reference (``GET /oncalls``)::

    GET {api_url}/oncalls?schedule_ids[]=P1&schedule_ids[]=P2&since=..&until=..
        &include[]=users&time_zone=UTC&limit=100&offset=0
    Authorization: Token token=<PAGERDUTY_API_TOKEN>
    Accept: application/vnd.pagerduty+json;version=2

paged with ``offset`` while the answer says ``more``. ``include[]=users`` turns each
``user`` reference into the user object, whose ``email`` is what Slack is asked about
(``users.lookupByEmail``) when ``oncall.pagerduty.user_map`` names no Slack id for the
PagerDuty id or e-mail. Found ids are cached for the life of the process; "no such
Slack user" is cached too, and such a shift answers None (nobody to page for it: the
lifecycle escalates), counted in ``router_oncall_unmapped_users``.

``earliest=true`` is *not* sent. It keeps only the earliest on-call of each user per
escalation policy and level, which is right for "who is next" but loses a person's
second shift inside the window (A, then B, then A again), and the snapshot must know
every handoff in its window.

When PagerDuty cannot be reached or answers 5xx, 401 or 403, the refresh fails and the
last good snapshot keeps answering (``Source.CACHED``): a page still goes to the last
known on-call engineer. The failure is a metric (``router_oncall_provider_up`` 0,
``router_oncall_refreshes_total{outcome="failed"}``, the snapshot's age) and a warning
logged once when it starts and then at most every ``LOG_EVERY`` seconds while it
lasts; never a page. A 429 is waited out inside the refresh (PagerDuty's
``ratelimit-reset`` seconds, else Retry-After, capped), a few times, before it counts
as a failure. After a failure the next try comes sooner than ``refresh_seconds``.

The token is sent only in the header and never appears in a log line or a reason.
Logs carry schedule ids, counts and status codes, not names or e-mails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge

from router.adapters.pagerduty.config import PagerDutyOncallConfig
from router.app.clock import Clock, SystemClock
from router.core.oncall_snapshot import (
    OnCallSchedule,
    OncallSnapshot,
    OncallView,
    Shift,
)

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.pagerduty+json;version=2"
PAGE_LIMIT = 100
MAX_RATE_LIMIT_WAITS = 3
MAX_RATE_LIMIT_WAIT = 30.0  # seconds; past it the refresh fails and the next one tries
RETRY_AFTER_FAILURE = 60.0  # seconds (or refresh_seconds if shorter)
LOG_EVERY = 600.0  # seconds between warnings while PagerDuty keeps failing
PROVIDER = "pagerduty"

# Slack's answer for an e-mail: a user id, or None when Slack has no such user. Raises
# when Slack cannot answer now (the refresh then fails and is retried).
SlackIdLookup = Callable[[str], Awaitable[str | None]]
Sleep = Callable[[float], Awaitable[None]]


class RefreshFailed(Exception):
    """PagerDuty gave no usable answer; ``reason`` is safe to log and to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OncallMetrics:
    """The provider's metrics, on the router's registry (one object, injected)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.refreshes = Counter(
            "router_oncall_refreshes",
            "On-call refreshes from the provider, by outcome (ok, failed).",
            ["provider", "outcome"],
            registry=registry,
        )
        self.up = Gauge(
            "router_oncall_provider_up",
            "1 when the provider's last refresh worked, 0 while it fails.",
            ["provider"],
            registry=registry,
        )
        self.age = Gauge(
            "router_oncall_snapshot_age_seconds",
            "Age of the on-call snapshot that answers now (-1: none yet).",
            ["provider"],
            registry=registry,
        )
        self.unmapped = Gauge(
            "router_oncall_unmapped_users",
            "People on call in the provider who have no Slack user id.",
            ["provider"],
            registry=registry,
        )


class PagerDutyOncall:
    """Refreshes the on-call snapshot from PagerDuty; ``current()`` is what decisions use.

    ``fallback``: the config's rotations, answering until PagerDuty has answered once.
    ``slack_ids``: Slack's users.lookupByEmail (see ``router.adapters.slack.directory``).
    """

    def __init__(
        self,
        config: PagerDutyOncallConfig,
        token: str,
        slack_ids: SlackIdLookup,
        *,
        fallback: OnCallSchedule | None = None,
        clock: Clock | None = None,
        metrics: OncallMetrics | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self._token = token
        self._slack_ids = slack_ids
        self._clock = clock or SystemClock()
        self._metrics = metrics
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._slack_cache: dict[str, str | None] = {}
        self._roles_of: dict[str, list[str]] = {}
        for role, schedule in config.schedules.items():
            self._roles_of.setdefault(schedule, []).append(role)
        self._view = OncallView(
            snapshot=None,
            fallback=fallback,
            provider=PROVIDER,
            configured_roles=tuple(config.schedules),
        )
        self._failures = 0
        self._last_warning: float | None = None
        if metrics is not None:
            metrics.age.labels(PROVIDER).set_function(self._age)
            metrics.up.labels(PROVIDER).set(0)

    def __repr__(self) -> str:
        return f"PagerDutyOncall(api_url={self.config.api_url!r})"

    def current(self) -> OncallView:
        """The view every on-call question of one decision should be asked of."""
        return self._view

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, refreshed: bool = False) -> None:
        """Refresh until cancelled (a task started with the app, cancelled at stop);
        ``refreshed``: the app has just refreshed once (at start), so wait first."""
        ok = self._failures == 0
        while True:
            if not refreshed:
                ok = await self.refresh()
            refreshed = False
            delay = self.config.refresh_seconds
            await self._sleep(delay if ok else min(delay, RETRY_AFTER_FAILURE))

    async def refresh(self) -> bool:
        """Ask PagerDuty once; True if the snapshot was replaced. Never raises for a
        failure of PagerDuty or Slack: the last good snapshot stays."""
        started = self._clock.now()
        try:
            snapshot, unmapped = await self._take(started)
        except RefreshFailed as failure:
            self._failed(started, failure.reason)
            return False
        if self._failures:
            log.info("pagerduty on-call: answering again after %d failed refreshes", self._failures)
        self._failures = 0
        self._last_warning = None
        self._view = OncallView(
            snapshot=snapshot,
            fallback=self._view.fallback,
            provider=PROVIDER,
            configured_roles=self._view.configured_roles,
        )
        if self._metrics is not None:
            self._metrics.refreshes.labels(PROVIDER, "ok").inc()
            self._metrics.up.labels(PROVIDER).set(1)
            self._metrics.unmapped.labels(PROVIDER).set(unmapped)
        log.debug(
            "pagerduty on-call: %d shifts for %d schedules, %d without a Slack id",
            sum(len(s) for s in snapshot.shifts.values()),
            len(self._roles_of),
            unmapped,
        )
        return True

    # ------------------------------------------------------------------ one refresh

    async def _take(self, now: datetime) -> tuple[OncallSnapshot, int]:
        until = now + timedelta(seconds=self.config.cache_seconds)
        entries = await self._oncalls(now, until)
        shifts: list[tuple[str, Shift]] = []
        unmapped: set[str] = set()
        for entry in entries:
            parsed = _parse_entry(entry)
            if parsed is None:
                continue
            schedule, user_id, email, start, end = parsed
            start = start or now  # a permanent on-call: on since before the window
            if end is not None and end <= start:
                continue
            slack = await self._slack_id(user_id, email)
            if slack is None:
                unmapped.add(user_id)
            for role in self._roles_of.get(schedule, ()):
                shifts.append((role, Shift(slack, start, end, named=user_id)))
        snapshot = OncallSnapshot.build(now, until, self.config.schedules, shifts)
        return snapshot, len(unmapped)

    async def _oncalls(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        offset = 0
        while True:
            params: list[tuple[str, str]] = [
                *(("schedule_ids[]", s) for s in self._roles_of),
                ("since", _iso(since)),
                ("until", _iso(until)),
                ("include[]", "users"),
                ("time_zone", "UTC"),
                ("limit", str(PAGE_LIMIT)),
                ("offset", str(offset)),
            ]
            page = await self._get("/oncalls", params)
            oncalls = page.get("oncalls")
            if not isinstance(oncalls, list):
                raise RefreshFailed("pagerduty /oncalls: answer without an oncalls list")
            entries += [e for e in oncalls if isinstance(e, dict)]
            if page.get("more") is not True or not oncalls:
                return entries
            offset += len(oncalls)

    async def _get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        what = f"pagerduty {path}"
        headers = {"Authorization": f"Token token={self._token}", "Accept": ACCEPT}
        for attempt in range(MAX_RATE_LIMIT_WAITS + 1):
            try:
                async with self._ensure_session().get(
                    self.config.api_url + path, params=params, headers=headers
                ) as response:
                    status = response.status
                    wait = _rate_limit_wait(response.headers)
                    body: Any = None
                    if status == 200:
                        body = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise RefreshFailed(f"{what}: {type(exc).__name__}") from exc
            if status == 200:
                if not isinstance(body, dict):
                    raise RefreshFailed(f"{what}: answer is not a JSON object")
                return body
            if status == 429 and attempt < MAX_RATE_LIMIT_WAITS:
                await self._sleep(wait)
                continue
            raise RefreshFailed(f"{what}: HTTP {status}{_meaning(status)}")
        raise AssertionError("unreachable")  # the loop returns or raises

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds)
            )
        return self._session

    async def _slack_id(self, user_id: str, email: str | None) -> str | None:
        configured = self.config.slack_id_for(user_id, email)
        if configured is not None:
            return configured
        if not email:
            return None
        key = email.casefold()
        if key not in self._slack_cache:
            try:
                self._slack_cache[key] = await self._slack_ids(email)
            except Exception as exc:  # Slack down or rate limited: try at the next refresh
                raise RefreshFailed(f"slack users.lookupByEmail: {type(exc).__name__}") from exc
        return self._slack_cache[key]

    # ------------------------------------------------------------------ failure

    def _failed(self, at: datetime, reason: str) -> None:
        self._failures += 1
        view = self._view
        self._view = OncallView(
            snapshot=view.snapshot,
            fallback=view.fallback,
            failing_since=view.failing_since or at,
            failure=reason,
            provider=PROVIDER,
            configured_roles=view.configured_roles,
        )
        if self._metrics is not None:
            self._metrics.refreshes.labels(PROVIDER, "failed").inc()
            self._metrics.up.labels(PROVIDER).set(0)
        now = at.timestamp()
        if self._last_warning is None or now - self._last_warning >= LOG_EVERY:
            self._last_warning = now
            kept = (
                f"keeping the snapshot of {_iso(view.snapshot.taken_at)}"
                if view.snapshot is not None
                else "no snapshot yet"
                + (": the config's rotations answer" if view.fallback is not None else "")
            )
            log.warning(
                "pagerduty on-call refresh failed (%s), %d in a row since %s; %s",
                reason,
                self._failures,
                _iso(self._view.failing_since or at),
                kept,
            )

    def _age(self) -> float:
        snapshot = self._view.snapshot
        if snapshot is None:
            return -1.0
        return max(0.0, (self._clock.now() - snapshot.taken_at).total_seconds())


def _parse_entry(
    entry: Mapping[str, Any],
) -> tuple[str, str, str | None, datetime | None, datetime | None] | None:
    """(schedule id, user id, e-mail, start, end) of one on-call entry; None for an
    entry the router cannot use (no schedule: a direct user target of a policy)."""
    schedule = entry.get("schedule")
    user = entry.get("user")
    if not isinstance(schedule, dict) or not isinstance(user, dict):
        return None
    schedule_id, user_id = schedule.get("id"), user.get("id")
    if not isinstance(schedule_id, str) or not isinstance(user_id, str):
        return None
    email = user.get("email")
    try:
        start = _parse_time(entry.get("start"))
        end = _parse_time(entry.get("end"))
    except ValueError:
        return None
    return schedule_id, user_id, email if isinstance(email, str) else None, start, end


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not a time")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    return parsed.astimezone(UTC)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rate_limit_wait(headers: Mapping[str, str]) -> float:
    """PagerDuty's ``ratelimit-reset`` (seconds until the window resets), else
    Retry-After, else 1 s; capped at ``MAX_RATE_LIMIT_WAIT``."""
    for name in ("ratelimit-reset", "Retry-After"):
        value = headers.get(name)
        if value:
            try:
                return min(MAX_RATE_LIMIT_WAIT, max(0.0, float(value)))
            except ValueError:
                continue
    return 1.0


def _meaning(status: int) -> str:
    if status == 401:
        return " (the API token was refused)"
    if status == 403:
        return " (the token may not read these schedules)"
    if status == 400:
        return " (PagerDuty refused the query: check the schedule ids)"
    if status == 429:
        return " (rate limited)"
    return ""
