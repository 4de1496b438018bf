"""``POST /slack/interactions``: button presses on pages and incidents, form submissions.

Slack wants HTTP 200 within 3 seconds, so this handler only verifies, decides (a pure
lifecycle step inside one transaction) and commits the jobs; Slack is told about the
result by the outbox (message edits, the announcement, an ephemeral refusal). The one
call made here is opening a form (``views.open``): a trigger lives 3 seconds, and a form
is UI, not a side effect on the world (``router.adapters.slack.forms``).
``handle_interaction`` is the same path for Socket Mode (``router.adapters.slack.socket``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from router.adapters.http.context import SERVICES, Services
from router.adapters.http.errors import Problem, read_body
from router.adapters.payload import PayloadError
from router.adapters.slack import forms, signing
from router.adapters.slack import inbound_payload as slack_payload
from router.adapters.store import StoreError
from router.app import incidents, paging
from router.app.intake import IntakeResult
from router.app.paging import DecisionResult
from router.app.ports import Tx
from router.core import duties, keys, messages
from router.core.commands import BUTTONS, VERB, Command, incident_number
from router.core.jobs import SlackRespond
from router.core.page import Decision
from router.core.policy import Outcome
from router.core.severity import Severity

log = logging.getLogger(__name__)

_DECISIONS = {
    messages.DECLARE: Decision.DECLARE,
    messages.DISMISS: Decision.DISMISS,
    messages.DISMISS_REASON: Decision.DISMISS,
    messages.ESCALATE: Decision.ESCALATE,
    messages.DIGEST_DECLARE: Decision.DECLARE,  # a digest line's page, chosen in a select
}


@dataclass(frozen=True)
class PageAction:
    decision: Decision
    page_key: str
    reason: str | None
    delivery_id: str
    expected_level: int | None = None  # Escalate: the level the person saw


def verify(request: web.Request, services: Services, body: bytes) -> None:
    if services.slack_verifier is None:
        raise Problem(404, "not_configured", "SLACK_SIGNING_SECRET is not set")
    wrong = signing.problem(services.slack_verifier, body, request.headers)
    if wrong is not None:
        header, message = wrong
        raise Problem(401, "signature_invalid", message, field=header)


async def read_signed_form(request: web.Request, services: Services) -> dict[str, str]:
    """Verify over the raw bytes first; only then decode the form."""
    body = await read_body(request, services.config.server.max_body_bytes)
    verify(request, services, body)
    if request.content_type != "application/x-www-form-urlencoded":
        raise Problem(415, "unsupported_media_type",
                      "Content-Type must be application/x-www-form-urlencoded")  # fmt: skip
    try:
        return slack_payload.form_fields(body)
    except PayloadError as exc:
        raise Problem(exc.status, "malformed_form", exc.message, field=exc.field) from exc


def _small_number(text: str) -> int | None:
    """An index or level a button carries: ASCII digits, few of them (``"²".isdigit()``
    is true, and int() of it raises)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def parse_actions(payload: dict[str, Any]) -> list[PageAction]:
    container = payload.get("container") or {}
    message_ts = str(container.get("message_ts") or (payload.get("message") or {}).get("ts", ""))
    user = payload["user"]["id"]
    found = []
    for action in payload.get("actions") or []:
        action_id = action.get("action_id")
        decision = _DECISIONS.get(action_id)
        if decision is None:
            continue  # not ours (a link button, a future control): ignore, do not fail
        reason = None
        expected_level = None
        if action_id == messages.DISMISS_REASON:
            value = str((action.get("selected_option") or {}).get("value", ""))
            page_key, _, index = value.partition("|")
            number = _small_number(index)
            if number is not None and number < len(messages.DISMISS_REASONS):
                reason = messages.DISMISS_REASONS[number]
        elif action_id == messages.DIGEST_DECLARE:
            page_key = str((action.get("selected_option") or {}).get("value", ""))
        else:
            page_key, _, level = str(action.get("value", "")).partition("|")
            expected_level = _small_number(level)
        # Slack retries and double clicks repeat action_ts; a new click has a new one.
        delivery = f"{action_id}:{message_ts}:{action.get('action_ts', '')}:{user}"
        found.append(PageAction(decision, page_key, reason, delivery, expected_level))
    return found


def incident_command(action: dict[str, Any]) -> Command | None:
    """An announcement control as the ``/incident`` command it stands for."""
    verb = BUTTONS.get(str(action.get("action_id")))
    if verb is None:
        return None
    option = str((action.get("selected_option") or {}).get("value", ""))
    # A button's value is INC-n, or INC-n|<what the verb needs> (a preview's draft).
    ref, _, extra = str(action.get("value") or "").partition("|")
    ref = option.partition("|")[0] or ref
    if not ref:  # users_select carries the incident in its block id: incident|INC-n|roles
        parts = str(action.get("block_id", "")).split("|")
        ref = parts[1] if len(parts) > 1 else ""
    number = incident_number(ref)
    if number is None:
        return None
    severity = option.partition("|")[2]
    return Command(
        verb.name,
        number,
        text=verb.button_text or extra,
        user=action.get("selected_user"),
        severity=Severity(severity) if severity in {s.value for s in Severity} else None,
    )


async def slack_interactions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    form = await read_signed_form(request, services)
    try:
        payload = slack_payload.interaction(form)
    except PayloadError as exc:
        raise Problem(exc.status, "invalid_payload", exc.message, field=exc.field) from exc
    answer = await handle_interaction(services, payload)
    if answer is None:
        # Empty: Slack reads a body as an answer to some types (a modal submission).
        return web.Response(status=200, content_type="text/plain")
    return web.json_response(answer)


async def handle_interaction(services: Services, payload: dict[str, Any]) -> dict[str, Any] | None:
    """A verified interaction (over HTTP or Socket Mode), its shape checked: the answer
    for Slack (a form's errors), or for ``router press`` (what was refused), or None."""
    if services.policy is None:
        return None
    if payload.get("type") == "view_submission":
        return await forms.submitted(services, payload)
    if payload.get("type") != "block_actions":
        return None
    return await _block_actions(services, payload)


@dataclass
class _Forms:
    """What the buttons that open forms came to: the actions left for the decisions
    and commands below, and answers for the person (by delivery) where a form failed."""

    remaining: list[dict[str, Any]]
    replies: dict[str, str]
    opened: int = 0


async def _open_forms(services: Services, payload: dict[str, Any], user: str) -> _Forms:
    """Open the form a button asks for (Not an incident, Resolve, Status update)."""
    trigger = str(payload.get("trigger_id") or "")
    message_ts = str((payload.get("container") or {}).get("message_ts", ""))
    found = _Forms([], {})
    for action in payload.get("actions") or []:
        action_id = action.get("action_id")
        delivery = f"form:{action_id}:{message_ts}:{action.get('action_ts', '')}:{user}"
        if action_id == messages.DISMISS:
            page_key = str(action.get("value", "")).partition("|")[0]
            opened = await forms.open_dismiss(services, trigger, user, page_key)
            if opened.opened:
                found.opened += 1
                continue
            if opened.reply:
                # Recorded without a reason, as the button did before forms.
                text = f"{opened.reply} Recorded as not an incident, without a reason."
                found.replies[delivery] = text
        elif action_id in (messages.INC_RESOLVE, messages.INC_UPDATE):
            number = incident_number(str(action.get("value", "")))
            if number is not None:
                which = "resolve" if action_id == messages.INC_RESOLVE else "update"
                opened = await forms.open_incident_form(services, trigger, user, number, which)
                found.opened += opened.opened
                if not opened.opened and opened.reply:
                    found.replies[delivery] = opened.reply
            continue  # never resolved without the form: its summary is owed
        found.remaining.append(action)
    return found


async def _block_actions(services: Services, payload: dict[str, Any]) -> dict[str, Any]:
    assert services.policy is not None
    user = payload["user"]["id"]
    response_url = payload.get("response_url")
    policy = services.policy
    container = payload.get("container") or {}
    message_ts = str(container.get("message_ts", ""))
    refusals: list[str] = []
    # Forms open first: the trigger lives 3 seconds.
    opened = await _open_forms(services, payload, user)
    replies: list[str] = list(opened.replies.values())

    async def run(unit: Any) -> Any:
        try:
            return await services.store.run(unit)
        except StoreError as exc:
            log.error("store failed on a Slack action; Slack will show an error: %s", exc)
            raise Problem(503, "store_unavailable", "could not record the action; retry") from exc

    def answer(
        tx: Tx, delivery: str, text: str | None, now: datetime, replace: bool = False
    ) -> None:
        if text and response_url:
            body = messages.ephemeral(text, replace=replace)
            job = SlackRespond(response_url=response_url, body=body).job(keys.answer(delivery))
            tx.enqueue([job], now)

    if opened.replies:
        now = services.clock.now()

        def form_answers(tx: Any) -> None:
            for delivery, text in opened.replies.items():
                answer(tx, delivery, text, now)

        await run(form_answers)
    remaining = {**payload, "actions": opened.remaining}
    for action in parse_actions(remaining):
        now = services.clock.now()

        def page_unit(tx: Tx, action: PageAction = action, now: datetime = now) -> DecisionResult:
            result = paging.decide(
                tx,
                action.page_key,
                action.decision,
                user,
                now,
                policy,
                action.reason,
                action.delivery_id,
                action.expected_level,
            )
            answer(tx, action.delivery_id, result.outcome.refusal, now)
            return result

        result = await run(page_unit)
        if result.outcome.refusal:
            refusals.append(result.outcome.refusal)
            log.info("refused %s on page %s by %s", action.decision.value, action.page_key, user)
        if result.outcome.unauthorized:
            services.metrics.refusals.inc()
        services.observe(result.outcome, result.decision_seconds)

    reports: dict[str, IntakeResult] = {}  # by delivery: a report's intake, once committed
    for raw in remaining["actions"]:
        now = services.clock.now()
        delivery = f"{raw.get('action_id')}:{message_ts}:{raw.get('action_ts', '')}:{user}"
        command = incident_command(raw)
        action_id = raw.get("action_id")
        if command is None and action_id not in (messages.REPORT_COMMANDER, messages.REPORT_PAGE):
            continue

        def incident_unit(tx: Tx, command: Command | None = command, delivery: str = delivery,
                          action_id: Any = action_id, value: str = str(raw.get("value", "")),
                          now: datetime = now) -> incidents.CommandResult | None:  # fmt: skip
            if not tx.remember_delivery("slack", delivery, now):
                return None  # a Slack retry or a double click
            if command is not None:
                result = incidents.incident_command(tx, command, user, now, policy)
            elif not tx.remember_delivery("slack-report", f"{message_ts}|{user}|{value}", now):
                # A double click on the report's buttons: one report, one decision.
                text = "You already answered this report."
                result = incidents.CommandResult(duties.refuse(text), text)
            elif action_id == messages.REPORT_COMMANDER:
                result = incidents.declare_reported(tx, value, user, now, policy)
            else:
                # the same intake as the monitoring's alerts (a unit may run again: set)
                reports[delivery] = services.intake.report(tx, value, user, now)
                text = "Paged eng-primary; they will investigate and decide."
                result = incidents.CommandResult(Outcome(), text)
            # A preview's buttons (control-only verbs) are answered in its place:
            # pressed once, they are gone.
            replace = command is not None and VERB[command.name].control_only
            answer(tx, delivery, result.reply, now, replace)
            return result

        outcome = await run(incident_unit)
        if delivery in reports:  # counted, and its page observed, by the intake
            services.intake.reported(reports.pop(delivery))
        if outcome is None:
            continue
        if outcome.outcome.refusal:
            refusals.append(outcome.outcome.refusal)
            log.info("refused %s by %s", action_id, user)
        if outcome.outcome.unauthorized:
            services.metrics.refusals.inc()
        else:
            replies.append(outcome.reply)
        services.observe(outcome.outcome)
    services.kick()
    # Slack ignores this body (answers reach the person through response_url);
    # `router press` and other callers without a response_url read it here.
    return {"ok": not refusals, "refused": refusals, "replies": replies,
            **({"forms_opened": opened.opened} if opened.opened else {})}  # fmt: skip
