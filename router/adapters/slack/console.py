"""Slack jobs printed to a terminal, for running without a bot token.

Each message is shown with a header saying where it would go, its text, and its
blocks as plain text. Buttons and select options come with the command that presses
them (``router press <action_id> <value> --user <user>``), so a whole page ->
declare -> resolve flow can be tried from a shell. Results look like Slack's
(``{"channel", "ts"}``) so later threads and updates find their message.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from router.adapters.slack.client import (
    SLACK_KINDS,
    channel_of,
    payload_blocks,
    payload_str,
    post_destination,
    posted_after,
    target_message,
)
from router.app.effects import PermanentFailure, ResultLookup
from router.core.jobs import JobKind, StoredJob

ANY_USER = "<U…>"  # placeholder in press commands when the presser is not known


class ConsoleAdapter:
    """Prints Slack jobs to ``stream`` (standard output when None)."""

    kinds: frozenset[JobKind] = SLACK_KINDS
    system = "slack"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._last_ts_us = 0

    async def close(self) -> None:
        return None

    async def find(self, job: StoredJob, results: ResultLookup) -> dict[str, Any] | None:
        """None: a terminal keeps no history to look in; it is printed again."""
        return None

    async def run(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        payload = job.payload
        if job.kind == JobKind.SLACK_DM:
            await posted_after(payload, results)
            user = payload_str(payload, "user")
            self._show(f"Slack DM to {user}", payload, user)
            return {"channel": f"D-console-{user}", "ts": self._next_ts()}
        if job.kind == JobKind.SLACK_POST:
            channel, thread_ts = await post_destination(payload, results)
            where = f"#{channel}" + (f" (thread of {payload['thread_of']})" if thread_ts else "")
            self._show(where, payload, ANY_USER)
            return {"channel": channel, "ts": self._next_ts()}
        if job.kind == JobKind.SLACK_UPDATE:
            channel, ts = await target_message(payload, results)
            self._show(f"update of {payload['target']} in #{channel}", payload, ANY_USER)
            return {"channel": channel, "ts": ts}
        if job.kind == JobKind.SLACK_RESPOND:
            body = payload.get("body")
            if not isinstance(body, dict):
                raise PermanentFailure("slack.respond job: payload.body must be an object")
            self._show("reply to the person who pressed", body, ANY_USER)
            return {}
        if job.kind == JobKind.SLACK_CHANNEL:
            name = payload_str(payload, "name")
            kind = "private" if payload.get("private") else "public"
            self._write(f"── Slack: created {kind} channel #{name} (C-console-{name}) ──")
            return {"channel": f"C-console-{name}", "name": name}
        if job.kind == JobKind.SLACK_INVITE:
            channel = await channel_of(payload, results)
            users = [str(u) for u in payload.get("users") or []]
            self._write(f"── Slack: invited to #{channel}: {', '.join(users) or 'nobody'} ──")
            return {"invited": users, "already": [], "skipped": {}}
        if job.kind == JobKind.SLACK_TOPIC:
            channel = await channel_of(payload, results)
            self._write(f"── Slack: topic of #{channel} ──\n{payload_str(payload, 'topic')}")
            return {"channel": channel}
        if job.kind == JobKind.SLACK_BOOKMARK:
            channel = await channel_of(payload, results)
            title, link = payload_str(payload, "title"), payload_str(payload, "link")
            self._write(f"── Slack: bookmark in #{channel}: {title} <{link}> ──")
            return {"bookmark": f"Bk-console-{job.id}"}
        if job.kind == JobKind.SLACK_ARCHIVE:
            channel = await channel_of(payload, results)
            self._write(f"── Slack: archived #{channel} ──")
            return {"archived": True}
        raise PermanentFailure(f"console adapter cannot run {job.kind} jobs")

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(text + "\n\n")
        stream.flush()

    def _show(self, header: str, message: Mapping[str, Any], user: str) -> None:
        lines = [f"── {header} ──"]
        text = payload_str(message, "text", required=False)
        if text:
            lines.append(text)
        for block in payload_blocks(message) or []:
            lines.extend(render_block(block, user))
        stream = self._stream or sys.stdout
        stream.write("\n".join(lines) + "\n\n")
        stream.flush()

    def _next_ts(self) -> str:
        # Slack-shaped ("<seconds>.<micros>"), strictly increasing even within a microsecond.
        self._last_ts_us = max(time.time_ns() // 1000, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"


def render_block(block: Mapping[str, Any], user: str) -> Iterator[str]:
    """Plain-text lines for one Block Kit block."""
    kind = block.get("type")
    if kind == "header":
        yield _text(block.get("text")).upper()
    elif kind == "section":
        if block.get("text"):
            yield _text(block.get("text"))
        for field in block.get("fields") or []:
            yield "  " + _text(field)
        if isinstance(block.get("accessory"), dict):
            yield from _element(block["accessory"], user)
    elif kind == "context":
        parts = [_text(e) for e in block.get("elements") or [] if isinstance(e, dict)]
        yield "  " + " · ".join(p for p in parts if p)
    elif kind == "divider":
        yield "  ─────"
    elif kind == "actions":
        for element in block.get("elements") or []:
            if isinstance(element, dict):
                yield from _element(element, user)


def _element(element: Mapping[str, Any], user: str) -> Iterator[str]:
    action_id = str(element.get("action_id", "?"))
    kind = element.get("type")
    if kind == "button":
        value = str(element.get("value", ""))
        yield f"  [{_text(element.get('text'))}]  {_press(action_id, value, user)}"
    elif kind in ("static_select", "overflow", "radio_buttons"):
        label = _text(element.get("placeholder")) or action_id
        yield f"  {label}:"
        for option in _options(element):
            command = _press(action_id, str(option["value"]), user)
            yield f"    {_text(option.get('text'))}:  {command}"
    elif kind is not None:
        yield f"  ({kind} {action_id}: not pressable from the console)"


def _options(element: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    groups = [element.get("options") or []]
    groups += [g.get("options") or [] for g in element.get("option_groups") or []]
    for group in groups:
        for option in group:
            if isinstance(option, dict) and "value" in option:
                yield option


def _press(action_id: str, value: str, user: str) -> str:
    # Values can hold spaces or JSON: quote them so the line pastes as one argument.
    # The <U…> placeholder is left as is: it is there to be replaced.
    who = user if user == ANY_USER else shlex.quote(user)
    return f"router press {shlex.quote(action_id)} {shlex.quote(value)} --user {who}"


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)
