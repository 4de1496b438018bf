"""Slack's user directory: a Slack id for an e-mail, and an e-mail for a Slack id.

The on-call provider turns PagerDuty's people into Slack ids (``users.lookupByEmail``,
scope ``users:read.email``); the collaborative doc is shared with the responders'
e-mail addresses (``users.info``, whose ``profile.email`` needs the same scope).
Answers are cached for the life of the process, "no such user" included, so a refresh
every few minutes asks Slack about each person once.

Raises ``RetryLater``/``PermanentFailure`` (``slack_failure``) when Slack cannot
answer; never logs an e-mail address.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.slack.client import slack_failure

# Slack's answers meaning "there is no such user" (not a failure to cache away).
_NO_USER = frozenset({"users_not_found", "user_not_found"})


class SlackDirectory:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._ids: dict[str, str | None] = {}
        self._emails: dict[str, str | None] = {}
        self._names: dict[str, str | None] = {}

    async def slack_id_for_email(self, email: str) -> str | None:
        key = email.casefold()
        if key not in self._ids:
            user = await self._ask("users.lookupByEmail", email=email)
            found = user.get("id") if user else None
            self._ids[key] = found if isinstance(found, str) else None
        return self._ids[key]

    async def email_for_user(self, user: str) -> str | None:
        if user not in self._emails:
            await self._info(user)
        return self._emails[user]

    async def name_for_user(self, user: str) -> str | None:
        """The name people know them by (real name, else display name), for the doc."""
        if user not in self._names:
            await self._info(user)
        return self._names[user]

    async def _info(self, user: str) -> None:
        answer = await self._ask("users.info", user=user)
        profile = answer.get("profile") if answer else None
        profile = profile if isinstance(profile, dict) else {}
        email = profile.get("email")
        self._emails[user] = email if isinstance(email, str) and email else None
        names = (
            (answer or {}).get("real_name"),
            profile.get("real_name"),
            (answer or {}).get("name"),
        )
        self._names[user] = next((n for n in names if isinstance(n, str) and n), None)

    async def _ask(self, method: str, **args: str) -> dict[str, Any] | None:
        try:
            if method == "users.lookupByEmail":
                response = await self.client.users_lookupByEmail(email=args["email"])
            else:
                response = await self.client.users_info(user=args["user"])
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            if isinstance(data, dict) and data.get("error") in _NO_USER:
                return None
            raise slack_failure(method, exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise slack_failure(method, exc) from exc
        user = response.get("user")
        return user if isinstance(user, dict) else None
