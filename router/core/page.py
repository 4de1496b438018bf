"""A page: a suspected incident put in front of one person for a decision.

Open until declared, dismissed, or all its alerts resolve (it can still be declared
then: a flapping outage is still an outage). At most one page per alert group is
*active* at a time; the store enforces it with a unique index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from router.core.alerts import Alert, AlertStatus, Truncation
from router.core.severity import SeverityConfig, Suggestion, ranked, suggest

# dedup_key prefix of the PagerDuty Events the router triggers for its own pages; the
# PagerDuty webhook source ignores incidents carrying it (no paging loop).
ROUTER_DEDUP_PREFIX = "router:"


class PageStatus(StrEnum):
    OPEN = "open"
    DECLARED = "declared"
    DISMISSED = "dismissed"


class Decision(StrEnum):
    DECLARE = "declare"
    DISMISS = "dismiss"
    ESCALATE = "escalate"


class PagedPerson(BaseModel):
    role: str
    user: str
    at: datetime
    dm_job: str  # key of the job that sent the DM; updates edit that message


class AlertCounts(BaseModel):
    """How many of a page's alerts fire and how many resolved, kept as they change."""

    firing: int = 0
    resolved: int = 0


@dataclass(frozen=True)
class PageAlerts:
    """What a decision sees of a page's alerts, however big its group: the counts, the
    alerts it shows (firing first, then newest) and the worst firing alert, the one
    the severity suggestion rests on. The store reads it by index (``SqlTx.page_view``);
    ``of`` builds it from a list (a new page's delivery, tests)."""

    firing: int = 0
    resolved: int = 0
    shown: tuple[Alert, ...] = ()
    worst: Alert | None = None
    worst_suggestion: Suggestion | None = None  # the worst's, when already known

    @property
    def total(self) -> int:
        return self.firing + self.resolved

    @property
    def counts(self) -> AlertCounts:
        return AlertCounts(firing=self.firing, resolved=self.resolved)

    def suggestion(self, config: SeverityConfig, unseen: Truncation | None = None) -> Suggestion:
        """The suggestion over every firing alert: the worst one's (``severity.order``),
        and what the alerts the sender cut (``unseen``) certainly show."""
        if self.worst_suggestion is not None and (unseen is None or not unseen.count):
            return self.worst_suggestion
        return suggest([self.worst] if self.worst is not None else [], config, unseen)

    @classmethod
    def of(cls, alerts: Iterable[Alert], limit: int, config: SeverityConfig) -> PageAlerts:
        alerts = list(alerts)
        firing = [a for a in alerts if a.status is AlertStatus.FIRING]
        resolved = [a for a in alerts if a.status is AlertStatus.RESOLVED]
        shown = (firing[::-1] + resolved[::-1])[:limit]  # a list's newest is its last
        worst: tuple[int, int, Alert, Suggestion] | None = None
        for index, alert in enumerate(firing):
            rank, suggestion = ranked(alert, config)
            if worst is None or (rank, index) < worst[:2]:  # the first of equals
                worst = (rank, index, alert, suggestion)
        if worst is None:
            return cls(len(firing), len(resolved), tuple(shown))
        return cls(len(firing), len(resolved), tuple(shown), worst[2], worst[3])


# What lists (the console's pages, alert quality) show for a confidential page.
CONFIDENTIAL_TITLE = "Reported (confidential)"


class Page(BaseModel):
    key: str
    group_key: str
    source: str
    title: str
    opened_at: datetime
    # The alert it is about (its title's first name): alert quality counts by it.
    alert_name: str | None = None
    status: PageStatus = PageStatus.OPEN
    active: bool = True
    assignee: str | None = None  # who eng-primary was when the page opened
    paged: list[PagedPerson] = []
    level: int = 0  # escalation steps taken (index into oncall.ESCALATION_ORDER)
    suggestion: Suggestion
    all_resolved: bool = False
    digest_key: str | None = None  # folded into a digest by storm control
    digest_position: int | None = None  # its line in that digest (1, 2, ...)
    # None on pages stored before counts were kept: counted once, then kept.
    counts: AlertCounts | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    incident_number: int | None = None
    pagerduty_dedup_key: str | None = None
    # Alerts of the group its sender cut from the latest message (max_alerts).
    truncation: Truncation | None = None
    # A report whose reporter ticked Confidential (its alert's label): lists show
    # CONFIDENTIAL_TITLE, never its title. Kept in the stored state: no column needed.
    confidential: bool = False
    version: int = 0

    def may_decide(self, user: str, responders: frozenset[str]) -> bool:
        """Only the people paged and the configured responders may decide."""
        return user in responders or any(p.user == user for p in self.paged)

    @property
    def listed_title(self) -> str:
        """The title a list may show to anyone signed in."""
        return CONFIDENTIAL_TITLE if self.confidential else self.title

    @property
    def paged_users(self) -> list[str]:
        return [p.user for p in self.paged]
