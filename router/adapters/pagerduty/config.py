"""The ``oncall.provider`` and ``oncall.pagerduty`` configuration.

``router.config.OncallSection`` holds them: ``provider: pagerduty`` makes PagerDuty
answer ``who_is_on``; the section's ``rotations`` then become optional and, when given,
answer only until PagerDuty has answered once (``Source.CONFIG``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from router.core.oncall import ENG_PRIMARY
from router.core.strict import Strict

OncallProvider = Literal["config", "pagerduty"]

# PagerDuty object ids: upper-case letters and digits ("PI7DH85").
_PD_ID = re.compile(r"[A-Z0-9]{2,20}")
# A Slack user id: U... or W... (Enterprise Grid).
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,20}")


class PagerDutyOncallConfig(Strict):
    """The ``oncall.pagerduty`` section."""

    api_url: str = Field("https://api.pagerduty.com", description="REST API base URL")
    # Role (eng-primary, eng-secondary, leadership, ...) -> PagerDuty schedule id.
    schedules: dict[str, str]
    # How often to ask PagerDuty again.
    refresh_seconds: int = Field(300, ge=30)
    # How far ahead each refresh asks: answers for any time inside it come from the
    # snapshot, with the shifts' real handoffs, even while PagerDuty is unreachable.
    cache_seconds: int = Field(86_400, ge=60, le=90 * 86_400)
    # PagerDuty user id or e-mail -> Slack user id; looked up before Slack is asked
    # (users.lookupByEmail with the PagerDuty e-mail).
    user_map: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(10.0, gt=0, le=60)

    @field_validator("api_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local stand-in)")
        return value.rstrip("/")

    @field_validator("schedules")
    @classmethod
    def _schedule_ids(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(role for role, schedule in value.items() if not _PD_ID.fullmatch(schedule))
        if bad:
            raise ValueError(
                f"schedule ids must be PagerDuty ids like PI7DH85 (roles {', '.join(bad)})"
            )
        if ENG_PRIMARY not in value:
            raise ValueError(f"must define {ENG_PRIMARY!r}: it is paged first")
        return value

    @field_validator("user_map")
    @classmethod
    def _slack_ids(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(who for who, slack in value.items() if not _SLACK_USER.fullmatch(slack))
        if bad:
            raise ValueError(f"values must be Slack user ids like U0123ABCD (for {', '.join(bad)})")
        return value

    @model_validator(mode="after")
    def _window_outlives_refresh(self) -> PagerDutyOncallConfig:
        # A window shorter than two refreshes would run out before a failed refresh
        # had been retried once.
        if self.cache_seconds < 2 * self.refresh_seconds:
            raise ValueError(
                f"oncall.pagerduty.cache_seconds ({self.cache_seconds}) must be at least"
                f" twice refresh_seconds ({self.refresh_seconds})"
            )
        return self

    def slack_id_for(self, user_id: str, email: str | None) -> str | None:
        """The configured Slack id for a PagerDuty user, by id first, then e-mail."""
        if user_id in self.user_map:
            return self.user_map[user_id]
        if email:
            wanted = email.casefold()
            for key, slack in self.user_map.items():
                if key.casefold() == wanted:
                    return slack
        return None


def provider_problems(
    provider: OncallProvider,
    pagerduty: PagerDutyOncallConfig | None,
    rotations: Iterable[str],
) -> list[str]:
    """What is wrong with ``oncall.provider`` given the rest of the ``oncall`` section.

    For ``router.config.OncallSection``'s validator: with ``provider: config`` the rotations
    must define eng-primary (today's rule) and a ``pagerduty`` block is a mistake; with
    ``provider: pagerduty`` the block is required and rotations are an optional
    fallback, whose roles must then be ones PagerDuty answers for too.
    """
    names = set(rotations)
    if provider == "config":
        problems = []
        if pagerduty is not None:
            problems.append("oncall.pagerduty is set but oncall.provider is 'config'")
        return problems
    if pagerduty is None:
        return ["oncall.provider is 'pagerduty' but oncall.pagerduty is not set"]
    extra = sorted(names - set(pagerduty.schedules))
    if extra:
        return [
            "oncall.rotations are the fallback for PagerDuty's schedules, but"
            f" oncall.pagerduty.schedules has no {', '.join(repr(r) for r in extra)}"
        ]
    return []
