"""``FakeSlack``'s channel, bookmark and modal methods (a mixin, kept apart from the rest).

Built to Slack's method references (docs.slack.dev/reference/methods/<method>, mirrored in
slack-ruby/slack-api-ref ``docs.slack.dev/methods/*.json``: arguments, bot scopes, error
codes, example answers) and to Slack's Web API OpenAPI spec (slackapi/slack-api-specs
``web-api/slack_web_openapi_v2.json``: the error schemas, e.g. conversations.invite's
``errors`` array). What it holds to:

- ``conversations.create(name, is_private)``: bot scope ``channels:manage`` for a public
  channel, ``groups:write`` for a private one (both get ``C`` ids, as Slack gives them
  now). The name must be lowercase letters, digits, ``-`` and ``_``: otherwise
  ``invalid_name_specials`` (upper case too), over 80 characters
  ``invalid_name_maxlength``, none given ``invalid_name_required``, only punctuation
  ``invalid_name_punctuation``, used by any channel, archived ones included,
  ``name_taken``. ``restricted_action`` while ``channel_creation_restricted`` is set
  (a workspace preference). The bot is a member of what it creates.
- ``conversations.invite(channel, users="U1,U2")``: ``channels:manage`` or
  ``channels:write.invites`` (public), ``groups:write`` or ``groups:write.invites``
  (private). Channel errors first: ``channel_not_found`` (unknown, or private and the
  bot is not in it), ``not_in_channel``, ``is_archived``, ``no_user``,
  ``too_many_users`` (over 1,000). Then per user: ``cant_invite_self`` (the bot),
  ``user_not_found``, ``already_in_channel``, ``user_is_restricted`` /
  ``user_is_ultra_restricted`` (guests, see ``make_guest``), and ``cant_invite`` for a
  deactivated account (``deactivate_user``; Slack's reference names no code for it, so
  this fake picks the generic one). **One bad user fails the whole call**: nobody is
  invited, the answer is ``{"ok": false, "error": <first>, "errors": [{"user", "ok":
  false, "error"}, ...]}`` as in Slack's example. ``force`` is not modelled (its answer
  is not documented): it gets ``invalid_arguments``.
- ``conversations.setTopic(channel, topic)``: scopes as invite with ``.topic`` in place
  of ``.invites``; over 250 characters ``too_long``; answers the conversation object.
- ``conversations.archive(channel)``: ``channels:manage`` / ``groups:write``;
  ``already_archived``, ``not_in_channel``.
- ``bookmarks.add(channel_id, title, type, link)``: ``bookmarks:write``; ``type`` must be
  ``link`` (``invalid_bookmark_type``), ``link`` an http(s) URL of at most 2,048
  characters (``invalid_link``), ``title`` at most 256. ``bookmarks.list(channel_id)``
  needs ``bookmarks:read``. A channel the bot cannot see is ``channel_not_found``.
- ``users.conversations(types, exclude_archived, limit, cursor)``: the bot's own
  channels; ``channels:read`` for ``public_channel``, ``groups:read`` for
  ``private_channel``; pages like the history methods.
- ``views.open(trigger_id, view)``: a trigger comes from ``issue_trigger_id`` and is good
  for one exchange within 3 seconds of ``trigger_clock`` (``time.monotonic`` unless a
  test injects one): unknown ``invalid_trigger_id``, used ``exchanged_trigger_id``, late
  ``expired_trigger_id``. The view is held to Slack's limits (``view_errors``: title 24,
  blocks 100, private_metadata 3,000, callback_id 255, ``submit`` when there is an input
  block, unique block_ids, action_ids unique in a block, option and label lengths);
  anything over is ``invalid_arguments`` with ``response_metadata.messages`` such as
  ``[ERROR] must be less than 25 characters [json-pointer:/view/title/text]``, Slack's
  form. ``views.update(view_id | external_id, view, hash)``: ``not_found``,
  ``hash_conflict``. No scope is needed for views (a bot token is).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

__all__ = ["ChannelsAndViews", "view_errors"]

_NAME_MAX = 80
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_TOPIC_MAX = 250
_INVITE_MAX = 1000
_TRIGGER_SECONDS = 3.0
_BOOKMARK_TITLE_MAX = 256
_LINK_MAX = 2048
_PAGE_MAX = 999

# Bot scopes by (method, private?): any one of them will do (slack-api-ref ``scope.bot``).
_CHANNEL_SCOPES: dict[tuple[str, bool], tuple[str, ...]] = {
    ("conversations.create", False): ("channels:manage",),
    ("conversations.create", True): ("groups:write",),
    ("conversations.invite", False): ("channels:manage", "channels:write.invites"),
    ("conversations.invite", True): ("groups:write", "groups:write.invites"),
    ("conversations.setTopic", False): ("channels:manage", "channels:write.topic"),
    ("conversations.setTopic", True): ("groups:write", "groups:write.topic"),
    ("conversations.archive", False): ("channels:manage",),
    ("conversations.archive", True): ("groups:write",),
}
_LIST_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _fail(error: str, **extra: Any) -> NoReturn:
    # FakeSlack's own error type; imported here because slack_api imports this module.
    from tests.fakes.slack_api import _ApiError

    raise _ApiError(error, **extra)


def _invalid(*messages: str) -> NoReturn:
    _fail("invalid_arguments", response_metadata={"messages": list(messages)})


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


class ChannelsAndViews:
    """Mixed into ``FakeSlack``; uses its ``channels``, ``joined_channels``, ``users``,
    ``scopes``, ``bot_user_id`` and ``team_id``."""

    channels: set[str]
    joined_channels: set[str]
    users: dict[str, dict[str, str]]
    scopes: set[str]
    bot_user_id: str
    bot_id: str
    team_id: str

    def _init_channels_and_views(self) -> None:
        self.conversations: dict[str, dict[str, Any]] = {}
        self.deactivated_users: set[str] = set()
        self.guest_users: dict[str, str] = {}
        self.channel_creation_restricted = False
        self.trigger_clock: Callable[[], float] = time.monotonic
        self.views: dict[str, dict[str, Any]] = {}
        self.view_log: list[tuple[str, str]] = []  # (method, view id)
        self._triggers: dict[str, dict[str, Any]] = {}
        self._seq = 0

    def _channel_methods(self) -> dict[str, tuple[Handler, frozenset[str], str | None]]:
        post, either = frozenset({"POST"}), frozenset({"GET", "POST"})
        # scope None: it depends on the channel, checked in the handler
        return {
            "conversations.create": (self._conversations_create, post, None),
            "conversations.invite": (self._conversations_invite, post, None),
            "conversations.setTopic": (self._conversations_set_topic, post, None),
            "conversations.archive": (self._conversations_archive, post, None),
            "bookmarks.add": (self._bookmarks_add, post, "bookmarks:write"),
            "bookmarks.list": (self._bookmarks_list, either, "bookmarks:read"),
            "users.conversations": (self._users_conversations, either, None),
            "views.open": (self._views_open, post, None),
            "views.update": (self._views_update, post, None),
        }

    # ------------------------------------------------------------ test helpers

    def add_channel(
        self, name: str, *, private: bool = False, joined: bool = False, archived: bool = False
    ) -> str:
        """A channel that exists already (its name is taken); the bot is in it if ``joined``."""
        info = self._new_conversation(name, private=private, creator="U0SOMEONE")
        info["is_archived"] = archived
        if not joined:
            self.joined_channels.discard(info["id"])
        return str(info["id"])

    def deactivate_user(self, user_id: str) -> None:
        self.deactivated_users.add(user_id)

    def make_guest(self, user_id: str, *, single_channel: bool = False) -> None:
        self.guest_users[user_id] = (
            "user_is_ultra_restricted" if single_channel else "user_is_restricted"
        )

    def issue_trigger_id(self) -> str:
        """A ``trigger_id`` as a button press or slash command would carry it."""
        self._seq += 1
        trigger = f"{int(time.time() * 1000)}.{self._seq}.{secrets.token_hex(16)}"
        self._triggers[trigger] = {"issued": self.trigger_clock(), "used": False}
        return trigger

    def channel_named(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.conversations.values() if c["name"] == name), None)

    def members_of(self, channel: str) -> set[str]:
        return set(self._conversation(channel)["members"])

    # ------------------------------------------------------------ conversations

    def _new_conversation(self, name: str, *, private: bool, creator: str) -> dict[str, Any]:
        self._seq += 1
        cid = f"C0{self._seq:08d}"
        info: dict[str, Any] = {
            "id": cid,
            "name": name,
            "is_private": private,
            "created": int(time.time()),
            "creator": creator,
            "is_archived": False,
            "members": set(),
            "topic": {"value": "", "creator": "", "last_set": 0},
            "bookmarks": [],
        }
        self.conversations[cid] = info
        self.channels.add(cid)
        self.joined_channels.add(cid)
        return info

    def _conversation(self, channel: str) -> dict[str, Any]:
        """Info on any channel the fake knows; channels given to the constructor get some."""
        info = self.conversations.get(channel)
        if info is None and channel in self.channels:
            info = {
                "id": channel,
                "name": channel.lower(),
                "is_private": channel.startswith("G"),
                "created": 0,
                "creator": "U0SOMEONE",
                "is_archived": False,
                "members": set(),
                "topic": {"value": "", "creator": "", "last_set": 0},
                "bookmarks": [],
            }
            self.conversations[channel] = info
        if info is None:
            _fail("channel_not_found")
        return info

    def _is_private(self, channel: str) -> bool:
        info = self.conversations.get(channel)
        return bool(info["is_private"]) if info else channel.startswith("G")

    def _conversation_object(self, info: dict[str, Any]) -> dict[str, Any]:
        member = info["id"] in self.joined_channels
        return {
            "id": info["id"],
            "name": info["name"],
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": info["is_private"],
            "created": info["created"],
            "creator": info["creator"],
            "is_archived": info["is_archived"],
            "is_general": False,
            "unlinked": 0,
            "name_normalized": info["name"],
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "pending_shared": [],
            "is_pending_ext_shared": False,
            "is_member": member,
            "last_read": "0000000000.000000",
            "topic": dict(info["topic"]),
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
            "num_members": len(info["members"]) + (1 if member else 0),
        }

    def _need_scope(self, method: str, private: bool) -> None:
        choices = _CHANNEL_SCOPES[(method, private)]
        if not self.scopes.intersection(choices):
            _fail("missing_scope", needed=",".join(choices), provided=",".join(sorted(self.scopes)))

    def _channel_for(self, method: str, channel: Any, *, archived_error: str) -> dict[str, Any]:
        """Checks every channel method shares: the channel, the scope, membership."""
        if not channel or not isinstance(channel, str):
            _fail("channel_not_found")
        info = self._conversation(channel)
        member = channel in self.joined_channels
        if info["is_private"] and not member:
            _fail("channel_not_found")  # a private channel is invisible to non-members
        self._need_scope(method, bool(info["is_private"]))
        if info["is_archived"]:
            _fail(archived_error)
        if not member:
            _fail("not_in_channel")
        return info

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        private = _truthy(args.get("is_private"))
        self._need_scope("conversations.create", private)
        if self.channel_creation_restricted:
            _fail("restricted_action")
        name = args.get("name")
        if not name or not isinstance(name, str):
            _fail("invalid_name_required")
        if len(name) > _NAME_MAX:
            _fail("invalid_name_maxlength")
        if not set(name) <= _NAME_CHARS:
            _fail("invalid_name_specials")
        if not any(c.isalnum() for c in name):
            _fail("invalid_name_punctuation")
        if any(c["name"] == name for c in self.conversations.values()):
            _fail("name_taken")
        info = self._new_conversation(name, private=private, creator=self.bot_user_id)
        return {"channel": self._conversation_object(info)}

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        if "force" in args:
            _invalid("force is not modelled by this fake")
        info = self._channel_for(
            "conversations.invite", args.get("channel"), archived_error="is_archived"
        )
        users_arg = args.get("users")
        users = [u.strip() for u in str(users_arg or "").split(",") if u.strip()]
        if not users:
            _fail("no_user")
        if len(users) > _INVITE_MAX:
            _fail("too_many_users")
        errors = []
        for user in dict.fromkeys(users):
            error = self._invite_error(info, user)
            if error:
                errors.append({"user": user, "ok": False, "error": error})
        if errors:
            _fail(errors[0]["error"], errors=errors)  # nobody is invited
        info["members"].update(users)
        return {"channel": self._conversation_object(info)}

    def _invite_error(self, info: dict[str, Any], user: str) -> str | None:
        if user == self.bot_user_id:
            return "cant_invite_self"
        if user not in self.users:
            return "user_not_found"
        if user in self.deactivated_users:
            return "cant_invite"
        if user in info["members"]:
            return "already_in_channel"
        return self.guest_users.get(user)

    def _conversations_set_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        info = self._channel_for(
            "conversations.setTopic", args.get("channel"), archived_error="is_archived"
        )
        topic = args.get("topic")
        if topic is None:
            _invalid("[ERROR] missing required field: topic")
        if len(str(topic)) > _TOPIC_MAX:
            _fail("too_long")
        info["topic"] = {
            "value": str(topic),
            "creator": self.bot_user_id,
            "last_set": int(time.time()),
        }
        return {"channel": self._conversation_object(info)}

    def _conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        info = self._channel_for(
            "conversations.archive", args.get("channel"), archived_error="already_archived"
        )
        info["is_archived"] = True
        return {}

    # ------------------------------------------------------------ bookmarks

    def _bookmark_channel(self, channel: Any) -> dict[str, Any]:
        if not channel or not isinstance(channel, str):
            _fail("channel_not_found")
        info = self._conversation(channel)
        if channel not in self.joined_channels:
            _fail("channel_not_found")
        return info

    def _bookmarks_add(self, args: dict[str, Any]) -> dict[str, Any]:
        info = self._bookmark_channel(args.get("channel_id"))
        title, kind, link = args.get("title"), args.get("type"), args.get("link")
        if not title:
            _invalid("[ERROR] missing required field: title")
        if len(str(title)) > _BOOKMARK_TITLE_MAX:
            _invalid("[ERROR] must be less than 257 characters [json-pointer:/title]")
        if not kind:
            _invalid("[ERROR] missing required field: type")
        if kind != "link":
            _fail("invalid_bookmark_type")
        link = str(link or "")
        if not link.startswith(("https://", "http://")) or len(link) > _LINK_MAX:
            _fail("invalid_link")
        self._seq += 1
        bookmark = {
            "id": f"Bk0{self._seq:08d}",
            "channel_id": info["id"],
            "title": str(title),
            "link": link,
            "emoji": args.get("emoji"),
            "icon_url": None,
            "type": "link",
            "entity_id": None,
            "date_created": int(time.time()),
            "date_updated": 0,
            "rank": chr(ord("a") + len(info["bookmarks"]) % 26),
            "last_updated_by_user_id": self.bot_user_id,
            "last_updated_by_team_id": self.team_id,
            "shortcut_id": None,
            "app_id": None,
        }
        info["bookmarks"].append(bookmark)
        return {"bookmark": dict(bookmark)}

    def _bookmarks_list(self, args: dict[str, Any]) -> dict[str, Any]:
        info = self._bookmark_channel(args.get("channel_id"))
        return {"bookmarks": [dict(b) for b in info["bookmarks"]]}

    # ------------------------------------------------------------ the bot's channels

    def _users_conversations(self, args: dict[str, Any]) -> dict[str, Any]:
        types = [t.strip() for t in str(args.get("types") or "public_channel").split(",")]
        for kind in types:
            needed = _LIST_SCOPES.get(kind)
            if needed is None:
                _fail("invalid_types")
            if needed not in self.scopes:
                _fail("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))
        skip_archived = _truthy(args.get("exclude_archived"))
        mine = []
        for cid in sorted(self.joined_channels & self.channels):
            info = self._conversation(cid)
            kind = "private_channel" if info["is_private"] else "public_channel"
            if kind in types and not (skip_archived and info["is_archived"]):
                mine.append(self._conversation_object(info))
        try:
            limit = max(1, min(int(args.get("limit") or 100), _PAGE_MAX))
            start = int(base64.b64decode(str(args.get("cursor") or "")).decode() or 0)
        except (TypeError, ValueError, UnicodeDecodeError):
            _fail("invalid_cursor")
        page = mine[start : start + limit]
        more = start + limit < len(mine)
        cursor = base64.b64encode(str(start + limit).encode()).decode() if more else ""
        return {"channels": page, "response_metadata": {"next_cursor": cursor}}

    # ------------------------------------------------------------ views

    def _exchange_trigger(self, args: dict[str, Any]) -> str:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            _invalid("[ERROR] missing required field: trigger_id")
        held = self._triggers.get(str(trigger))
        if held is None:
            _fail("invalid_trigger_id")
        if held["used"]:
            _fail("exchanged_trigger_id")
        if self.trigger_clock() - held["issued"] > _TRIGGER_SECONDS:
            _fail("expired_trigger_id")
        return str(trigger)

    def _view_arg(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                _invalid("[ERROR] failed to parse view [json-pointer:/view]")
        if not isinstance(view, dict):
            _invalid("[ERROR] missing required field: view")
        problems = view_errors(view)
        if problems:
            _invalid(*problems)
        external = view.get("external_id")
        if external and any(
            v.get("external_id") == external and v["id"] != args.get("view_id")
            for v in self.views.values()
        ):
            _fail("duplicate_external_id")
        return view

    def _stored_view(self, view: dict[str, Any], view_id: str, root: str | None) -> dict[str, Any]:
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "title": view["title"],
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root or view_id,
            "previous_view_id": None,
            "app_id": "A0FAKEAPP",
            "bot_id": self.bot_id,
        }
        self.views[view_id] = stored
        return stored

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange_trigger(args)
        view = self._view_arg(args)
        self._triggers[trigger]["used"] = True
        self._seq += 1
        stored = self._stored_view(view, f"V0{self._seq:08d}", None)
        self.view_log.append(("views.open", stored["id"]))
        return {"view": dict(stored)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external = args.get("view_id"), args.get("external_id")
        if not view_id and not external:
            _invalid("[ERROR] either view_id or external_id is required")
        current = (
            self.views.get(str(view_id))
            if view_id
            else next((v for v in self.views.values() if v.get("external_id") == external), None)
        )
        if current is None:
            _fail("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            _fail("hash_conflict")
        view = self._view_arg({**args, "view_id": current["id"]})
        stored = self._stored_view(view, current["id"], current["root_view_id"])
        self.view_log.append(("views.update", stored["id"]))
        return {"view": dict(stored)}


# ---------------------------------------------------------------- Slack's view limits


def view_errors(view: dict[str, Any]) -> list[str]:
    """What Slack would refuse in a modal view, each with its JSON pointer."""
    errors: list[str] = []

    def too_long(value: Any, limit: int, where: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            errors.append(
                f"[ERROR] must be less than {limit + 1} characters [json-pointer:{where}]"
            )

    def text_of(obj: Any, where: str, limit: int, *, required: bool = False) -> None:
        if obj is None:
            if required:
                errors.append(f"[ERROR] missing required field: text [json-pointer:{where}]")
            return
        if not isinstance(obj, dict) or obj.get("type") != "plain_text":
            errors.append(f"[ERROR] must be a plain_text object [json-pointer:{where}]")
            return
        too_long(obj.get("text"), limit, f"{where}/text")

    if view.get("type") != "modal":
        errors.append("[ERROR] must be one of [modal] [json-pointer:/view/type]")
    text_of(view.get("title"), "/view/title", 24, required=True)
    text_of(view.get("submit"), "/view/submit", 24)
    text_of(view.get("close"), "/view/close", 24)
    too_long(view.get("private_metadata"), 3000, "/view/private_metadata")
    too_long(view.get("callback_id"), 255, "/view/callback_id")
    too_long(view.get("external_id"), 255, "/view/external_id")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        return [*errors, "[ERROR] missing required field: blocks [json-pointer:/view/blocks]"]
    if len(blocks) > 100:
        errors.append("[ERROR] must be less than 101 items [json-pointer:/view/blocks]")
    seen_blocks: set[str] = set()
    has_input = False
    for i, block in enumerate(blocks):
        where = f"/view/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"[ERROR] must be a block object [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        too_long(block_id, 255, f"{where}/block_id")
        if isinstance(block_id, str):
            if block_id in seen_blocks:
                errors.append(
                    f"[ERROR] block_id must be unique in a view [json-pointer:{where}/block_id]"
                )
            seen_blocks.add(block_id)
        if block["type"] == "input":
            has_input = True
            text_of(block.get("label"), f"{where}/label", 2000, required=True)
            text_of(block.get("hint"), f"{where}/hint", 2000)
            element = block.get("element")
            if not isinstance(element, dict):
                errors.append(f"[ERROR] missing required field: element [json-pointer:{where}]")
                continue
            _element_errors(element, f"{where}/element", errors, too_long, text_of)
        elif block["type"] == "section":
            text = block.get("text")
            if isinstance(text, dict):
                too_long(text.get("text"), 3000, f"{where}/text/text")
        elif block["type"] in ("actions", "context"):
            elements = block.get("elements") or []
            limit = 25 if block["type"] == "actions" else 10
            if len(elements) > limit:
                errors.append(
                    f"[ERROR] must be less than {limit + 1} items [json-pointer:{where}/elements]"
                )
            action_ids = [
                e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")
            ]
            if len(action_ids) != len(set(action_ids)):
                errors.append(
                    f"[ERROR] action_id must be unique in a block [json-pointer:{where}/elements]"
                )
    if has_input and view.get("submit") is None:
        errors.append(
            "[ERROR] submit is required when blocks has an input block [json-pointer:/view/submit]"
        )
    return errors


def _element_errors(
    element: dict[str, Any],
    where: str,
    errors: list[str],
    too_long: Callable[[Any, int, str], None],
    text_of: Callable[..., None],
) -> None:
    if not isinstance(element.get("action_id"), str):
        errors.append(f"[ERROR] missing required field: action_id [json-pointer:{where}]")
    too_long(element.get("action_id"), 255, f"{where}/action_id")
    text_of(element.get("placeholder"), f"{where}/placeholder", 150)
    kind = element.get("type")
    if kind == "plain_text_input":
        max_length = element.get("max_length")
        if isinstance(max_length, int) and not 1 <= max_length <= 3000:
            errors.append(f"[ERROR] must be between 1 and 3000 [json-pointer:{where}/max_length]")
        too_long(element.get("initial_value"), 3000, f"{where}/initial_value")
    elif kind in ("static_select", "checkboxes", "radio_buttons"):
        options = element.get("options")
        if not isinstance(options, list) or not options:
            errors.append(f"[ERROR] must provide options [json-pointer:{where}/options]")
            return
        limit = 100 if kind == "static_select" else 10
        if len(options) > limit:
            errors.append(
                f"[ERROR] must be less than {limit + 1} items [json-pointer:{where}/options]"
            )
        for j, option in enumerate(options):
            text_of(option.get("text"), f"{where}/options/{j}/text", 75, required=True)
            text_of(option.get("description"), f"{where}/options/{j}/description", 75)
            too_long(option.get("value"), 150, f"{where}/options/{j}/value")
        offered = [json.dumps(o, sort_keys=True) for o in options]
        initial: Iterable[Any] = element.get("initial_options") or []
        if element.get("initial_option") is not None:
            initial = [element["initial_option"]]
        for option in initial:
            if json.dumps(option, sort_keys=True) not in offered:
                errors.append(
                    f"[ERROR] must match one of the options [json-pointer:{where}/initial_options]"
                )
    elif kind not in (
        "users_select",
        "multi_users_select",
        "datepicker",
        "timepicker",
        "conversations_select",
    ):
        errors.append(f"[ERROR] {kind} is not an input element [json-pointer:{where}/type]")
