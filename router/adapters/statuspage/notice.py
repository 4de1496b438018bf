"""Public notices on Atlassian Statuspage: the first one opens a Statuspage incident,
later ones (updates, the resolution) go to the same incident.

Nothing here decides to publish. A ``statuspage.notice`` job exists only after the
commander (or comms lead) saw a preview and confirmed it, and never for a confidential
incident: those rules are the duties' (``router.core.public_notice``). This adapter
carries the confirmed text out, once.

Requests (Statuspage REST v1, ``Authorization: OAuth <STATUSPAGE_API_KEY>``)::

    POST  {api_url}/pages/{page_id}/incidents            {"incident": {...}}  -> 201
    PATCH {api_url}/pages/{page_id}/incidents/{id}       {"incident": {...}}  -> 200
    GET   {api_url}/pages/{page_id}/incidents/unresolved                      -> 200 [...]
    GET   {api_url}/pages/{page_id}/incidents/{id}                            -> 200

with ``name``, ``status`` (investigating | identified | monitoring | resolved),
``body`` (the public text), ``component_ids`` and ``components`` (each configured
component's status for the severity, ``operational`` on resolution),
``deliver_notifications`` and, on the first notice, ``metadata: {"router":
{"incident": "<id>"}}``.

Idempotent: the first notice looks among the unresolved incidents for one carrying its
incident's metadata before it creates one; a later notice reads its Statuspage incident
and sends nothing when the newest update already has the same status and text (the
earlier attempt got through). Failures: 420 and 429 (Statuspage's two rate-limit
answers, about one request a second per key) and 5xx are ``RetryLater`` with
Retry-After; 401, 404, 422 and other 4xx are ``PermanentFailure``. Reasons and logs
carry ids and statuses, never the notice's text or the key.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import aiohttp
from pydantic import ValidationError

from router.adapters.statuspage.config import StatuspageConfig
from router.app.effects import (
    PermanentFailure,
    ResultLookup,
    RetryLater,
    parse_retry_after,
    require_result,
)
from router.core.jobs import JobKind, PayloadError, StoredJob
from router.core.public_notice import NoticeJob

log = logging.getLogger(__name__)

NOTICE_JOB = JobKind.STATUSPAGE_NOTICE.value
__all__ = ["NoticeJob", "StatuspageAdapter"]
MARKER = "router"  # the metadata key; Statuspage wants an object as each top-level value
UNRESOLVED_PAGES = 5  # x 100 incidents: more open ones than that is not a status page


class StatuspageAdapter:
    """Carries out ``statuspage.notice`` jobs."""

    kinds: frozenset[JobKind] = frozenset({JobKind.STATUSPAGE_NOTICE})
    system = "statuspage"

    def __init__(self, config: StatuspageConfig, api_key: str) -> None:
        self.config = config
        self._api_key = api_key
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"StatuspageAdapter(api_url={self.config.api_url!r}, page={self.config.page_id})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        try:
            notice = NoticeJob.of(job)
        except KeyError as exc:  # a field it needs is missing: no retry brings it
            raise PermanentFailure(f"{NOTICE_JOB}: bad payload ({exc.args[0]})") from None
        except PayloadError as exc:
            cause = exc.__cause__
            fields = (
                sorted({".".join(str(p) for p in e["loc"]) for e in cause.errors()})
                if isinstance(cause, ValidationError)
                else ["payload"]
            )
            raise PermanentFailure(f"{NOTICE_JOB}: bad payload ({', '.join(fields)})") from None
        return await self.publish(notice, results)

    async def find(self, job: StoredJob, results: ResultLookup) -> dict[str, Any] | None:
        """None: ``publish`` looks on Statuspage before it creates or updates."""
        return None

    async def publish(self, notice: NoticeJob, results: ResultLookup) -> dict[str, Any]:
        if notice.previous is not None and notice.previous != notice.first:
            # An update that failed for good (its commander was told) holds nothing back.
            with contextlib.suppress(PermanentFailure):
                await require_result(results, notice.previous)
        if notice.first is None:
            incident = await self._find_open(notice.incident)
        else:
            first = await require_result(results, notice.first)
            incident = await self._request("GET", f"/incidents/{first['statuspage_incident']}")
        if incident is None:
            incident = await self._request("POST", "/incidents", self._body(notice, first=True))
            verb = "opened"
        elif _newest(incident) == (notice.status, notice.body):
            verb = "found"  # an earlier attempt got through
        else:
            path = f"/incidents/{incident['id']}"
            incident = await self._request("PATCH", path, self._body(notice, first=False))
            verb = "updated"
        assert isinstance(incident, dict)
        log.info(
            "statuspage %s %s for %s: %s", verb, incident.get("id"), notice.incident, notice.status
        )
        updates = incident.get("incident_updates") or [{}]
        return {
            "statuspage_incident": incident["id"],
            "shortlink": incident.get("shortlink"),
            "update": updates[0].get("id"),
            "status": incident.get("status"),
        }

    def _body(self, notice: NoticeJob, first: bool) -> dict[str, Any]:
        status = (
            "operational"
            if notice.status == "resolved"
            else self.config.component_status[notice.severity]
        )
        incident: dict[str, Any] = {
            "name": notice.name,
            "status": notice.status,
            "body": notice.body,
            "deliver_notifications": self.config.deliver_notifications,
        }
        if self.config.component_ids:
            incident["component_ids"] = list(self.config.component_ids)
            incident["components"] = {c: status for c in self.config.component_ids}
        if first:
            incident["metadata"] = {MARKER: {"incident": notice.incident}}
        return {"incident": incident}

    async def _find_open(self, incident: str) -> dict[str, Any] | None:
        for page in range(1, UNRESOLVED_PAGES + 1):
            found = await self._request(
                "GET", "/incidents/unresolved", params={"page": str(page), "per_page": "100"}
            )
            if not isinstance(found, list):
                raise PermanentFailure("statuspage unresolved incidents: not a list")
            for item in found:
                marker = (
                    (item.get("metadata") or {}).get(MARKER) if isinstance(item, dict) else None
                )
                if isinstance(marker, dict) and marker.get("incident") == incident:
                    return dict(item)
            if len(found) < 100:
                return None
        return None

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        route = path if path in ("/incidents", "/incidents/unresolved") else "/incidents/{id}"
        what = f"statuspage {method} {route}"
        url = f"{self.config.api_url}/pages/{self.config.page_id}{path}"
        headers = {"Authorization": f"OAuth {self._api_key}"}
        try:
            async with self._ensure_session().request(
                method, url, json=body, params=params, headers=headers
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                answer = await response.json(content_type=None) if status < 300 else None
        except aiohttp.ClientConnectorError as exc:
            raise RetryLater(f"{what}: {type(exc).__name__}") from exc
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RetryLater(f"{what}: {type(exc).__name__}", in_doubt=method != "GET") from exc
        if status in (420, 429):
            raise RetryLater(
                f"{what}: HTTP {status} (rate limited)", parse_retry_after(retry_after)
            )
        if status >= 500 or status == 408:
            raise RetryLater(
                f"{what}: HTTP {status}", parse_retry_after(retry_after), in_doubt=method != "GET"
            )
        if status == 401:
            raise PermanentFailure(f"{what}: HTTP 401 (STATUSPAGE_API_KEY was refused)")
        if status == 404:
            raise PermanentFailure(f"{what}: HTTP 404 (no such page or incident)")
        if status >= 300:
            raise PermanentFailure(f"{what}: HTTP {status}")
        return answer

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds)
            )
        return self._session


def _newest(incident: dict[str, Any]) -> tuple[str | None, str | None]:
    """(status, body) of the incident's newest update (Statuspage lists newest first)."""
    updates = incident.get("incident_updates") or []
    if not updates or not isinstance(updates[0], dict):
        return None, None
    return updates[0].get("status"), updates[0].get("body")
