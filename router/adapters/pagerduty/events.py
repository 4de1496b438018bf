"""PagerDuty Events API v2: trigger, acknowledge and resolve alerts (phone/SMS paging).

One JSON POST to ``events_url`` per job; the routing key travels in the body, is added
here from the secret, and never appears in a log line, a failure reason or a repr.

* 202 (any 2xx) -> ``{"dedup_key": ...}`` from the response.
* 400 and other 4xx -> ``PermanentFailure`` (PagerDuty's ``errors`` in the reason).
* 429, 5xx, connection errors, timeouts -> ``RetryLater``.

A job whose payload cannot be valid (unknown action, severity not one of
critical/error/warning/info, no dedup_key) fails permanently before any request:
mapping labels like ``severity: page`` is the lifecycle's job, not this adapter's.
A dedup_key is required even for triggers: without one a retried trigger opens a
second alert.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from router.app.effects import PermanentFailure, ResultLookup, RetryLater, classify_status
from router.core.jobs import JobKind, StoredJob

log = logging.getLogger(__name__)

EVENT_ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
MAX_DEDUP_KEY = 255
# Job payload keys passed through to the event as they are.
OPTIONAL_FIELDS = ("links", "images", "client", "client_url")


def build_event(job_payload: Mapping[str, Any]) -> dict[str, Any]:
    """The event body without its routing key; PermanentFailure if it cannot be valid."""
    action = job_payload.get("event_action")
    if action not in EVENT_ACTIONS:
        raise PermanentFailure(
            f"pagerduty event: event_action {action!r} is not one of {sorted(EVENT_ACTIONS)}"
        )
    dedup_key = job_payload.get("dedup_key")
    if not isinstance(dedup_key, str) or not dedup_key:
        raise PermanentFailure("pagerduty event: dedup_key is required")
    if len(dedup_key) > MAX_DEDUP_KEY:
        raise PermanentFailure(f"pagerduty event: dedup_key is longer than {MAX_DEDUP_KEY}")
    event: dict[str, Any] = {"event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        payload = job_payload.get("payload")
        if not isinstance(payload, dict):
            raise PermanentFailure("pagerduty trigger: payload is required")
        for name in ("summary", "source"):
            if not isinstance(payload.get(name), str) or not payload[name].strip():
                raise PermanentFailure(f"pagerduty trigger: payload.{name} is required")
        if payload.get("severity") not in SEVERITIES:
            raise PermanentFailure(
                f"pagerduty trigger: payload.severity {payload.get('severity')!r} "
                f"is not one of {sorted(SEVERITIES)}"
            )
        event["payload"] = payload
    for name in OPTIONAL_FIELDS:
        if job_payload.get(name) is not None:
            event[name] = job_payload[name]
    return event


class PagerDutyAdapter:
    """Sends Events API v2 events to ``events_url`` with the integration's routing key."""

    kinds: frozenset[JobKind] = frozenset({JobKind.PAGERDUTY_EVENT})
    system = "pagerduty"

    def __init__(self, events_url: str, routing_key: str, timeout: float = 10) -> None:
        self.events_url = events_url
        self._routing_key = routing_key
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"PagerDutyAdapter(events_url={self.events_url!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def run(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        event = build_event(job.payload)
        action, dedup_key = event["event_action"], event["dedup_key"]
        body = {"routing_key": self._routing_key, **event}
        try:
            async with self._ensure_session().post(self.events_url, json=body) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                text = await response.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("pagerduty %s %s: %s", action, dedup_key, type(exc).__name__)
            raise RetryLater(f"pagerduty {action}: {type(exc).__name__}") from exc
        log.info("pagerduty %s %s: HTTP %s", action, dedup_key, status)
        failure = classify_status(status, f"pagerduty {action}", retry_after)
        if isinstance(failure, PermanentFailure):
            raise PermanentFailure(self._scrub(f"{failure.reason}: {_errors(text)}"))
        if failure is not None:
            raise failure
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {}
        returned = answer.get("dedup_key") if isinstance(answer, dict) else None
        return {"dedup_key": returned if isinstance(returned, str) and returned else dedup_key}

    async def find(self, job: StoredJob, results: ResultLookup) -> dict[str, Any] | None:
        """None: PagerDuty deduplicates by ``dedup_key``. A trigger sent again for an
        alert that is still open joins it and pages nobody again; acknowledge and
        resolve are idempotent. So an event whose outcome is unknown is sent again."""
        return None

    def _scrub(self, text: str) -> str:
        # PagerDuty does not echo the key today; make sure a future message cannot leak it.
        return text.replace(self._routing_key, "<routing key>") if self._routing_key else text


def _errors(text: str) -> str:
    """PagerDuty's error list out of a 4xx body, short enough for a log line."""
    try:
        answer = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(answer, dict):
        errors = answer.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)[:200]
        return str(answer.get("message", ""))[:200]
    return text[:200]
