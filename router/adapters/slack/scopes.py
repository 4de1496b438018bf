"""The bot scopes the router asks Slack for, why each, and naming the one that is missing.

``BOT_SCOPES`` is the one table: the app manifest (deploy/slack/manifest.yaml) requests
exactly these, and ``REQUIRED`` says which a configured feature cannot work without, so
check-config and start-up can compare it with what the token was granted
(``granted_scopes``: Slack lists them in the ``X-OAuth-Scopes`` header of every Web API
answer) and say what to add before anything fails.

When a call fails for want of a scope Slack answers ``missing_scope`` with ``needed``
(one scope, or several that would each do, comma-separated) and ``provided``;
``call_failure`` turns that into ``MissingScope``, a permanent failure whose reason names
the scope, and sorts every other failure through ``router.adapters.slack.client.slack_failure``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.slack.client import slack_failure
from router.app.effects import PermanentFailure, RetryLater

# scope -> why the router asks for it (the manifest carries the same words)
BOT_SCOPES: dict[str, str] = {
    "chat:write": "post and update pages, announcements and incident summaries",
    "im:write": "open the DM a page is sent to",
    "users:read": "needed with users:read.email to look people up",
    "users:read.email": "find on-call people given by e-mail",
    "commands": "the /incident slash command",
    "channels:history": "look up its own post in a public channel when it cannot tell "
    "whether the post went through",
    "groups:history": "the same in private incident channels",
    "im:history": "the same in page DMs",
    "groups:write": "create private incident channels, invite responders, keep the topic, "
    "archive them after close",
    "channels:manage": "the same for public incident channels (incident.channel.private: false)",
    "channels:read": "find the public incident channel it made when Slack's answer was lost",
    "groups:read": "find the private incident channel it made when Slack's answer was lost",
    "bookmarks:write": "bookmark the tracking issue, runbooks and alerts in the incident channel",
    "bookmarks:read": "see a bookmark is there before adding it again",
}

# feature -> the scopes it cannot work without
REQUIRED: dict[str, tuple[str, ...]] = {
    "paging": ("chat:write", "im:write", "commands"),
    "oncall_by_email": ("users:read", "users:read.email"),
    "unknown_outcomes": ("channels:history", "groups:history", "im:history"),
    "private_incident_channels": (
        "groups:write",
        "groups:read",
        "bookmarks:write",
        "bookmarks:read",
    ),
    "public_incident_channels": (
        "channels:manage",
        "channels:read",
        "bookmarks:write",
        "bookmarks:read",
    ),
}


class MissingScope(PermanentFailure):
    """Slack refused a call for want of a scope; ``needed`` holds the ones that would do."""

    def __init__(self, method: str, needed: tuple[str, ...], provided: frozenset[str]) -> None:
        wanted = " or ".join(needed) if needed else "a scope Slack did not name"
        super().__init__(f"slack {method}: missing_scope (add {wanted} to the app)")
        self.method = method
        self.needed = needed
        self.provided = provided


def error_code(exc: SlackApiError) -> str | None:
    data = getattr(exc.response, "data", None)
    code = data.get("error") if isinstance(data, Mapping) else None
    return code if isinstance(code, str) else None


def missing_scope(method: str, exc: BaseException) -> MissingScope | None:
    if not isinstance(exc, SlackApiError) or error_code(exc) != "missing_scope":
        return None
    data: Mapping[str, Any] = exc.response.data if isinstance(exc.response.data, Mapping) else {}
    needed = tuple(s for s in str(data.get("needed") or "").split(",") if s)
    provided = frozenset(s for s in str(data.get("provided") or "").split(",") if s)
    return MissingScope(method, needed, provided)


def call_failure(method: str, exc: BaseException) -> RetryLater | PermanentFailure:
    """The failure to raise for a failed Slack call: ``MissingScope`` naming the scope, or
    the project's one sorting (``slack_failure``)."""
    return missing_scope(method, exc) or slack_failure(method, exc)


async def granted_scopes(client: AsyncWebClient) -> frozenset[str]:
    """The scopes the bot token holds, from ``auth.test``'s ``X-OAuth-Scopes`` header."""
    try:
        response = await client.auth_test()
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        raise call_failure("auth.test", exc) from exc
    header = next(
        (str(v) for k, v in (response.headers or {}).items() if k.lower() == "x-oauth-scopes"), ""
    )
    return frozenset(s.strip() for s in header.split(",") if s.strip())


def missing(granted: Iterable[str], features: Iterable[str]) -> dict[str, list[str]]:
    """For each feature, the scopes it needs that were not granted (features with none
    missing are left out)."""
    held = set(granted)
    gaps = {f: [s for s in REQUIRED[f] if s not in held] for f in features}
    return {feature: scopes for feature, scopes in gaps.items() if scopes}


def features(*, channels: bool, private: bool) -> list[str]:
    """The features a configuration uses (``REQUIRED``'s keys), to check the token for."""
    used = ["paging", "unknown_outcomes"]
    if channels:
        used.append("private_incident_channels" if private else "public_incident_channels")
    return used


def describe_missing(gaps: dict[str, list[str]]) -> str:
    """One sentence naming each missing scope and the feature that needs it."""
    parts = [
        f"{', '.join(scopes)} (for {feature.replace('_', ' ')})" for feature, scopes in gaps.items()
    ]
    return (
        "the Slack bot token lacks scopes: " + "; ".join(parts) + ". Add them to the app "
        "(deploy/slack/manifest.yaml lists each with why) and reinstall it"
    )


async def check_token(client: AsyncWebClient, used: Iterable[str]) -> str | None:
    """What is missing from the token for ``used`` features, in words; None if nothing."""
    gaps = missing(await granted_scopes(client), used)
    return describe_missing(gaps) if gaps else None
