"""What each console page shows, as plain data: the pages render these and nothing else.

The console reads through one port, :class:`ConsoleSource`; whoever implements it (the
store, or a stand-in in tests) fills these dataclasses. They carry no behaviour beyond
small derived facts, so a template never has to compute policy. Times are aware UTC
datetimes; durations are seconds.

Who may see an incident is not decided here: each incident carries its
:class:`IncidentAccess` and the console asks :mod:`router.adapters.web.access`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from router.core.incident import Flag, IncidentStatus
from router.core.page import PageStatus
from router.core.severity import Severity


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Person:
    """Someone in Slack: the id is what the router stores, the name what people read."""

    user: str  # a Slack user id (or an e-mail where no directory maps it)
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.user


@dataclass(frozen=True)
class IncidentAccess:
    """What decides who may see an incident (see :mod:`router.adapters.web.access`)."""

    confidential: bool = False
    # Its responders: commander, comms lead, everyone paged for it and everyone who
    # acted on it; Slack user ids, or e-mails where the rotation lists e-mails.
    responders: frozenset[str] = frozenset()


# ----------------------------------------------------------------------- incidents

_PERSON = re.compile(r"^[A-Za-z0-9._@+-]{1,80}$")  # a user id, or an e-mail
StatusFilter = Literal["open", "all"] | IncidentStatus
AGES: Mapping[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}


class QueryError(ValueError):
    """A filter in the address that cannot be read; the page says which (400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class IncidentQuery:
    """The incidents list's filters, read from its query string."""

    status: StatusFilter = "open"
    severity: Severity | None = None
    commander: str | None = None  # a Slack user id
    age: str = "30d"  # a key of AGES: declared within that long ago
    since: datetime | None = None  # from age and the clock: declared at or after

    @classmethod
    def from_query(cls, query: Mapping[str, str], now: datetime) -> IncidentQuery:
        status: StatusFilter
        raw_status = query.get("status") or "open"
        if raw_status in ("open", "all"):
            status = "open" if raw_status == "open" else "all"
        else:
            try:
                status = IncidentStatus(raw_status)
            except ValueError:
                choices = ", ".join(["open", "all", *IncidentStatus])
                raise QueryError("status", f"must be one of {choices}") from None
        severity = None
        if raw := query.get("severity"):
            try:
                severity = Severity(raw)
            except ValueError:
                choices = ", ".join(Severity)
                raise QueryError("severity", f"must be one of {choices}") from None
        commander = query.get("commander") or None
        if commander is not None and not _PERSON.match(commander):
            raise QueryError("commander", "must be a Slack user id like U0123ABCD")
        age = query.get("age") or "30d"
        if age not in AGES:
            raise QueryError("age", "must be one of " + ", ".join(AGES))
        window = AGES[age]
        return cls(
            status=status,
            severity=severity,
            commander=commander,
            age=age,
            since=None if window is None else now - window,
        )

    def matches(self, row: IncidentRow) -> bool:
        """The filter in Python, for sources that cannot say it in SQL."""
        if self.status == "open":
            if row.status not in (IncidentStatus.ACTIVE, IncidentStatus.MITIGATED):
                return False
        elif self.status != "all" and row.status != self.status:
            return False
        if self.severity is not None and row.severity != self.severity:
            return False
        if self.commander is not None and row.commander.user != self.commander:
            return False
        return self.since is None or row.declared_at >= self.since


@dataclass(frozen=True)
class IncidentRow:
    """One line of the incidents list."""

    number: int
    title: str
    severity: Severity
    status: IncidentStatus
    commander: Person
    declared_at: datetime
    updated_at: datetime | None = None  # the newest timeline entry
    flags: tuple[Flag, ...] = ()
    slack: Link | None = None  # the incident's channel, or its thread
    tracking_issue: Link | None = None
    access: IncidentAccess = IncidentAccess()

    redacted = False

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


@dataclass(frozen=True)
class RedactedRow:
    """A confidential incident in a list, as someone who may not see it sees it: the
    same facts Slack shows outside its channel (id, commander, severity), no more."""

    number: int
    severity: Severity
    status: IncidentStatus
    commander: Person
    declared_at: datetime

    redacted = True

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"

    @classmethod
    def of(cls, row: IncidentRow) -> RedactedRow:
        return cls(row.number, row.severity, row.status, row.commander, row.declared_at)


# ------------------------------------------------------------------- one incident


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    actor: Person | None  # None: the router itself
    kind: str  # declared, severity_changed, status_update, ... (router.core.duties)
    text: str  # the entry in words (router.core.reports.describe says them)


@dataclass(frozen=True)
class AlertItem:
    name: str
    firing: bool
    starts_at: datetime
    ends_at: datetime | None = None
    summary: str = ""
    labels: tuple[tuple[str, str], ...] = ()  # the few that tell alerts apart
    links: tuple[Link, ...] = ()  # runbook, dashboard, source


@dataclass(frozen=True)
class IncidentLinks:
    slack_channel: Link | None = None
    slack_thread: Link | None = None  # the announcement in #incident-response
    tracking_issue: Link | None = None
    postmortem: Link | None = None

    def present(self) -> list[Link]:
        links = (self.slack_channel, self.slack_thread, self.tracking_issue, self.postmortem)
        return [link for link in links if link is not None]


@dataclass(frozen=True)
class IncidentDetail:
    number: int
    title: str
    severity: Severity
    severity_reason: str  # the matched clause, or the commander's reason for a change
    clause: str  # the policy clause of the suggestion
    suggested: Severity
    evidence: tuple[str, ...]  # each condition that matched, e.g. 'label severity = "critical"'
    status: IncidentStatus
    commander: Person
    declared_at: datetime
    declared_by: Person
    comms_lead: Person | None = None
    handoff_to: Person | None = None  # offered, not yet accepted
    flags: tuple[Flag, ...] = ()
    escalated: bool = False
    vendors: tuple[str, ...] = ()
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution: str | None = None
    postmortem_owed: bool = False
    timeline: tuple[TimelineItem, ...] = ()
    alerts: tuple[AlertItem, ...] = ()
    links: IncidentLinks = IncidentLinks()
    postmortem_draft: str | None = None  # Markdown, as router.core.reports.postmortem made it
    access: IncidentAccess = IncidentAccess()
    # How its alert has paged lately (alert quality for this one alert name): per day,
    # pages and how many of them were declared.
    alert_name: str | None = None
    alert_days: tuple[DayCount, ...] = ()

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"

    @property
    def firing(self) -> int:
        return sum(1 for a in self.alerts if a.firing)


# -------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class PageRow:
    """An open page. ``digest`` is set when storm control folded it into a digest DM."""

    key: str
    title: str
    source: str
    status: PageStatus
    opened_at: datetime
    severity: Severity  # suggested
    clause: str
    paged: tuple[Person, ...] = ()
    level: int = 0  # escalation steps taken
    alert_count: int = 0
    firing_count: int = 0
    all_resolved: bool = False
    digest: str | None = None  # key of the digest page it was folded into
    dm: Link | None = None  # opens the page's DM (or its digest's) in Slack
    incident_number: int | None = None

    @property
    def state(self) -> str:
        """The page's state in words, as the on-call would say it."""
        if self.status is not PageStatus.OPEN:
            return self.status.value
        if self.all_resolved:
            return "all alerts resolved"
        if self.level:
            return f"escalated ({self.level})"
        return "waiting for a decision"


@dataclass(frozen=True)
class DigestGroup:
    """Pages folded into one digest DM, shown together under it."""

    digest: str
    recipient: Person | None
    dm: Link | None
    pages: tuple[PageRow, ...]


def group_pages(rows: Sequence[PageRow]) -> tuple[list[PageRow], list[DigestGroup]]:
    """Pages paged one by one, and the folded ones grouped by their digest."""
    single = [r for r in rows if r.digest is None]
    groups: dict[str, list[PageRow]] = {}
    for row in rows:
        if row.digest is not None:
            groups.setdefault(row.digest, []).append(row)
    digests = [
        DigestGroup(
            digest=key,
            recipient=members[0].paged[0] if members[0].paged else None,
            dm=next((m.dm for m in members if m.dm is not None), None),
            pages=tuple(members),
        )
        for key, members in groups.items()
    ]
    return single, digests


# ------------------------------------------------------------------ alert quality

WINDOWS: tuple[int, ...] = (7, 30, 90)


@dataclass(frozen=True)
class QualityWindow:
    days: int
    since: datetime
    until: datetime

    @classmethod
    def from_query(cls, query: Mapping[str, str], now: datetime) -> QualityWindow:
        raw = query.get("days") or "30"
        # isdigit() takes "²" too, which int() refuses: compare with the windows' names
        if raw not in {str(days) for days in WINDOWS}:
            raise QueryError("days", "must be one of " + ", ".join(map(str, WINDOWS)))
        days = int(raw)
        return cls(days=days, since=now - timedelta(days=days), until=now)


@dataclass(frozen=True)
class AlertNameStats:
    """How one alert name served the on-call within the window."""

    alert_name: str
    pages: int
    declared: int
    dismissed: int
    dismiss_reasons: tuple[tuple[str, int], ...] = ()  # (reason, count), most first
    decide_median_seconds: float | None = None  # page opened -> declared or dismissed
    decide_p90_seconds: float | None = None
    top_pager: bool = False  # set by mark_standouts
    top_dismissed: bool = False

    @property
    def undecided(self) -> int:
        return max(self.pages - self.declared - self.dismissed, 0)

    @property
    def dismiss_ratio(self) -> float:
        return self.dismissed / self.pages if self.pages else 0.0


@dataclass(frozen=True)
class DayCount:
    day: date
    pages: int
    incidents: int


@dataclass(frozen=True)
class DayDurations:
    """Medians, in seconds, of what was decided, mitigated or resolved that day."""

    day: date
    decide: float | None = None
    mitigate: float | None = None
    resolve: float | None = None


@dataclass(frozen=True)
class AlertQuality:
    window: QualityWindow
    rows: tuple[AlertNameStats, ...]
    per_day: tuple[DayCount, ...] = ()
    durations: tuple[DayDurations, ...] = ()
    total_pages: int = field(default=0)
    total_incidents: int = field(default=0)


def mark_standouts(rows: Sequence[AlertNameStats], top: int = 3) -> tuple[AlertNameStats, ...]:
    """Flag the alert names that page most and that are dismissed most, and sort the
    rows by pages (most first, then by name) so the noisiest lead the table."""
    by_pages = sorted((r for r in rows if r.pages), key=lambda r: (-r.pages, r.alert_name))
    by_dismissed = sorted(
        (r for r in rows if r.dismissed), key=lambda r: (-r.dismissed, -r.pages, r.alert_name)
    )
    pagers = {r.alert_name for r in by_pages[:top]}
    dismissed = {r.alert_name for r in by_dismissed[:top]}
    marked = [
        replace(r, top_pager=r.alert_name in pagers, top_dismissed=r.alert_name in dismissed)
        for r in rows
    ]
    return tuple(sorted(marked, key=lambda r: (-r.pages, r.alert_name)))


# --------------------------------------------------------------------------- port


class ConsoleSource(Protocol):
    """What the console reads. Each method is one read; none changes anything.

    ``incidents`` returns every incident the query matches, confidential or not: the
    console itself redacts what the viewer may not see, so an implementation cannot
    forget to. ``incident`` returns None for a number that does not exist.
    """

    async def incidents(self, query: IncidentQuery) -> Sequence[IncidentRow]: ...

    async def incident(self, number: int) -> IncidentDetail | None: ...

    async def pages(self) -> Sequence[PageRow]: ...

    async def open_page_count(self) -> int:
        """How many pages are open: ``pages`` may show only the newest of a storm."""
        ...

    async def alert_quality(self, window: QualityWindow) -> AlertQuality: ...
