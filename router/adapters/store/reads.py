"""What the web console reads, in the SQL both engines share. Reads only, bounded.

Each read is one or two indexed statements with a LIMIT: the incidents list filters
on the columns ``incidents`` keeps for it (severity, commander, declared_at), the
pages list reads the newest open pages by a partial index, and alert quality has the
database count a window of pages by alert name, status, reason and day (no JSON
state), reading rows only for the pages people decided, so 90 days of storms is an
index range counted, not a parse of every page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.core.incident import Incident
from router.core.page import Page

# Rows a list shows at most; the page says when there were more.
LIST_LIMIT = 200
# Decided pages (and incidents) read for one alert-quality window at most.
QUALITY_LIMIT = 50_000
UNNAMED = "(unnamed)"
NO_REASON = "no reason given"
_IN_CHUNK = 500


@dataclass(frozen=True)
class IncidentListed:
    incident: Incident
    updated_at: float | None  # epoch seconds of its newest timeline entry


@dataclass(frozen=True)
class PageDecision:
    """A page someone decided: what it was about, how, and when."""

    alert_name: str
    status: str
    opened_at: float
    decided_at: float


@dataclass(frozen=True)
class IncidentTimes:
    declared_at: datetime
    mitigated_at: datetime | None
    resolved_at: datetime | None


class ConsoleReads:
    """Mixed into :class:`~router.adapters.store.sql.SqlTx`."""

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def console_incidents(
        self,
        *,
        statuses: Sequence[str] | None,
        severity: str | None,
        commander: str | None,
        since: float | None,
        limit: int = LIST_LIMIT,
    ) -> list[IncidentListed]:
        """Incidents matching the filters, newest first, at most ``limit``."""
        where: list[str] = []
        params: list[Any] = []
        if statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += list(statuses)
        if severity is not None:
            where.append("severity = ?")
            params.append(severity)
        if commander is not None:
            where.append("commander = ?")
            params.append(commander)
        if since is not None:
            where.append("declared_at >= ?")
            params.append(since)
        rows = self._rows(
            "SELECT state, (SELECT max(t.at) FROM timeline t WHERE t.incident_number ="
            " incidents.number) FROM incidents"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY number DESC LIMIT ?",
            (*params, limit),
        )
        return [IncidentListed(Incident.model_validate_json(r[0]), r[1]) for r in rows]

    def job_results(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The results of done jobs by key (a message's channel and ts, an issue's
        URL), for links. Jobs pruned long after are simply not linked."""
        unique = sorted(set(keys))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            rows = self._rows(
                "SELECT key, result FROM jobs WHERE key IN (" + ", ".join("?" * len(chunk)) + ")"
                " AND result IS NOT NULL",
                chunk,
            )
            for key, result in rows:
                value = json.loads(result)
                if isinstance(value, dict):
                    found[key] = value
        return found

    def incident_actors(self, numbers: Iterable[int]) -> dict[int, set[str]]:
        """Everyone who acted on each incident (its timeline's actors)."""
        unique = sorted(set(numbers))
        actors: dict[int, set[str]] = {n: set() for n in unique}
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            rows = self._rows(
                "SELECT DISTINCT incident_number, actor FROM timeline WHERE incident_number IN ("
                + ", ".join("?" * len(chunk))
                + ")",
                chunk,
            )
            for number, actor in rows:
                actors[int(number)].add(actor)
        return actors

    def pages_by_key(self, keys: Iterable[str]) -> dict[str, Page]:
        unique = sorted(set(keys))
        pages: dict[str, Page] = {}
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            rows = self._rows(
                "SELECT state FROM pages WHERE key IN (" + ", ".join("?" * len(chunk)) + ")",
                chunk,
            )
            for (state,) in rows:
                page = Page.model_validate_json(state)
                pages[page.key] = page
        return pages

    def open_pages(self, limit: int = LIST_LIMIT) -> list[Page]:
        """The newest ``limit`` open pages, folded ones included."""
        rows = self._rows(
            "SELECT state FROM pages WHERE status = 'open' ORDER BY opened_at DESC LIMIT ?",
            (limit,),
        )
        return [Page.model_validate_json(r[0]) for r in rows]

    def open_page_count(self) -> int:
        """How many pages are open (the partial index of open pages, counted)."""
        return int(self._rows("SELECT count(*) FROM pages WHERE status = 'open'")[0][0])

    # The UTC day (days since the epoch) of an epoch-seconds column. CAST truncates in
    # SQLite (the same as floor for times after 1970); PostgreSQL's rounds, so its
    # engine says floor.
    _DAY_OF = "CAST({} / 86400 AS INTEGER)"

    def page_counts(self, since: float, until: float) -> list[tuple[str, str, int]]:
        """(alert name, status, pages) of the pages opened in the window: counted by the
        database over an index range, so a storm's thousands are one row each here."""
        rows = self._rows(
            "SELECT coalesce(alert_name, ''), status, count(*) FROM pages"
            " WHERE opened_at >= ? AND opened_at <= ? GROUP BY 1, 2",
            (since, until),
        )
        return [(r[0] or UNNAMED, r[1], int(r[2])) for r in rows]

    def dismiss_reasons(self, since: float, until: float) -> list[tuple[str, str, int]]:
        """(alert name, reason, pages) of the pages dismissed in the window."""
        rows = self._rows(
            "SELECT coalesce(alert_name, ''), coalesce(reason, ''), count(*) FROM pages"
            " WHERE opened_at >= ? AND opened_at <= ? AND status = 'dismissed' GROUP BY 1, 2",
            (since, until),
        )
        return [(r[0] or UNNAMED, r[1] or NO_REASON, int(r[2])) for r in rows]

    def page_days(
        self, since: float, until: float, alert_name: str | None = None
    ) -> list[tuple[int, str, int]]:
        """(UTC day as days since the epoch, status, pages) of the pages opened in the
        window, of one alert with ``alert_name``."""
        only = " AND alert_name = ?" if alert_name is not None else ""
        day = self._DAY_OF.format("opened_at")
        rows = self._rows(
            f"SELECT {day}, status, count(*) FROM pages WHERE opened_at >= ?"
            f" AND opened_at <= ?{only} GROUP BY 1, 2",
            (since, until, *((alert_name,) if alert_name is not None else ())),
        )
        return [(int(r[0]), r[1], int(r[2])) for r in rows]

    def decided_pages(self, since: float, until: float) -> list[PageDecision]:
        """The pages of the window someone decided, for the time it took: as many as
        people decided (at human pace), never a storm's undecided thousands."""
        rows = self._rows(
            "SELECT coalesce(alert_name, ''), status, opened_at, decided_at FROM pages"
            " WHERE opened_at >= ? AND opened_at <= ? AND decided_at IS NOT NULL"
            " ORDER BY opened_at LIMIT ?",
            (since, until, QUALITY_LIMIT),
        )
        return [PageDecision(r[0] or UNNAMED, r[1], float(r[2]), float(r[3])) for r in rows]

    def incident_times(self, since: float, until: float) -> list[IncidentTimes]:
        """When each incident declared in the window was declared, mitigated, resolved."""
        rows = self._rows(
            "SELECT state FROM incidents WHERE declared_at >= ? AND declared_at <= ?"
            " ORDER BY declared_at LIMIT ?",
            (since, until, QUALITY_LIMIT),
        )
        out = []
        for (state,) in rows:
            incident = Incident.model_validate_json(state)
            out.append(IncidentTimes(incident.declared_at, incident.mitigated_at,
                                     incident.resolved_at))  # fmt: skip
        return out
