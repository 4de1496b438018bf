"""Socket Mode envelopes into the same handlers as ``/slack/interactions`` and
``/slack/commands``.

The app-level token authenticated the connection, so there is no signature to check;
everything after that is the HTTP path's: the same shape checks (a wrong shape is
logged and acknowledged empty, where HTTP would answer 400), the same units, the same
authorization, and the same answer (a form's errors, an ephemeral reply) returned in
the acknowledgement. ``SocketModeReceiver`` acknowledges within 3 seconds whatever
happens here.
"""

from __future__ import annotations

import logging
from typing import Any

from router.adapters.http.context import Services
from router.adapters.http.errors import Problem
from router.adapters.payload import PayloadError
from router.adapters.slack import inbound_payload as slack_payload
from router.adapters.slack.inbound_commands import handle_command
from router.adapters.slack.inbound_interactions import handle_interaction
from router.adapters.slack.socket_mode import Inbound, InboundHandler

log = logging.getLogger(__name__)


def inbound_handler(services: Services) -> InboundHandler:
    async def handle(inbound: Inbound) -> dict[str, Any] | None:
        try:
            if inbound.kind == "slash_commands":
                form = {k: str(v) for k, v in inbound.body.items()}
                slash = slack_payload.slash_command(form)
                return await handle_command(services, slash, form)
            payload = slack_payload.checked_interaction(inbound.body)
            answer = await handle_interaction(services, payload)
        except PayloadError as exc:
            log.warning("socket mode: envelope %s refused: %s (%s)",
                        inbound.envelope_id, exc.message, exc.field)  # fmt: skip
            return None
        except Problem as exc:
            log.warning("socket mode: envelope %s: %s", inbound.envelope_id, exc)
            return None
        if payload.get("type") == "view_submission":
            return answer  # errors for the form, or None: it closes
        return None  # a button press: Slack needs only the ack; replies go by response_url

    return handle
