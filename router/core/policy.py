"""What every decision reads (``Policy``) and returns (``Outcome``).

Shared by the paging lifecycle (``router.core.lifecycle``) and the commander's duties
(``router.core.duties``), so one ``persist`` commits either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.core.digest import Digest
from router.core.events import AnyEvent, Unauthorized
from router.core.incident import Incident, TimelineEntry
from router.core.jobs import Job
from router.core.oncall_snapshot import OnCallSchedule
from router.core.page import Page
from router.core.policy_config import ChannelConfig, IncidentConfig, PagingConfig
from router.core.public_notice import PublicPage
from router.core.severity import SeverityConfig


@dataclass(frozen=True)
class Policy:
    """The static inputs of every decision, from configuration."""

    # The config's rotations (``router.core.oncall.Schedule``) or a provider's current
    # answer (``router.core.oncall_snapshot.CurrentOncall``): roles() and who_is_on().
    schedule: OnCallSchedule
    paging: PagingConfig
    severity: SeverityConfig
    responders: frozenset[str]
    incident_channel: str | None
    operator_channel: str | None = None
    pagerduty: bool = False
    github: bool = False  # a tracking repo and a token are configured
    incident: IncidentConfig = field(default_factory=IncidentConfig)
    doc: bool = False  # incident.doc and its service account key are configured
    statuspage: PublicPage | None = None  # public notices (with STATUSPAGE_API_KEY)
    # <web.public_url>/ui when the console is served: announcements and digests link it.
    console_url: str | None = None
    # Each incident gets a channel of its own; None: a thread of #incident-response.
    channels: ChannelConfig | None = None


@dataclass
class Outcome:
    page: Page | None = None  # the page to insert (new) or save (changed)
    new_page: bool = False
    retire: Page | None = None  # a previous page of the group to make inactive
    digest: Digest | None = None  # the storm digest to store (new or changed)
    incident: Incident | None = None  # the incident to insert (new) or save (changed)
    new_incident: bool = False
    jobs: list[Job] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)  # keys of pending jobs to cancel
    cancel_prefixes: list[str] = field(default_factory=list)  # all arms of a timer
    timeline: list[TimelineEntry] = field(default_factory=list)
    reply: str | None = None  # an ephemeral answer to the person who acted
    reply_blocks: list[dict[str, Any]] | None = None  # its blocks (a preview's buttons)
    refusal: str | None = None  # why the actor may not do this (nothing changed)
    events: list[AnyEvent] = field(default_factory=list)  # for metrics (router.core.events)

    @property
    def unauthorized(self) -> bool:
        """Refused because of who acted (counted in router_unauthorized_actions_total)."""
        return any(isinstance(event, Unauthorized) for event in self.events)
