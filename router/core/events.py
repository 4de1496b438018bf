"""What a step did, as typed events (``Outcome.events``), for metrics and logs.

``router.metrics`` reads their fields (``Escalated.role``, ``Reminder.what``), never
their text. Each event is also its name as a string (``"escalated:timeout"``,
``"reminder:status"``), the form logs show and earlier versions emitted.
"""

from __future__ import annotations

from typing import Self


class Event(str):
    """An event with no fields: its name."""

    NAME = ""

    def __new__(cls) -> Self:
        return super().__new__(cls, cls.NAME)


# -- paging ---------------------------------------------------------------------------


class PageOpened(Event):
    NAME = "page_opened"


class PageFolded(Event):
    NAME = "page_folded"  # into a storm digest


class PageAllResolved(Event):
    NAME = "page_all_resolved"


class PageRefired(Event):
    NAME = "page_refired"


class NobodyOnCall(Event):
    NAME = "nobody_on_call"


class Escalated(str):
    """A page (or digest) went to the next level: ``cause`` is ``timeout`` or ``button``;
    ``role`` is who was paged, None when there was nobody further."""

    cause: str
    role: str | None

    def __new__(cls, cause: str, role: str | None) -> Self:
        event = super().__new__(cls, f"escalated:{cause}")
        event.cause, event.role = cause, role
        return event


class EscalationExhausted(Event):
    NAME = "escalation_exhausted"


class Dismissed(Event):
    NAME = "dismissed"


class Declared(Event):
    NAME = "declared"


class Unauthorized(Event):
    """Refused because of who acted (not of what they asked)."""

    NAME = "unauthorized"


# -- the commander's duties -----------------------------------------------------------


class SeverityChanged(str):
    severity: str

    def __new__(cls, severity: str) -> Self:
        event = super().__new__(cls, f"severity:{severity}")
        event.severity = severity
        return event


class CommsLead(Event):
    NAME = "comms_lead"


class HandoffOffered(Event):
    NAME = "handoff_offered"


class HandoffAccepted(Event):
    NAME = "handoff_accepted"


class EscalatedToLeadership(Event):
    NAME = "escalated_to_leadership"


class VendorContacted(Event):
    NAME = "vendor"


class StatusUpdate(Event):
    NAME = "status_update"


class Flagged(Event):
    NAME = "flagged"


class TrackingIssue(Event):
    NAME = "tracking_issue"


class Mitigated(Event):
    NAME = "mitigated"


class Resolved(Event):
    NAME = "resolved"


class PostmortemOwed(Event):
    NAME = "postmortem_owed"


class PostmortemDone(Event):
    NAME = "postmortem_done"


class Invited(Event):
    NAME = "invited"  # someone added to the incident's channel (/incident invite)


class ChannelArchived(Event):
    NAME = "channel_archived"  # archive_after_days after close


class Reminder(str):
    """A reminder to the commander: ``what`` is status, escalation, handoff, ..."""

    what: str

    def __new__(cls, what: str) -> Self:
        event = super().__new__(cls, f"reminder:{what}")
        event.what = what
        return event


AnyEvent = Event | Escalated | SeverityChanged | Reminder
