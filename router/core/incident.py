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

from router.core.alerts import Truncation
from router.core.severity import Severity, Suggestion


class IncidentStatus(StrEnum):
    ACTIVE = "active"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Flag(StrEnum):
    """Facts the commander records that change what the policy asks at the end."""

    OUTAGE = "outage"  # production outage: post-mortem owed
    DATA_LOSS = "data-loss"  # customer or critical data lost: post-mortem, BCP/DR
    CUSTOMERS = "customers"  # customers affected: consider public communication


class Handoff(BaseModel):
    to: str
    offered_by: str
    offered_at: datetime


class PublicDraft(BaseModel):
    """A public notice shown to its author as a preview, waiting for Confirm."""

    id: str  # the incident's version when drafted: a stale preview's Confirm is refused
    text: str
    status: str  # investigating | identified | monitoring | resolved
    by: str
    at: datetime


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
    comms_lead: str | None = None
    handoff: Handoff | None = None  # offered, not yet accepted: the old IC stays IC
    flags: list[Flag] = []
    vendors: list[str] = []  # vendors contacted
    escalated: bool = False  # leadership was brought in
    escalated_at: datetime | None = None
    tracking_issue_job: str | None = None  # key of the GITHUB_ISSUE job
    postmortem_job: str | None = None
    postmortem_owed: bool = False
    last_update_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution: str | None = None
    # Only its responders and the responder group see its details (outside its own
    # channel: its id, commander and severity); nothing of it goes to the public page.
    confidential: bool = False
    # Alerts of its page's group that the sender had cut (max_alerts) when declared.
    truncation: Truncation | None = None
    doc_job: str | None = None  # key of the first google.doc job
    doc_url: str | None = None  # the collaborative doc, once made
    public_draft: PublicDraft | None = None  # a public notice awaiting Confirm
    public_first_job: str | None = None  # the statuspage.notice job that opened it
    public_last_job: str | None = None  # the latest confirmed statuspage.notice job
    public_status: str | None = None  # the status of the last confirmed public notice
    public_url: str | None = None  # the public incident's page (Statuspage shortlink)
    description: str | None = None  # what the declaring person typed
    customer_impact: str | None = None  # what the resolving person typed
    # Its own Slack channel (incident.channel.mode: channel): the key of the job that
    # creates it, and once that ran, the channel's id and name.
    channel_job: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    topic: str | None = None  # the channel topic last asked for (kept in step)
    version: int = 0

    @property
    def open(self) -> bool:
        return self.status in (IncidentStatus.ACTIVE, IncidentStatus.MITIGATED)

    @property
    def postmortem_required(self) -> bool:
        """Policy: a production outage or loss of customer/critical data owes one."""
        return (
            self.severity.value == "critical"
            or Flag.OUTAGE in self.flags
            or Flag.DATA_LOSS in self.flags
        )

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


class TimelineEntry(BaseModel):
    at: datetime
    actor: str  # a Slack user id, or "router" for what the router did itself
    kind: str  # declared, severity_changed, alert_firing, alert_resolved, ...
    data: dict[str, Any] = Field(default_factory=dict)
