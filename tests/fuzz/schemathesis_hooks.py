"""Real auth for schemathesis' requests (``SCHEMATHESIS_HOOKS=tests.fuzz.schemathesis_hooks``).

Signatures cover the exact bytes sent, and only ``requests`` knows those (after
schemathesis has serialised the case), so the auth is a ``requests`` auth hook: it
runs on the prepared request, body and all, just before it goes out. Each operation
gets what its real sender sends: a bearer token (Alertmanager, Grafana), the
PagerDuty HMAC, the Slack v0 signature with the current time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import schemathesis
from hypothesis import strategies as st
from requests import PreparedRequest
from requests.auth import AuthBase

from router.adapters.pagerduty.webhook import sign as pd_sign
from tests.fuzz.live import AM_TOKEN, PD_SECRET, PRIMARY, RESPONDER, SIGNING_SECRET

_AUTH = {
    "/webhooks/alertmanager": "bearer",
    "/webhooks/grafana": "bearer",
    "/webhooks/pagerduty": "pagerduty",
    "/slack/interactions": "slack",
    "/slack/commands": "slack",
}


class SenderAuth(AuthBase):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else body
        if self.kind == "bearer":
            request.headers["Authorization"] = f"Bearer {AM_TOKEN}"
        elif self.kind == "pagerduty":
            request.headers["X-PagerDuty-Signature"] = pd_sign(PD_SECRET.encode(), raw)
        else:
            now = str(int(time.time()))
            base = f"v0:{now}:".encode() + raw
            digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
            request.headers["X-Slack-Request-Timestamp"] = now
            request.headers["X-Slack-Signature"] = f"v0={digest}"
        return request


# The form's ``payload`` is JSON in a string (``format: slack-interaction``): without a
# strategy, every generated payload is random text, refused before the router reads it.
_text = st.text(max_size=30)
_action = st.fixed_dictionaries(
    {"action_id": st.sampled_from(["page.declare", "page.dismiss", "page.dismiss_reason",
                                   "page.escalate", "incident.severity", "incident.comms",
                                   "incident.mitigated", "incident.resolve", "report.page"])
     | _text},
    optional={
        "value": st.sampled_from(["p0123456789abcdef", "p0123456789abcdef|1", "INC-1", "INC-²"])
        | _text,
        "block_id": st.sampled_from(["incident|INC-1|roles", "b"]) | _text,
        "action_ts": st.from_regex(r"\A[0-9]{10}\.[0-9]{6}\Z") | _text,
        "selected_option": st.fixed_dictionaries({"value": _text | st.just("INC-1|high")}),
        "selected_user": st.sampled_from([PRIMARY, RESPONDER]) | _text,
    },
)  # fmt: skip
_interaction = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["block_actions", "view_submission"]) | _text,
        "user": st.fixed_dictionaries({"id": st.sampled_from([PRIMARY, RESPONDER]) | _text}),
        "actions": st.lists(_action, max_size=3),
    },
    optional={
        "container": st.fixed_dictionaries({"message_ts": _text}),
        "response_url": st.just("http://127.0.0.1:9/actions"),
    },
)
schemathesis.openapi.format("slack-interaction", _interaction.map(json.dumps) | _text)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    kind = _AUTH.get(case.operation.path)
    if kind is not None:
        kwargs["auth"] = SenderAuth(kind)
