"""An incident, declared from a page or by a person, and its timeline.

Active -> mitigated -> resolved -> closed (post-mortem done, where one is owed).
The timeline is append-only: every change is an entry with who and when; the
post-mortem's timeline is generated from it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from router.severity import Severity, Suggestion


class IncidentStatus(StrEnum):
    ACTIVE = "active"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Incident(BaseModel):
    number: int
    title: str
    status: IncidentStatus = IncidentStatus.ACTIVE
    commander: str
    severity: Severity
    severity_reason: str  # the matched policy clause, or the IC's reason for a change
    suggestion: Suggestion
    declared_at: datetime
    declared_by: str
    page_key: str | None = None
    group_key: str | None = None
    announce_job: str  # key of the announcement job: its message is the thread root
    version: int = 0

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


class TimelineEntry(BaseModel):
    at: datetime
    actor: str  # a Slack user id, or "router" for what the router did itself
    kind: str  # declared, severity_changed, alert_firing, alert_resolved, ...
    data: dict[str, Any] = Field(default_factory=dict)
