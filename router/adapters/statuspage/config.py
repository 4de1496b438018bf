"""The ``statuspage`` configuration: which page, which components, how they turn red.

The API key is the secret ``STATUSPAGE_API_KEY`` (sent as ``Authorization: OAuth
<key>``), never in the file.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from router.core.severity import Severity
from router.core.strict import Strict

ComponentStatus = Literal[
    "operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"
]

# Statuspage ids: lower-case letters and digits ("p31zjtct2jer").
_ID = re.compile(r"[a-z0-9]{6,20}")

# The policy's severity classes read as what customers see of a component.
DEFAULT_COMPONENT_STATUS: dict[Severity, ComponentStatus] = {
    Severity.CRITICAL: "major_outage",  # extreme or complete production outage
    Severity.HIGH: "partial_outage",  # partial outage, some functionality or regions
    Severity.MEDIUM: "degraded_performance",  # non-critical functionality degraded
    Severity.LOW: "operational",  # no current or known customer impact
}


class StatuspageConfig(Strict):
    """The ``statuspage`` section."""

    api_url: str = "https://api.statuspage.io/v1"
    page_id: str
    # The components an incident's notice marks as affected.
    component_ids: list[str] = Field(default_factory=list)
    # The status those components take for the incident's severity (resolved: operational).
    component_status: dict[Severity, ComponentStatus] = Field(
        default_factory=lambda: dict(DEFAULT_COMPONENT_STATUS)
    )
    # Statuspage e-mails/texts the page's subscribers about each published update.
    deliver_notifications: bool = True
    # The public incident's name. Not the internal title: that may say what customers
    # must not read (incident information is confidential).
    incident_name: str = Field("Service disruption", min_length=1, max_length=255)
    # The resolution notice drafted for the commander when the incident resolves.
    resolution_text: str = Field(
        "This incident has been resolved. Thank you for your patience.",
        min_length=1,
        max_length=25_000,
    )
    timeout_seconds: float = Field(10.0, gt=0, le=60)

    @field_validator("api_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local stand-in)")
        return value.rstrip("/")

    @field_validator("page_id")
    @classmethod
    def _page(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError("must be a Statuspage page id like gytm4qzbx9t6")
        return value

    @field_validator("component_ids")
    @classmethod
    def _components(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if not _ID.fullmatch(c)]
        if bad:
            raise ValueError(f"must be Statuspage component ids like 8kbf7d35c070 ({bad[0]!r})")
        return value

    @field_validator("component_status")
    @classmethod
    def _every_severity(cls, value: dict[Severity, ComponentStatus]) -> dict[Severity, str]:
        # A partial mapping falls back to the default for the severities it leaves out.
        return {**DEFAULT_COMPONENT_STATUS, **value}
