"""A page: a suspected incident put in front of one person for a decision.

Open until declared, dismissed, or all its alerts resolve (it can still be declared
then: a flapping outage is still an outage). At most one page per alert group is
*active* at a time; the store enforces it with a unique index.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from router.alerts import Truncation
from router.severity import Suggestion

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


class Page(BaseModel):
    key: str
    group_key: str
    source: str
    title: str
    opened_at: datetime
    status: PageStatus = PageStatus.OPEN
    active: bool = True
    assignee: str | None = None  # who eng-primary was when the page opened
    paged: list[PagedPerson] = []
    level: int = 0  # escalation steps taken (index into oncall.ESCALATION_ORDER)
    suggestion: Suggestion
    all_resolved: bool = False
    digest_key: str | None = None  # folded into a digest by storm control
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    incident_number: int | None = None
    pagerduty_dedup_key: str | None = None
    # Alerts of the group its sender cut from the latest message (max_alerts).
    truncation: Truncation | None = None
    version: int = 0

    def may_decide(self, user: str, responders: frozenset[str]) -> bool:
        """Only the people paged and the configured responders may decide."""
        return user in responders or any(p.user == user for p in self.paged)

    @property
    def paged_users(self) -> list[str]:
        return [p.user for p in self.paged]
