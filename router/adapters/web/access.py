"""Who may see what in the console.

Everyone signed in sees the lists. A confidential incident is seen only by its
responders and the configured responder group (``oncall.responders``): anyone else gets
403 on its page, and lists show of it only what Slack shows outside its channel (id,
commander, severity, status). The rule is a pure function of the viewer and the
incident's :class:`~router.adapters.web.views.IncidentAccess`, which the source fills.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from router.adapters.web.views import IncidentAccess


@dataclass(frozen=True)
class Viewer:
    """The person signed in to the console."""

    user: str  # their Slack user id (the e-mail where no directory maps one)
    name: str
    email: str | None
    via: Literal["slack", "proxy"]

    @property
    def identities(self) -> frozenset[str]:
        """Every name a rotation or an incident may know this person by."""
        return frozenset(i for i in (self.user, self.email) if i)


class AccessPolicy(Protocol):
    def may_view(self, viewer: Viewer, incident: IncidentAccess) -> bool:
        """True if the viewer may see the incident's detail."""
        ...


class ResponderAccess:
    """Confidential incidents: their responders and the responder group only."""

    def __init__(self, responder_group: Iterable[str]) -> None:
        self.responder_group = frozenset(responder_group)

    def may_view(self, viewer: Viewer, incident: IncidentAccess) -> bool:
        if not incident.confidential:
            return True
        ids = viewer.identities
        return bool(ids & incident.responders) or bool(ids & self.responder_group)
