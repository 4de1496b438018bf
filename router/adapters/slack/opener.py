"""Who opens a modal: Slack (``views.open``), or the console when there is no bot token.

A modal is UI, not a side effect on the world: it opens from the handler right after
verifying, inside the trigger's 3 seconds (``router.adapters.slack.views``). Both
openers fail the same way, ``ModalFailed`` with what to tell the person.

The console prints the form with the command that submits it
(``router press --submit <callback_id> --meta '<private_metadata>' --field name=value``),
so ``make run`` walks the declare, Not an incident, resolve and status update forms
without a workspace.
"""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, TextIO

from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.slack.views import ModalFailed, open_view


class ViewOpener(Protocol):
    async def open(self, trigger_id: str, view: Mapping[str, Any], user: str) -> None:
        """Open ``view`` for ``user``; ``ModalFailed`` when it cannot."""
        ...


class SlackViews:
    """``views.open`` with the bot token, against ``api_url``."""

    def __init__(self, token: str, api_url: str, timeout: float = 3.0) -> None:
        self.client = AsyncWebClient(token=token, base_url=api_url, timeout=math.ceil(timeout))

    def __repr__(self) -> str:
        return f"SlackViews(api_url={self.client.base_url!r})"

    async def open(self, trigger_id: str, view: Mapping[str, Any], user: str) -> None:
        if not trigger_id:
            raise ModalFailed(
                "slack views.open: no trigger_id", "Slack sent no way to open a form."
            )
        await open_view(self.client, trigger_id, view)


class ConsoleViews:
    """Prints the form and how to submit it (``stream``: standard output when None)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def open(self, trigger_id: str, view: Mapping[str, Any], user: str) -> None:
        lines = [f"── Slack form for {user}: {_text(view.get('title'))} ──"]
        for block in view.get("blocks") or []:
            lines.extend(_block(block))
        lines.append("  submit it:")
        lines.append("    " + submit_command(view, user))
        stream = self._stream or sys.stdout
        stream.write("\n".join(lines) + "\n\n")
        stream.flush()


def submit_command(view: Mapping[str, Any], user: str) -> str:
    """The ``router press --submit`` line that fills in and submits ``view``."""
    fields = []
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        element = block["element"]
        name = block["block_id"]
        # pre-filled (a post-mortem the policy owes): submitted as Slack would
        for option in element.get("initial_options") or []:
            fields.append(f"--field {shlex.quote(name + '=' + str(option['value']))}")
        if block.get("optional"):
            continue
        options = [str(o["value"]) for o in element.get("options") or []]
        example = options[0] if options else "..."
        fields.append(f"--field {shlex.quote(name + '=' + example)}")
    return " ".join(
        [
            "router press --submit",
            shlex.quote(str(view.get("callback_id"))),
            "--meta",
            shlex.quote(str(view.get("private_metadata") or "{}")),
            *fields,
            "--user",
            shlex.quote(user),
        ]
    )


def _block(block: Mapping[str, Any]) -> Iterator[str]:
    kind = block.get("type")
    if kind == "input":
        element = block.get("element") or {}
        optional = " (optional)" if block.get("optional") else ""
        yield f"  {_text(block.get('label'))}{optional}  [--field {block.get('block_id')}=...]"
        for option in element.get("options") or []:
            yield f"    {option.get('value')}: {_text(option.get('text'))}"
    elif kind in ("section", "context"):
        if block.get("text"):
            yield "  " + _text(block.get("text"))
        for element in block.get("elements") or []:
            yield "  " + _text(element)


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)
