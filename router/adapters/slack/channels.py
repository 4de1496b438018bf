"""An incident's own channel: create, invite, topic, bookmarks, archive.

Plain functions taking an ``AsyncWebClient``; they carry out, never decide. Failures are
sorted by ``scopes.call_failure`` (``MissingScope`` naming the scope, else the project's
``slack_failure``), except the answers that are part of the job:

* ``conversations.create`` answering ``name_taken``: the next candidate name (``-2``,
  ``-3``, ... within 80 characters), at most ``tries`` names, then a permanent failure.
  When an earlier attempt may have created the channel and its answer was lost,
  ``find_created_channel`` looks for it among the bot's own channels (one the bot
  created with one of the candidate names, no earlier than that attempt) so a retry does
  not make a second channel.
* ``conversations.invite``: one bad user fails Slack's whole call, so the users Slack
  names in ``errors`` are taken out and the rest invited again. ``already_in_channel``
  and ``cant_invite_self`` count as done; ``user_not_found``, guests
  (``user_is_restricted``), deactivated accounts (``cant_invite``) and the like are
  skipped and reported, never failing the others. At most ``INVITE_BATCH`` users a call:
  slack_sdk sends the list in the URL.
* ``conversations.archive`` answering ``already_archived``: done.
* ``bookmarks.add``: the channel's bookmarks are read first and a link already there is
  not added again (a retried job must not bookmark twice).

Reasons carry the method and Slack's code, never a channel name (it holds the title).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.slack.scopes import MissingScope, call_failure, error_code
from router.app.effects import PermanentFailure
from router.core.channel_names import candidates

log = logging.getLogger(__name__)

DEFAULT_TRIES = 10
INVITE_BATCH = 30
LOOKUP_PAGE_SIZE = 200
LOOKUP_PAGES = 10
# Fine: the person is in the channel (or is the bot).
INVITE_DONE = frozenset({"already_in_channel", "cant_invite_self"})
# Per-user codes: that user is skipped and reported, the others are invited.
INVITE_SKIP = frozenset(
    {
        "user_not_found",
        "user_is_restricted",
        "user_is_ultra_restricted",
        "user_is_bot",
        "cant_invite",
        "user_disabled",
        "org_user_not_in_team",
        "invitee_cant_see_channel",
        "no_external_invite_permission",
        "ura_max_channels",
    }
)
_TRANSPORT = (aiohttp.ClientError, TimeoutError)


@dataclass(frozen=True)
class Channel:
    id: str
    name: str

    def as_result(self) -> dict[str, Any]:
        return {"channel": self.id, "name": self.name}


@dataclass
class Invited:
    """Who is in the channel now, who already was, and who could not be invited (by code)."""

    invited: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_result(self) -> dict[str, Any]:
        return {"invited": self.invited, "already": self.already, "skipped": self.skipped}


async def create_channel(
    client: AsyncWebClient, name: str, *, private: bool, tries: int = DEFAULT_TRIES
) -> Channel:
    """Create the channel ``name``, or the first of its suffixed candidates not taken."""
    for candidate in candidates(name, tries):
        try:
            response = await client.conversations_create(name=candidate, is_private=private)
        except SlackApiError as exc:
            if error_code(exc) == "name_taken":
                continue
            raise call_failure("conversations.create", exc) from exc
        except _TRANSPORT as exc:
            raise call_failure("conversations.create", exc) from exc
        channel = response.get("channel") or {}
        if not isinstance(channel.get("id"), str):
            raise PermanentFailure("slack conversations.create: no channel id in the response")
        return Channel(id=channel["id"], name=str(channel.get("name") or candidate))
    raise PermanentFailure(f"slack conversations.create: name_taken ({tries} names tried)")


async def find_created_channel(
    client: AsyncWebClient,
    name: str,
    *,
    creator: str,
    since: float,
    tries: int = DEFAULT_TRIES,
) -> Channel | None:
    """The channel an earlier ``create_channel(name)`` made, if it did: among the bot's
    channels, one ``creator`` (the bot user) created at ``since`` (epoch seconds) or
    later, named ``name`` or one of its suffixes. None when there is none."""
    wanted = candidates(name, tries)
    found: list[tuple[int, int, Channel]] = []
    cursor: str | None = None
    for _ in range(LOOKUP_PAGES):
        try:
            response = await client.users_conversations(
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=LOOKUP_PAGE_SIZE,
                cursor=cursor,
            )
        except (SlackApiError, *_TRANSPORT) as exc:
            raise call_failure("users.conversations", exc) from exc
        for channel in response.get("channels") or []:
            if (
                channel.get("name") in wanted
                and channel.get("creator") == creator
                and int(channel.get("created") or 0) >= int(since)
            ):
                rank = wanted.index(channel["name"])
                found.append(
                    (rank, int(channel["created"]), Channel(channel["id"], channel["name"]))
                )
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if cursor is None:
            break
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None


def _per_user_errors(exc: SlackApiError) -> dict[str, str]:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    errors = data.get("errors")
    if not isinstance(errors, list):
        return {}
    return {
        str(e["user"]): str(e.get("error") or "")
        for e in errors
        if isinstance(e, dict) and isinstance(e.get("user"), str)
    }


async def invite(client: AsyncWebClient, channel: str, users: Iterable[str]) -> Invited:
    """Invite ``users`` to ``channel``: everyone who can be, whatever the others."""
    wanted = [u for u in dict.fromkeys(users) if u]
    result = Invited()
    for start in range(0, len(wanted), INVITE_BATCH):
        pending = wanted[start : start + INVITE_BATCH]
        while pending:  # each failed round takes at least one user out
            try:
                await client.conversations_invite(channel=channel, users=pending)
            except SlackApiError as exc:
                code = error_code(exc)
                failed = {u: c for u, c in _per_user_errors(exc).items() if u in pending}
                if not failed and len(pending) == 1 and code in INVITE_DONE | INVITE_SKIP:
                    failed = {pending[0]: str(code)}
                if not failed:  # about the channel, the token or Slack: the job's failure
                    raise call_failure("conversations.invite", exc) from exc
                for user, user_code in failed.items():
                    if user_code in INVITE_DONE:
                        result.already.append(user)
                    else:
                        result.skipped[user] = user_code or "unknown"
                pending = [u for u in pending if u not in failed]
                continue
            except _TRANSPORT as exc:
                raise call_failure("conversations.invite", exc) from exc
            result.invited += pending
            break
    if result.skipped:
        # ids and codes only; who they are is for the person reading the report
        log.info("invite to %s skipped %d user(s): %s", channel, len(result.skipped),
                 sorted(set(result.skipped.values())))  # fmt: skip
    return result


async def set_topic(client: AsyncWebClient, channel: str, topic: str) -> None:
    try:
        await client.conversations_setTopic(channel=channel, topic=topic)
    except (SlackApiError, *_TRANSPORT) as exc:
        raise call_failure("conversations.setTopic", exc) from exc


async def archive(client: AsyncWebClient, channel: str) -> bool:
    """Archive ``channel``; False when it already was."""
    try:
        await client.conversations_archive(channel=channel)
    except SlackApiError as exc:
        if error_code(exc) == "already_archived":
            return False
        raise call_failure("conversations.archive", exc) from exc
    except _TRANSPORT as exc:
        raise call_failure("conversations.archive", exc) from exc
    return True


async def bookmarks_in(client: AsyncWebClient, channel: str) -> list[dict[str, Any]]:
    try:
        response = await client.bookmarks_list(channel_id=channel)
    except (SlackApiError, *_TRANSPORT) as exc:
        raise call_failure("bookmarks.list", exc) from exc
    return [b for b in response.get("bookmarks") or [] if isinstance(b, dict)]


async def add_bookmark(client: AsyncWebClient, channel: str, title: str, link: str) -> str:
    """Bookmark ``link`` in ``channel`` once; the bookmark's id."""
    try:
        existing = await bookmarks_in(client, channel)
    except MissingScope as exc:
        # Without bookmarks:read a retried job may bookmark twice; check-config says so.
        log.warning("cannot look for bookmarks before adding one: %s", exc.reason)
        existing = []
    for bookmark in existing:
        if bookmark.get("link") == link and isinstance(bookmark.get("id"), str):
            return str(bookmark["id"])
    try:
        response = await client.bookmarks_add(
            channel_id=channel, title=title, type="link", link=link
        )
    except (SlackApiError, *_TRANSPORT) as exc:
        raise call_failure("bookmarks.add", exc) from exc
    bookmark_id = (response.get("bookmark") or {}).get("id")
    if not isinstance(bookmark_id, str):
        raise PermanentFailure("slack bookmarks.add: no bookmark id in the response")
    return bookmark_id


async def add_bookmarks(
    client: AsyncWebClient, channel: str, bookmarks: Sequence[tuple[str, str]]
) -> list[str]:
    """Each (title, link) once, in order; their ids."""
    return [await add_bookmark(client, channel, title, link) for title, link in bookmarks]
