"""The policy's settings, as the config file spells them: paging (``paging:``) and
the commander's duties (``incident:``).

Pure pydantic models, here in the core because the policy (``router.core.policy``)
and the reports read them; ``router.config`` puts them in its ``RouterConfig``
(``incident.doc``, the Google adapter's settings, is added there, in
``IncidentSection``: the core only needs to know whether a doc is made).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from router.core.severity import Severity
from router.core.strict import Strict


class PagingConfig(Strict):
    ack_timeout_seconds: int = Field(300, ge=10)
    storm_limit: int = Field(5, ge=1, description="new pages per person per window")
    storm_window_seconds: int = Field(600, ge=10)
    max_alerts_shown: int = Field(10, ge=1)
    # At most one edit of a Slack message per this many seconds: a burst of deliveries
    # to one page (or digest, or announcement) becomes one chat.update with the newest
    # state. Slack allows about one update a second per channel.
    edit_interval_seconds: float = Field(1.0, ge=0)

    @property
    def ack_timeout(self) -> timedelta:
        return timedelta(seconds=self.ack_timeout_seconds)


class WorkHoursConfig(Strict):
    """When the working day ends: the commander is prompted to hand off then."""

    timezone: str = "UTC"
    end: str = Field("18:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="quote it")
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = (
        "mon", "tue", "wed", "thu", "fri",
    )  # fmt: skip

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class VendorConfig(Strict):
    contact: str = Field(description="how to reach them: support line, portal, account id")
    url: str | None = None
    notes: str | None = None


class ChannelConfig(Strict):
    """Where an incident lives in Slack: a channel of its own (``channel``), or a
    thread of #incident-response (``thread``, the behaviour before channels)."""

    mode: Literal["channel", "thread"] = "channel"
    # Fields: {number}, {slug} (the title; left out for a confidential incident),
    # {severity}, {date} (YYYYMMDD). Slack's naming rules are applied to the result.
    name_template: str = "inc-{number}-{slug}"
    # Policy: incident information is confidential. A public channel is for teams that
    # want everyone to follow along (it needs channels:manage instead of groups:write).
    private: bool = True
    # Invited to every incident channel, besides the commander, the people paged for
    # it and the communications lead (Slack user ids).
    responders: tuple[str, ...] = ()
    # Days after the incident closes that its channel is archived (0: never).
    archive_after_days: int = Field(0, ge=0, le=3650)

    @field_validator("name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        from router.core.channel_names import TemplateError, check_template

        try:
            check_template(value)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("responders")
    @classmethod
    def _user_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for user in value:
            if not re.fullmatch(r"[UW][A-Z0-9]{2,}", user):
                raise ValueError(f"{user!r} is not a Slack user id (U...)")
        return value


class IncidentConfig(Strict):
    """The commander's duties the router helps with (the policy's "After declaration")."""

    channel: ChannelConfig = ChannelConfig()

    # Open the GitHub tracking issue automatically at or above this severity
    # (null: only on request, by command or button).
    tracking_issue_at: Severity | None = Severity.HIGH
    # Status-update reminder cadence per severity, in minutes (0: no reminders).
    status_update_minutes: dict[Severity, int] = {
        Severity.CRITICAL: 30,
        Severity.HIGH: 60,
        Severity.MEDIUM: 240,
        Severity.LOW: 0,
    }
    # A critical incident not mitigated by then prompts the commander to escalate.
    escalate_critical_after_minutes: int = Field(60, ge=0)
    work_hours: WorkHoursConfig | None = WorkHoursConfig()
    # While a post-mortem is owed, how often to look whether its issue was closed.
    postmortem_check_minutes: int = Field(60, ge=0)
    bcp_dr_url: str | None = Field(None, description="the BCP/DR policy, for recovery")
    risk_register_url: str | None = None
    vendors: dict[str, VendorConfig] = {}
