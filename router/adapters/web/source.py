"""The console's source on the router's own store (either engine).

Each method is one store unit of a few bounded reads (:mod:`router.adapters.store.reads`),
then plain mapping into the console's views. Links come from the results of the jobs
that made them (the announcement's channel and ts, the tracking issue's URL), so the
console links to what was actually posted, not to what was meant to be.

Responders of an incident, for who may see a confidential one: its commander, who
declared it, its communications lead, a commander it was offered to, everyone its
page paged, and everyone who acted on it (its timeline).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from router.adapters.store import Store
from router.adapters.store.reads import LIST_LIMIT, IncidentListed
from router.adapters.store.sql import SqlTx, from_epoch
from router.adapters.web.directory import PeopleNames
from router.adapters.web.views import (
    AlertItem,
    AlertNameStats,
    AlertQuality,
    DayCount,
    DayDurations,
    IncidentAccess,
    IncidentDetail,
    IncidentLinks,
    IncidentQuery,
    IncidentRow,
    Link,
    PageRow,
    Person,
    QualityWindow,
    TimelineItem,
)
from router.app.clock import Clock, SystemClock
from router.core import keys, reports
from router.core.alerts import Alert, AlertStatus
from router.core.digest import part_of
from router.core.incident import Incident, IncidentStatus, TimelineEntry
from router.core.page import AlertCounts, Page, PageAlerts, PageStatus
from router.core.policy_config import IncidentConfig

# Alerts one incident's page lists (firing first, newest first), as the issue does.
INCIDENT_ALERTS = reports.ISSUE_ALERTS * 5
# Open pages listed at most (the newest): a storm of thousands says how many more.
PAGES_SHOWN = 500
# Labels that tell a group's alerts apart, shown beside each alert.
_DISTINGUISHING = ("instance", "service", "job", "namespace", "pod", "cluster", "region")
_OPEN = (IncidentStatus.ACTIVE.value, IncidentStatus.MITIGATED.value)


@dataclass(frozen=True)
class SlackLinks:
    """Addresses that open a Slack channel or message in the browser or the app."""

    team_id: str | None = None
    base: str = "https://slack.com"

    def channel(self, label: str, channel: str) -> Link:
        query = {"channel": channel} | ({"team": self.team_id} if self.team_id else {})
        return Link(label, f"{self.base}/app_redirect?{urlencode(query)}")

    def message(self, label: str, channel: str, ts: str) -> Link:
        return Link(label, f"{self.base}/archives/{channel}/p{ts.replace('.', '')}")


class StoreSource:
    """:class:`~router.adapters.web.views.ConsoleSource` on a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        incident_config: IncidentConfig | None = None,
        slack: SlackLinks | None = None,
        clock: Clock | None = None,
        names: PeopleNames | None = None,
    ) -> None:
        self.store = store
        self.names = names
        self.clock = clock or SystemClock()
        self.incident_config = incident_config or IncidentConfig()
        self.slack = slack or SlackLinks()

    # -- incidents ------------------------------------------------------------------

    async def incidents(self, query: IncidentQuery) -> Sequence[IncidentRow]:
        statuses: tuple[str, ...] | None
        if query.status == "open":
            statuses = _OPEN
        elif query.status == "all":
            statuses = None
        else:
            statuses = (query.status.value,)

        def unit(tx: SqlTx) -> list[IncidentRow]:
            listed = tx.console_incidents(
                statuses=statuses,
                severity=query.severity.value if query.severity else None,
                commander=query.commander,
                since=query.since.timestamp() if query.since else None,
                limit=LIST_LIMIT,
            )
            secret = [item.incident for item in listed if item.incident.confidential]
            responders = _responders(tx, secret)
            results = tx.job_results(
                key
                for item in listed
                for key in (item.incident.announce_job, item.incident.tracking_issue_job)
                if key
            )
            return [self._row(item, results, responders) for item in listed]

        return await self._named(await self._read(unit))

    def _row(
        self,
        item: IncidentListed,
        results: dict[str, dict[str, Any]],
        responders: dict[int, frozenset[str]],
    ) -> IncidentRow:
        incident = item.incident
        links = self._links(incident, results)
        return IncidentRow(
            number=incident.number,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            commander=Person(incident.commander),
            declared_at=incident.declared_at,
            updated_at=from_epoch(item.updated_at) if item.updated_at is not None else None,
            flags=tuple(incident.flags),
            slack=links.slack_channel or links.slack_thread,
            tracking_issue=links.tracking_issue,
            access=IncidentAccess(incident.confidential, responders.get(incident.number, _NONE)),
        )

    async def incident(self, number: int) -> IncidentDetail | None:
        def unit(tx: SqlTx) -> IncidentDetail | None:
            incident = tx.incident(number)
            if incident is None:
                return None
            page = tx.page(incident.page_key) if incident.page_key else None
            timeline = tx.timeline(number, incident.page_key)
            alerts = PageAlerts()
            if page is not None:
                counts = page.counts or tx.count_page_alerts(page.key)
                alerts = tx.page_view(page.key, counts, INCIDENT_ALERTS)
            results = tx.job_results(
                k
                for k in (incident.announce_job, incident.tracking_issue_job,
                          incident.postmortem_job)
                if k
            )  # fmt: skip
            responders = _responders_of(incident, page, (e.actor for e in timeline))
            detail = self._detail(incident, timeline, alerts, results, responders)
            if page is not None and page.alert_name:
                days = _alert_days(tx, page.alert_name, self.clock.now())
                detail = replace(detail, alert_name=page.alert_name, alert_days=days)
            return detail

        return await self._named(await self._read(unit))

    def _detail(
        self,
        incident: Incident,
        timeline: Sequence[TimelineEntry],
        alerts: PageAlerts,
        results: dict[str, dict[str, Any]],
        responders: frozenset[str],
    ) -> IncidentDetail:
        suggestion = incident.suggestion
        draft = None
        if incident.postmortem_required or incident.postmortem_owed or incident.postmortem_job:
            title, body, _ = reports.postmortem(incident, alerts, timeline, self.incident_config)
            draft = f"# {title}\n\n{body}"
        return IncidentDetail(
            number=incident.number,
            title=incident.title,
            severity=incident.severity,
            severity_reason=incident.severity_reason,
            clause=suggestion.clause,
            suggested=suggestion.severity,
            evidence=tuple(e.describe() for e in suggestion.evidence),
            status=incident.status,
            commander=Person(incident.commander),
            declared_at=incident.declared_at,
            declared_by=Person(incident.declared_by),
            comms_lead=Person(incident.comms_lead) if incident.comms_lead else None,
            handoff_to=Person(incident.handoff.to) if incident.handoff else None,
            flags=tuple(incident.flags),
            escalated=incident.escalated,
            vendors=tuple(incident.vendors),
            mitigated_at=incident.mitigated_at,
            resolved_at=incident.resolved_at,
            closed_at=incident.closed_at,
            resolution=incident.resolution,
            postmortem_owed=incident.postmortem_owed,
            timeline=tuple(
                TimelineItem(
                    at=entry.at,
                    actor=None if entry.actor == "router" else Person(entry.actor),
                    kind=entry.kind,
                    text=reports.in_words(entry),
                )
                for entry in timeline
            ),
            alerts=tuple(_alert_item(a) for a in alerts.shown),
            links=self._links(incident, results),
            postmortem_draft=draft,
            access=IncidentAccess(incident.confidential, responders),
        )

    def _links(self, incident: Incident, results: dict[str, dict[str, Any]]) -> IncidentLinks:
        announced = results.get(incident.announce_job) or {}
        thread = None
        if announced.get("channel") and announced.get("ts"):
            thread = self.slack.message(
                "Announcement in Slack", str(announced["channel"]), str(announced["ts"])
            )
        channel = None
        if incident.channel_id:  # its own Slack channel (incident.channel.mode: channel)
            label = f"#{incident.channel_name}" if incident.channel_name else "Incident channel"
            channel = self.slack.channel(label, incident.channel_id)
        return IncidentLinks(
            slack_channel=channel,
            slack_thread=thread,
            tracking_issue=_issue_link("Tracking issue", results, incident.tracking_issue_job),
            postmortem=_issue_link("Post-mortem", results, incident.postmortem_job),
        )

    async def _read(self, unit: Callable[[SqlTx], V]) -> V:
        """Run a read of the console's own (router.adapters.store.reads): both engines
        hand every unit their SqlTx, of which the use cases' Tx port is a part."""
        return await self.store.run(lambda tx: unit(cast(SqlTx, tx)))

    async def _named(self, value: V) -> V:
        """``value`` with each person's name, where the directory knows it."""
        if self.names is None or value is None:
            return value
        people = set(_people(value))
        names = await self.names.names(people) if people else {}
        return _renamed(value, names) if names else value

    # -- pages ----------------------------------------------------------------------

    async def pages(self) -> Sequence[PageRow]:
        def unit(tx: SqlTx) -> list[PageRow]:
            pages = tx.open_pages(PAGES_SHOWN)
            results = tx.job_results(filter(None, (_dm_job(p) for p in pages)))
            return [self._page_row(p, results) for p in pages]

        return await self._named(await self._read(unit))

    async def open_page_count(self) -> int:
        return await self._read(lambda tx: tx.open_page_count())

    def _page_row(self, page: Page, results: dict[str, dict[str, Any]]) -> PageRow:
        counts = page.counts or AlertCounts()
        dm = results.get(_dm_job(page) or "") or {}
        link = None
        if dm.get("channel"):
            label = "Open the digest DM" if page.digest_key else "Open the DM"
            if dm.get("ts"):
                link = self.slack.message(label, str(dm["channel"]), str(dm["ts"]))
            else:
                link = self.slack.channel(label, str(dm["channel"]))
        return PageRow(
            key=page.key,
            title=page.listed_title,  # always, in the list: it has no access check
            source=page.source,
            status=page.status,
            opened_at=page.opened_at,
            severity=page.suggestion.severity,
            clause=page.suggestion.clause,
            paged=tuple(Person(p.user) for p in page.paged),
            level=page.level,
            alert_count=counts.firing + counts.resolved,
            firing_count=counts.firing,
            all_resolved=page.all_resolved,
            digest=page.digest_key,
            dm=link,
            incident_number=page.incident_number,
        )

    # -- alert quality ----------------------------------------------------------------

    async def alert_quality(self, window: QualityWindow) -> AlertQuality:
        since, until = window.since.timestamp(), window.until.timestamp()

        def unit(tx: SqlTx) -> tuple[Any, ...]:
            return (
                tx.page_counts(since, until),
                tx.dismiss_reasons(since, until),
                tx.page_days(since, until),
                tx.decided_pages(since, until),
                tx.incident_times(since, until),
            )

        counts, reasons, page_days, decided, incidents = await self._read(unit)
        by_name: dict[str, Counter[str]] = defaultdict(Counter)
        for name, status, n in counts:
            by_name[name][status] += n
        why: dict[str, Counter[str]] = defaultdict(Counter)
        for name, reason, n in reasons:
            why[name][reason] += n
        waited: dict[str, list[float]] = defaultdict(list)
        for d in decided:
            waited[d.alert_name].append(d.decided_at - d.opened_at)
        rows = [
            AlertNameStats(
                alert_name=name,
                pages=sum(statuses.values()),
                declared=statuses[PageStatus.DECLARED.value],
                dismissed=statuses[PageStatus.DISMISSED.value],
                dismiss_reasons=tuple(sorted(why[name].items(), key=lambda kv: (-kv[1], kv[0]))),
                decide_median_seconds=_median(waited[name]),
                decide_p90_seconds=_p90(waited[name]),
            )
            for name, statuses in by_name.items()
        ]
        days = _days(window.since, window.until)
        pages_per_day: Counter[date] = Counter()
        for day, _, n in page_days:
            pages_per_day[_EPOCH_DAY + timedelta(days=day)] += n
        incidents_per_day = Counter(i.declared_at.astimezone(UTC).date() for i in incidents)
        decide: dict[date, list[float]] = defaultdict(list)
        for d in decided:
            decide[_day(d.decided_at)].append(d.decided_at - d.opened_at)
        mitigate: dict[date, list[float]] = defaultdict(list)
        resolve: dict[date, list[float]] = defaultdict(list)
        for i in incidents:
            if i.mitigated_at is not None:
                mitigate[i.mitigated_at.astimezone(UTC).date()].append(
                    (i.mitigated_at - i.declared_at).total_seconds()
                )
            if i.resolved_at is not None:
                resolve[i.resolved_at.astimezone(UTC).date()].append(
                    (i.resolved_at - i.declared_at).total_seconds()
                )
        return AlertQuality(
            window=window,
            rows=tuple(rows),
            per_day=tuple(DayCount(d, pages_per_day[d], incidents_per_day[d]) for d in days),
            durations=tuple(
                DayDurations(d, _median(decide[d]), _median(mitigate[d]), _median(resolve[d]))
                for d in days
            ),
            total_pages=sum(n for _, _, n in counts),
            total_incidents=len(incidents),
        )


_NONE: frozenset[str] = frozenset()
V = TypeVar("V")


# A Slack user id inside a timeline entry's words ("communications lead: U0123ABCD").
_USER_ID = re.compile(r"\b[UW][A-Z0-9]{6,}\b")


def _people(value: Any) -> Iterator[str]:
    """The user id of every Person in a view (dataclasses, tuples and lists of them),
    and of everyone a timeline entry names in its words."""
    if isinstance(value, Person):
        yield value.user
    elif isinstance(value, TimelineItem):
        yield from _USER_ID.findall(value.text)
        yield from _people(value.actor)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _people(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _people(item)


def _renamed(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, Person):
        return replace(value, name=names.get(value.user, value.name))
    if isinstance(value, TimelineItem):
        text = _USER_ID.sub(lambda m: names.get(m.group(0), m.group(0)), value.text)
        return replace(value, text=text, actor=_renamed(value.actor, names))
    if is_dataclass(value) and not isinstance(value, type):
        return replace(
            value, **{f.name: _renamed(getattr(value, f.name), names) for f in fields(value)}
        )
    if isinstance(value, tuple):
        return tuple(_renamed(item, names) for item in value)
    if isinstance(value, list):
        return [_renamed(item, names) for item in value]
    return value


def _responders(tx: SqlTx, incidents: Sequence[Incident]) -> dict[int, frozenset[str]]:
    """Responders of several incidents: two reads, whatever their number."""
    if not incidents:
        return {}
    actors = tx.incident_actors(i.number for i in incidents)
    pages = tx.pages_by_key(i.page_key for i in incidents if i.page_key)
    return {
        i.number: _responders_of(
            i, pages.get(i.page_key) if i.page_key else None, actors.get(i.number, ())
        )
        for i in incidents
    }


def _responders_of(incident: Incident, page: Page | None, actors: Iterable[str]) -> frozenset[str]:
    people = {incident.commander, incident.declared_by, *actors}
    if incident.comms_lead:
        people.add(incident.comms_lead)
    if incident.handoff:
        people.add(incident.handoff.to)
    if page is not None:
        people.update(page.paged_users)
    people.discard("router")
    return frozenset(people)


ALERT_DAYS = 30


def _alert_days(tx: SqlTx, alert_name: str, now: datetime) -> tuple[DayCount, ...]:
    """Pages of one alert per day over the last ``ALERT_DAYS``, and those declared."""
    since = now - timedelta(days=ALERT_DAYS - 1)  # today is the last of them
    pages: Counter[date] = Counter()
    declared: Counter[date] = Counter()
    for day, status, n in tx.page_days(since.timestamp(), now.timestamp(), alert_name):
        pages[_EPOCH_DAY + timedelta(days=day)] += n
        if status == PageStatus.DECLARED.value:
            declared[_EPOCH_DAY + timedelta(days=day)] += n
    return tuple(DayCount(day, pages[day], declared[day]) for day in _days(since, now))


def _dm_job(page: Page) -> str | None:
    """The job whose message is the page's DM: its digest's part when it was folded."""
    if page.digest_key is not None and page.digest_position is not None:
        return keys.digest_part(page.digest_key, part_of(page.digest_position))
    if page.paged:
        return page.paged[0].dm_job
    return None


def _issue_link(label: str, results: dict[str, dict[str, Any]], job: str | None) -> Link | None:
    url = results.get(job, {}).get("html_url") if job else None
    return Link(label, str(url)) if url else None


def _alert_item(alert: Alert) -> AlertItem:
    return AlertItem(
        name=alert.name,
        firing=alert.status is AlertStatus.FIRING,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        summary=alert.summary,
        labels=tuple((k, alert.labels[k]) for k in _DISTINGUISHING if k in alert.labels),
        links=tuple(Link(link.text, link.href) for link in alert.links),
    )


_EPOCH_DAY = date(1970, 1, 1)


def _day(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, UTC).date()


def _days(since: datetime, until: datetime) -> list[date]:
    first, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
