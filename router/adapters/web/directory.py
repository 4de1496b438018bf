"""From the e-mail a sign-in proxy vouches for to the Slack user it belongs to.

The router knows people by Slack user id (rotations, commanders, who was paged), so a
person signed in through a proxy is looked up with ``users.lookupByEmail`` (bot scope
``users:read.email``) and is then the same responder in the console as in Slack. The
answer is cached: an hour for a person found, five minutes for one not found.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

FOUND_TTL = 3600.0
NOT_FOUND_TTL = 300.0


@dataclass(frozen=True)
class DirectoryUser:
    user: str
    name: str


class DirectoryUnavailable(Exception):
    """Slack could not be asked just now; the console answers 503, not 'unknown'."""


class UserDirectory(Protocol):
    async def user_for_email(self, email: str) -> DirectoryUser | None:
        """The Slack user with this e-mail, None if there is none.

        Raises :class:`DirectoryUnavailable` when the directory cannot answer."""
        ...


class StaticDirectory:
    """A fixed map (tests, or a deployment without a Slack bot token)."""

    def __init__(self, users: Mapping[str, DirectoryUser]) -> None:
        self._users = {email.lower(): user for email, user in users.items()}

    async def user_for_email(self, email: str) -> DirectoryUser | None:
        return self._users.get(email.lower())


class SlackDirectory:
    def __init__(
        self, token: str, api_url: str, *, http: aiohttp.ClientSession | None = None
    ) -> None:
        self._web = AsyncWebClient(token=token, base_url=api_url, session=http, timeout=10)
        self._cache: dict[str, tuple[float, DirectoryUser | None]] = {}

    async def user_for_email(self, email: str) -> DirectoryUser | None:
        key = email.lower()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await self._web.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error == "users_not_found":
                self._cache[key] = (time.monotonic() + NOT_FOUND_TTL, None)
                return None
            log.warning("users.lookupByEmail failed: %s", error or exc.response.status_code)
            raise DirectoryUnavailable(str(error)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("users.lookupByEmail failed: %s", type(exc).__name__)
            raise DirectoryUnavailable(type(exc).__name__) from None
        found = response.get("user") or {}
        if not found.get("id") or found.get("deleted"):
            # a deactivated account is no responder any more
            self._cache[key] = (time.monotonic() + NOT_FOUND_TTL, None)
            return None
        profile = found.get("profile") or {}
        user = DirectoryUser(
            user=str(found.get("id")),
            name=str(profile.get("real_name") or found.get("real_name") or found.get("name")),
        )
        self._cache[key] = (time.monotonic() + FOUND_TTL, user)
        return user
