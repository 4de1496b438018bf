"""Opening and updating modals (``views.open``, ``views.update``).

A modal is UI, not a side effect on the world: it opens from the handler right after the
request is verified, because its ``trigger_id`` lives 3 seconds (an outbox job would be
too late). Everything a submission changes still goes through the lifecycle and the
outbox. So these calls are quick and never retried: ``within`` bounds the wait
(seconds), and a failure is ``ModalFailed`` whose ``answer`` is what to tell the person
(an ephemeral reply), whose ``reason`` is for the log (method and Slack's code; for a view Slack
refused, its ``[ERROR] ... [json-pointer:...]`` messages: a bug in the view, never
incident text).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from router.adapters.slack.scopes import call_failure, error_code

DEFAULT_WAIT = 2.5  # inside the trigger's 3 seconds

TOO_LATE = (
    "Slack allows 3 seconds to open a form and that time passed. "
    "Press the button (or run the command) again."
)
_ANSWERS = {
    "expired_trigger_id": TOO_LATE,
    "exchanged_trigger_id": "That form was opened already. Press the button again for a new one.",
    "invalid_trigger_id": TOO_LATE,
    "hash_conflict": "The form changed while you were typing; it shows the latest now.",
    "not_found": "That form is closed. Open it again.",
}
_BUSY = "Slack did not open the form (it is busy or unreachable). Try again in a moment."


class ModalFailed(Exception):
    """The modal was not opened or updated; ``answer`` tells the person what to do."""

    def __init__(self, reason: str, answer: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.answer = answer
        self.code = code


@dataclass(frozen=True)
class OpenedView:
    id: str
    hash: str


async def _call(
    method: str, call: Awaitable[AsyncSlackResponse], within: float
) -> AsyncSlackResponse:
    try:
        return await asyncio.wait_for(call, within)
    except SlackApiError as exc:
        code = error_code(exc)
        reason = call_failure(method, exc).reason
        data = exc.response.data if isinstance(exc.response.data, Mapping) else {}
        messages = (data.get("response_metadata") or {}).get("messages") or []
        if messages:
            reason += " " + "; ".join(str(m) for m in messages[:5])
        answer = _ANSWERS.get(code or "", _BUSY if exc.response.status_code != 200 else None)
        raise ModalFailed(reason, answer or f"Could not open the form ({code}).", code) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ModalFailed(call_failure(method, exc).reason, _BUSY) from exc


def _opened(response: AsyncSlackResponse, method: str) -> OpenedView:
    view = response.get("view") or {}
    if not isinstance(view.get("id"), str):
        raise ModalFailed(f"slack {method}: no view id in the response", _BUSY)
    return OpenedView(id=view["id"], hash=str(view.get("hash") or ""))


async def open_view(
    client: AsyncWebClient,
    trigger_id: str,
    view: Mapping[str, Any],
    *,
    within: float = DEFAULT_WAIT,
) -> OpenedView:
    """Open ``view`` for the person whose interaction carried ``trigger_id``."""
    call = client.views_open(trigger_id=trigger_id, view=dict(view))
    return _opened(await _call("views.open", call, within), "views.open")


async def update_view(
    client: AsyncWebClient,
    view_id: str,
    view: Mapping[str, Any],
    *,
    hash: str | None = None,
    within: float = DEFAULT_WAIT,
) -> OpenedView:
    """Replace an open view (``hash``: only if nobody changed it meanwhile)."""
    call = client.views_update(view_id=view_id, view=dict(view), hash=hash)
    return _opened(await _call("views.update", call, within), "views.update")
