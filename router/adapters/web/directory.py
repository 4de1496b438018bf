"""From the e-mail a sign-in proxy vouches for to the Slack user it belongs to, and
from a Slack user id to the name people read.

The router knows people by Slack user id (rotations, commanders, who was paged), so a
person signed in through a proxy is looked up with ``users.lookupByEmail`` (bot scope
``users:read.email``) and is then the same responder in the console as in Slack. The
answer is cached: an hour for a person found, five minutes for one not found.

The console's pages show names, not ids: ``names`` asks ``users.info`` (scope
``users:read``) for the people a page shows, a bounded number at a time and within a
short deadline, cached an hour; whoever is not known in time is shown by id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

FOUND_TTL = 3600.0
NOT_FOUND_TTL = 300.0
# users.info calls one page view may make (Tier 4: 100+ a minute), and how long it
# waits for them; the rest are named on a later view.
NAMES_PER_VIEW = 20
NAMES_DEADLINE = 1.5


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


class PeopleNames(Protocol):
    async def names(self, users: Iterable[str]) -> dict[str, str]:
        """The names of those of ``users`` known (in time); never raises."""
        ...


class StaticDirectory:
    """A fixed map (tests, or a deployment without a Slack bot token)."""

    def __init__(self, users: Mapping[str, DirectoryUser]) -> None:
        self._users = {email.lower(): user for email, user in users.items()}

    async def user_for_email(self, email: str) -> DirectoryUser | None:
        return self._users.get(email.lower())

    async def names(self, users: Iterable[str]) -> dict[str, str]:
        known = {u.user: u.name for u in self._users.values()}
        return {user: known[user] for user in users if user in known}


class SlackDirectory:
    def __init__(
        self, token: str, api_url: str, *, http: aiohttp.ClientSession | None = None
    ) -> None:
        self._web = AsyncWebClient(token=token, base_url=api_url, session=http, timeout=10)
        self._cache: dict[str, tuple[float, DirectoryUser | None]] = {}
        self._names: dict[str, tuple[float, str | None]] = {}

    async def names(self, users: Iterable[str]) -> dict[str, str]:
        now = time.monotonic()
        wanted = sorted({u for u in users if u})
        missing = [u for u in wanted if u not in self._names or self._names[u][0] <= now]
        if missing:
            asking = missing[:NAMES_PER_VIEW]
            lookups = [asyncio.ensure_future(self._name_of(u)) for u in asking]
            _, pending = await asyncio.wait(lookups, timeout=NAMES_DEADLINE)
            for task in pending:
                task.cancel()  # asked again on a later view
            if pending:
                log.warning(
                    "users.info: %d of %d names not known in time", len(pending), len(asking)
                )
        return {
            user: name
            for user in wanted
            if (cached := self._names.get(user)) is not None and (name := cached[1])
        }

    async def _name_of(self, user: str) -> None:
        try:
            response = await self._web.users_info(user=user)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error == "user_not_found":
                self._names[user] = (time.monotonic() + NOT_FOUND_TTL, None)
            else:
                log.warning("users.info failed: %s", error or exc.response.status_code)
            return
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("users.info failed: %s", type(exc).__name__)
            return
        found = response.get("user") or {}
        profile = found.get("profile") or {}
        name = (
            profile.get("real_name")
            or found.get("real_name")
            or profile.get("display_name")
            or found.get("name")
        )
        self._names[user] = (time.monotonic() + FOUND_TTL, str(name) if name else None)

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
