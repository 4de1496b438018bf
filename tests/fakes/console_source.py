"""An in-memory :class:`~router.adapters.web.views.ConsoleSource` with believable data.

The console's tests and screenshots render from it; the store's implementation must
answer the same shapes. ``sample(now)`` is a small week of an on-call's life: three
incidents (one confidential), pages with a storm folded into a digest, and thirty days
of alert quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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
from router.core.incident import Flag, IncidentStatus
from router.core.page import PageStatus
from router.core.severity import Severity

JANE = Person("U0JANE0001", "Jane Doe")
JOHN = Person("U0JOHN0002", "John Roe")
RAVI = Person("U0RAVI0003", "Ravi Patel")
MEI = Person("U0MEI00004", "Mei Chen")
TEAM = "T0FAKETEAM"


def slack_link(label: str, channel: str) -> Link:
    return Link(label, f"https://slack.com/app_redirect?channel={channel}&team={TEAM}")


@dataclass
class MemorySource:
    details: dict[int, IncidentDetail] = field(default_factory=dict)
    page_rows: list[PageRow] = field(default_factory=list)
    quality: AlertQuality | None = None
    queries: list[IncidentQuery] = field(default_factory=list)

    async def incidents(self, query: IncidentQuery) -> Sequence[IncidentRow]:
        self.queries.append(query)
        rows = [row_of(d) for d in sorted(self.details.values(), key=lambda d: -d.number)]
        return [r for r in rows if query.matches(r)]

    async def incident(self, number: int) -> IncidentDetail | None:
        return self.details.get(number)

    async def pages(self) -> Sequence[PageRow]:
        return list(self.page_rows)

    async def open_page_count(self) -> int:
        return len(self.page_rows)

    async def alert_quality(self, window: QualityWindow) -> AlertQuality:
        assert self.quality is not None, "no alert quality in this source"
        days = [d for d in self.quality.per_day if d.day >= window.since.date()]
        durations = [d for d in self.quality.durations if d.day >= window.since.date()]
        return AlertQuality(
            window=window,
            rows=self.quality.rows,
            per_day=tuple(days),
            durations=tuple(durations),
            total_pages=sum(d.pages for d in days),
            total_incidents=sum(d.incidents for d in days),
        )


def row_of(d: IncidentDetail) -> IncidentRow:
    return IncidentRow(
        number=d.number,
        title=d.title,
        severity=d.severity,
        status=d.status,
        commander=d.commander,
        declared_at=d.declared_at,
        updated_at=d.timeline[-1].at if d.timeline else None,
        flags=d.flags,
        slack=d.links.slack_channel or d.links.slack_thread,
        tracking_issue=d.links.tracking_issue,
        access=d.access,
    )


def sample(now: datetime) -> MemorySource:
    source = MemorySource()
    for detail in (_checkout(now), _replication(now), _breach(now), _old(now)):
        source.details[detail.number] = detail
    source.page_rows = _pages(now)
    source.quality = _quality(now)
    return source


POSTMORTEM = """# Post-mortem: INC-42 Checkout API p99 latency over 2 s

## Details
- Severity: critical — extreme or complete production outage
- Commander: @U0JANE0001

## Timeline
- 09:12 UTC — the router: page escalated to eng-secondary
- 09:14 UTC — @U0JANE0001: declared; commander U0JANE0001

## Impact
(to fill in)

## Root cause(s)
(to fill in)

## Follow-up actions
- [ ] (to fill in)

## New risks for the risk register
(to fill in)
"""


def _checkout(now: datetime) -> IncidentDetail:
    t0 = now - timedelta(hours=5, minutes=40)
    timeline = (
        TimelineItem(
            t0 - timedelta(minutes=6), None, "page_escalated", "page escalated to eng-secondary"
        ),
        TimelineItem(
            t0,
            JANE,
            "declared",
            "declared; commander Jane Doe, suggested severity critical "
            "(extreme or complete production outage)",
        ),
        TimelineItem(t0 + timedelta(minutes=3), None, "tracking_issue", "tracking issue opened"),
        TimelineItem(
            t0 + timedelta(minutes=9), JANE, "comms_lead", "communications lead: Ravi Patel"
        ),
        TimelineItem(t0 + timedelta(minutes=15), JANE, "flagged", "flagged: outage"),
        TimelineItem(
            t0 + timedelta(minutes=22),
            RAVI,
            "status_update",
            "status update: failing over the payments cache; checkout errors at 30%",
        ),
        TimelineItem(
            t0 + timedelta(minutes=41), JANE, "vendor_contacted", "vendor contacted: cloudcache"
        ),
        TimelineItem(t0 + timedelta(hours=1, minutes=5), JANE, "mitigated", "mitigated"),
        TimelineItem(
            t0 + timedelta(hours=1, minutes=6),
            None,
            "alerts_changed",
            "alerts: 1 firing, 2 resolved",
        ),
    )
    return IncidentDetail(
        number=42,
        title="Checkout API p99 latency over 2 s",
        severity=Severity.CRITICAL,
        severity_reason="extreme or complete production outage",
        clause="extreme or complete production outage",
        suggested=Severity.CRITICAL,
        evidence=('label severity = "critical"', 'label outage = "complete"'),
        status=IncidentStatus.MITIGATED,
        commander=JANE,
        declared_at=t0,
        declared_by=JANE,
        comms_lead=RAVI,
        flags=(Flag.OUTAGE, Flag.CUSTOMERS),
        vendors=("cloudcache",),
        mitigated_at=t0 + timedelta(hours=1, minutes=5),
        postmortem_owed=True,
        timeline=timeline,
        alerts=(
            AlertItem(
                "HighLatency",
                True,
                t0 - timedelta(minutes=20),
                None,
                "p99 > 2s on checkout-api",
                (("service", "checkout"), ("instance", "api-1")),
                (
                    Link("runbook", "https://runbooks.example.com/latency"),
                    Link("graph", "http://prometheus:9090/graph?g0.expr=latency"),
                ),
            ),
            AlertItem(
                "HighLatency",
                False,
                t0 - timedelta(minutes=19),
                t0 + timedelta(hours=1),
                "p99 > 2s on checkout-api",
                (("service", "checkout"), ("instance", "api-2")),
                (),
            ),
            AlertItem(
                "ErrorRateHigh",
                False,
                t0 - timedelta(minutes=15),
                t0 + timedelta(minutes=58),
                "5xx ratio 31% on /checkout",
                (("service", "checkout"),),
                (),
            ),
        ),
        links=IncidentLinks(
            slack_channel=slack_link("#inc-42-checkout-latency", "C0INC00042"),
            slack_thread=slack_link("announcement in #incident-response", "C0INCIDENTS"),
            tracking_issue=Link("acme/incidents#42", "https://github.com/acme/incidents/issues/42"),
        ),
        postmortem_draft=POSTMORTEM,
        access=IncidentAccess(False, frozenset({JANE.user, RAVI.user})),
    )


def _replication(now: datetime) -> IncidentDetail:
    t0 = now - timedelta(days=2, hours=3)
    return IncidentDetail(
        number=41,
        title="Orders database replica lag",
        severity=Severity.MEDIUM,
        severity_reason="non-critical functionality lost or degraded for some customers",
        clause="non-critical functionality lost or degraded for some customers",
        suggested=Severity.MEDIUM,
        evidence=('label severity = "warning"',),
        status=IncidentStatus.RESOLVED,
        commander=JOHN,
        declared_at=t0,
        declared_by=JOHN,
        mitigated_at=t0 + timedelta(minutes=50),
        resolved_at=t0 + timedelta(hours=2),
        resolution="replica rebuilt from a fresh snapshot",
        timeline=(
            TimelineItem(t0, JOHN, "declared", "declared; commander John Roe"),
            TimelineItem(t0 + timedelta(minutes=50), JOHN, "mitigated", "mitigated"),
            TimelineItem(
                t0 + timedelta(hours=2),
                JOHN,
                "resolved",
                "resolved: replica rebuilt from a fresh snapshot",
            ),
        ),
        alerts=(
            AlertItem(
                "ReplicationLag",
                False,
                t0 - timedelta(minutes=10),
                t0 + timedelta(hours=1, minutes=40),
                "replica 14 min behind",
                (("cluster", "orders-db"),),
                (),
            ),
        ),
        links=IncidentLinks(slack_channel=slack_link("#inc-41-orders-replica", "C0INC00041")),
        access=IncidentAccess(False, frozenset({JOHN.user})),
    )


def _breach(now: datetime) -> IncidentDetail:
    t0 = now - timedelta(hours=20)
    return IncidentDetail(
        number=40,
        title="Suspicious admin logins from <unknown> ASN",
        severity=Severity.HIGH,
        severity_reason="suspected severe security breach",
        clause="suspected severe security breach",
        suggested=Severity.HIGH,
        evidence=('label security = "breach"',),
        status=IncidentStatus.ACTIVE,
        commander=MEI,
        declared_at=t0,
        declared_by=MEI,
        timeline=(TimelineItem(t0, MEI, "declared", "declared; commander Mei Chen"),),
        links=IncidentLinks(slack_channel=slack_link("#inc-40", "C0INC00040")),
        access=IncidentAccess(True, frozenset({MEI.user})),
    )


def _old(now: datetime) -> IncidentDetail:
    t0 = now - timedelta(days=45)
    return IncidentDetail(
        number=12,
        title="CDN certificate expired",
        severity=Severity.HIGH,
        severity_reason="partial outage of some production functionality or in some regions",
        clause="partial outage of some production functionality or in some regions",
        suggested=Severity.HIGH,
        evidence=(),
        status=IncidentStatus.CLOSED,
        commander=JOHN,
        declared_at=t0,
        declared_by=JOHN,
        resolved_at=t0 + timedelta(hours=1),
        closed_at=t0 + timedelta(days=3),
        access=IncidentAccess(False, frozenset({JOHN.user})),
    )


def _pages(now: datetime) -> list[PageRow]:
    def dm(user: str) -> Link:
        return slack_link("open the DM", "D0" + user[2:])

    rows = [
        PageRow(
            "p1a2b3c",
            "DiskWillFillIn4Hours on logs-3",
            "alertmanager",
            PageStatus.OPEN,
            now - timedelta(minutes=12),
            Severity.MEDIUM,
            "non-critical functionality lost or degraded for some customers",
            (JOHN,),
            0,
            1,
            1,
            False,
            None,
            dm(JOHN.user),
        ),
        PageRow(
            "p4d5e6f",
            "KafkaConsumerLag payments",
            "alertmanager",
            PageStatus.OPEN,
            now - timedelta(minutes=38),
            Severity.HIGH,
            "degraded experience for several customers with no workaround",
            (JOHN, RAVI),
            1,
            4,
            4,
            False,
            None,
            dm(JOHN.user),
        ),
        PageRow(
            "p7a8b9c",
            "CertificateExpiringSoon api.example.com",
            "pagerduty",
            PageStatus.OPEN,
            now - timedelta(hours=3),
            Severity.LOW,
            "no current or known customer impact",
            (JOHN,),
            0,
            1,
            0,
            True,
            None,
            dm(JOHN.user),
        ),
    ]
    for i, name in enumerate(
        (
            "NodeNotReady node-7",
            "NodeNotReady node-8",
            "PodCrashLooping ingress-nginx",
            "TargetDown kube-state-metrics",
        )
    ):
        rows.append(
            PageRow(
                f"pstorm{i}",
                name,
                "alertmanager",
                PageStatus.OPEN,
                now - timedelta(minutes=8 - i),
                Severity.HIGH,
                "partial outage of some production functionality or in some regions",
                (JOHN,),
                0,
                2 + i,
                2 + i,
                False,
                "dstorm1",
                dm(JOHN.user),
            )
        )
    return rows


def _quality(now: datetime) -> AlertQuality:
    rows = (
        AlertNameStats(
            "HighLatency", 14, 4, 9, (("deploy in progress", 5), ("known flake", 4)), 240.0, 900.0
        ),
        AlertNameStats(
            "NodeNotReady",
            22,
            1,
            19,
            (("spot instance reclaimed", 17), ("planned maintenance", 2)),
            95.0,
            400.0,
        ),
        AlertNameStats("ErrorRateHigh", 12, 10, 1, (("load test", 1),), 180.0, 600.0),
        AlertNameStats("ReplicationLag", 3, 1, 2, (("backup window", 2),), 1500.0, 3000.0),
        AlertNameStats(
            "DiskWillFillIn4Hours", 9, 0, 8, (("log rotation catches up", 8),), 60.0, 200.0
        ),
        AlertNameStats("CertificateExpiringSoon", 2, 0, 0, (), None, None),
    )
    per_day = []
    durations = []
    for back in range(29, -1, -1):
        day = (now - timedelta(days=back)).date()
        pages = (back * 7 + 3) % 6 + (4 if back in (3, 4) else 0)
        incidents = 1 if back % 9 == 2 else 0
        per_day.append(DayCount(day, pages, incidents))
        durations.append(
            DayDurations(
                day,
                decide=float(60 + (back * 37) % 400) if pages else None,
                mitigate=float(1800 + back * 120) if incidents else None,
                resolve=float(5400 + back * 300) if incidents else None,
            )
        )
    return AlertQuality(
        window=QualityWindow(30, now - timedelta(days=30), now),
        rows=rows,
        per_day=tuple(per_day),
        durations=tuple(durations),
    )
