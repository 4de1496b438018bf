"""A storm digest: the pages storm control folded, in front of one person.

Past ``paging.storm_limit`` new pages per person per window, further pages are not
sent one by one; each becomes a line of the window's digest. Nothing is dropped: the
digest lists every folded page, split over as many Slack messages ("parts") as
Slack's limits need, each line with its title, suggested severity, alert count and
state, and each open page can be declared from the digest.

The digest's own state (how many pages, who got it, how many parts were posted) is
one row; each line is a row of its own. Folding a page appends one line, and a part
is re-rendered from its own lines only, so the cost of a fold never depends on how
many pages the digest already holds.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from router.core.page import Page, PagedPerson, PageStatus
from router.core.severity import Severity

# Lines per message. Slack's limits (50 blocks, 3,000 characters a section, 100
# options a select) leave room for more; a hundred keeps a message readable and lets
# one select offer every open page of the part.
PART_SIZE = 100


class DigestLine(BaseModel):
    """One folded page, as its digest line shows it."""

    position: int  # 1, 2, ...: the order pages were folded in
    page_key: str
    title: str
    severity: Severity
    firing: int
    resolved: int
    status: PageStatus
    all_resolved: bool = False
    incident_number: int | None = None

    @property
    def part(self) -> int:
        return part_of(self.position)

    @property
    def waiting(self) -> bool:
        """Still needs a decision (what an escalated digest lists)."""
        return self.status is PageStatus.OPEN and not self.all_resolved

    @classmethod
    def of(cls, page: Page) -> DigestLine:
        if page.digest_position is None:
            raise ValueError(f"page {page.key} is not folded into a digest")
        counts = page.counts
        return cls(
            position=page.digest_position,
            page_key=page.key,
            title=page.title,
            severity=page.suggestion.severity,
            firing=counts.firing if counts else 0,
            resolved=counts.resolved if counts else 0,
            status=page.status,
            all_resolved=page.all_resolved,
            incident_number=page.incident_number,
        )


class Digest(BaseModel):
    key: str  # digest:<user>:<window>
    assignee: str
    opened_at: datetime
    pages: int = 0  # lines so far
    parts_posted: int = 0  # parts of the assignee's copy whose DM was queued
    paged: list[PagedPerson] = []  # the assignee, then each escalation
    level: int = 0  # escalation steps taken
    version: int = 0  # guards saves; the seq of its message edits

    @property
    def paged_users(self) -> list[str]:
        return [p.user for p in self.paged]


def part_of(position: int) -> int:
    """The part (0, 1, ...) holding line ``position`` (1, 2, ...)."""
    return (position - 1) // PART_SIZE


def positions(part: int) -> range:
    return range(part * PART_SIZE + 1, (part + 1) * PART_SIZE + 1)
