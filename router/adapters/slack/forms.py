"""The forms (modals) people fill in, from opening to submission.

Opening: ``/incident declare`` without a title, **Not an incident** on a page,
**Resolve** and **Status update** on an incident's controls. The view is built from
what the store holds (a read, no change) and opened at once: the trigger lives 3
seconds. Who may act is asked before opening (so nobody fills in a form to be refused)
and again on submission (the lifecycle's answer is the one that counts).

When the form cannot open (the trigger expired, Slack is slow, or the router has no
way to open one) the person gets an ephemeral answer saying so and what to type
instead; **Not an incident** is then recorded without a reason, as the button did
before forms.

Submission (``view_submission``): ``router.core.modals.parse_submission`` reads it;
input to correct is answered inside the form (``response_action: errors`` naming the
field); otherwise one transaction applies it through the same units as the commands
and buttons, and everything it changes goes through the outbox. A refusal is shown in
the form too, under the field it is about. A submission is applied once: its view id,
who submitted it and what it says (a Slack retry sends the same values again, but a
form corrected after a refusal is a new submission). A refused one is not remembered,
so its identical retry is refused again, with the same answer, rather than closing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from router.adapters.http.context import Services
from router.adapters.http.errors import Problem
from router.adapters.slack.views import ModalFailed
from router.adapters.store import StoreError
from router.app import incidents, paging
from router.app.intake import IntakeResult
from router.app.ports import Tx
from router.core import duties, modals
from router.core.commands import Command
from router.core.page import Decision, PageStatus
from router.core.policy import Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Opened:
    """What became of a request to open a form: ``opened``, else ``reply`` says why."""

    opened: bool
    reply: str | None = None


async def _open(services: Services, trigger_id: str, view: dict[str, Any], user: str) -> Opened:
    opener = services.views
    if opener is None:
        return Opened(False, "This router cannot open forms (no Slack token).")
    try:
        await opener.open(trigger_id, view, user)
    except ModalFailed as exc:
        services.metrics.forms.labels(str(view.get("callback_id")), "failed").inc()
        log.warning("form %s not opened: %s", view.get("callback_id"), exc.reason)
        return Opened(False, exc.answer)
    services.metrics.forms.labels(str(view.get("callback_id")), "opened").inc()
    return Opened(True)


async def _read(services: Services, unit: Any) -> Any:
    try:
        return await services.store.run(unit)
    except StoreError as exc:
        log.error("store failed while opening a form: %s", exc)
        return None


async def open_declare(
    services: Services, trigger_id: str, user: str, channel: str | None
) -> Opened:
    view = modals.declare_view(channel_id=channel)
    opened = await _open(services, trigger_id, view, user)
    if not opened.opened:
        return Opened(False, f"{opened.reply} Or type `/incident declare <title>`.")
    return opened


async def open_dismiss(services: Services, trigger_id: str, user: str, page_key: str) -> Opened:
    """**Not an incident**: the form, when the page is open and ``user`` may decide."""
    policy = services.policy
    assert policy is not None
    page = await _read(services, lambda tx: tx.page(page_key))
    if page is None or page.status is not PageStatus.OPEN:
        return Opened(False)  # the decision itself says why (declared, unknown, ...)
    if not page.may_decide(user, policy.responders):
        return Opened(False)  # refused by the decision, and counted there
    view = modals.dismiss_view(page_key=page.key, title=page.title, level=page.level)
    return await _open(services, trigger_id, view, user)


async def open_incident_form(
    services: Services, trigger_id: str, user: str, number: int, which: str
) -> Opened:
    """**Resolve** (``which="resolve"``) or **Status update** (``"update"``)."""
    policy = services.policy
    assert policy is not None
    incident = await _read(services, lambda tx: tx.incident(number))
    if incident is None:
        return Opened(False, f"There is no INC-{number}.")
    ctx = duties.Context(services.clock.now(), policy)
    if not duties.may_act(incident, user, ctx):
        services.metrics.refusals.inc()
        return Opened(False, f"Only responders of {incident.ref} can do that.")
    if which == "resolve" and not incident.open:
        return Opened(False, f"{incident.ref} is already {incident.status.value}.")
    view = (
        modals.resolve_view(incident) if which == "resolve" else modals.status_update_view(incident)
    )
    opened = await _open(services, trigger_id, view, user)
    if not opened.opened:
        typed = "resolve <summary>" if which == "resolve" else "update <text>"
        return Opened(False, f"{opened.reply} Or type `/incident {typed} {incident.ref}`.")
    return opened


# ------------------------------------------------------------------ submissions


async def submitted(services: Services, payload: dict[str, Any]) -> dict[str, Any] | None:
    """A ``view_submission``: None closes the form; a dict is Slack's answer (errors)."""
    try:
        parsed = modals.parse_submission(payload)
    except modals.SubmissionError as exc:
        raise Problem(400, "invalid_payload", exc.message, field=f"payload.{exc.field}") from exc
    if isinstance(parsed, modals.Refused):
        services.metrics.forms.labels(str(payload["view"].get("callback_id")), "invalid").inc()
        return parsed.answer()
    policy = services.policy
    if policy is None:
        return modals.Refused({_first_field(parsed): "No on-call schedule is configured."}).answer()
    now = services.clock.now()
    reports: list[IntakeResult] = []  # a report's intake, counted once committed

    def unit(tx: Tx) -> tuple[str | None, Outcome | None]:
        # A form is opened for one person; keyed by them too, so someone else's refused
        # attempt at it (``router press --submit``) does not use it up.
        seen = f"{parsed.view_id}:{parsed.user}:{_values_digest(payload)}"
        if parsed.view_id and not tx.remember_delivery("slack-view", seen, now):
            return None, None  # submitted already (a retry): nothing more to do
        refusal, outcome = apply(tx)
        if refusal and parsed.view_id:
            # Nothing changed: forgotten, so a retry is answered (refused) again.
            tx.forget_delivery("slack-view", seen)
        return refusal, outcome

    def apply(tx: Tx) -> tuple[str | None, Outcome | None]:
        if isinstance(parsed, modals.Declare):
            if parsed.commander:
                result = incidents.declare_reported(
                    tx, parsed.title, parsed.user, now, policy,
                    description=parsed.description, severity=parsed.severity,
                    confidential=parsed.confidential,
                )  # fmt: skip
            else:
                # the same intake as the monitoring's alerts (a unit may run again: set)
                reports[:] = [services.intake.report(
                    tx, parsed.title, parsed.user, now,
                    description=parsed.description, confidential=parsed.confidential,
                )]  # fmt: skip
                return None, None
            return result.outcome.refusal, result.outcome
        if isinstance(parsed, modals.Dismiss):
            decided = paging.decide(
                tx, parsed.page_key, Decision.DISMISS, parsed.user, now, policy,
                parsed.recorded_reason or None,
            )  # fmt: skip
            return decided.outcome.refusal, decided.outcome
        if isinstance(parsed, modals.Resolve):
            command = Command("resolve", parsed.number, parsed.summary, impact=parsed.impact,
                              postmortem_owed=parsed.postmortem_owed)  # fmt: skip
            done = incidents.incident_command(tx, command, parsed.user, now, policy)
            return done.outcome.refusal, done.outcome
        command = Command("update", parsed.number, parsed.text)
        done = incidents.incident_command(tx, command, parsed.user, now, policy)
        return done.outcome.refusal, done.outcome

    try:
        refusal, outcome = await services.store.run(unit)
    except StoreError as exc:
        log.error("store failed on a form submission: %s", exc)
        return modals.Refused(
            {_first_field(parsed): "The router could not record that just now. Submit again."}
        ).answer()
    callback = str(payload["view"].get("callback_id"))
    for report in reports:  # counted, and its page observed, by the intake
        services.intake.reported(report)
        services.kick()
    if outcome is not None:
        if outcome.unauthorized:
            services.metrics.refusals.inc()
        services.observe(outcome)
        services.kick()
    if refusal:
        log.info("refused form %s by %s", callback, parsed.user)
        services.metrics.forms.labels(callback, "refused").inc()
        return modals.Refused({_first_field(parsed): refusal}).answer()
    services.metrics.forms.labels(callback, "submitted").inc()
    return None


def _values_digest(payload: dict[str, Any]) -> str:
    """A short, stable name for what a submission says (its fields' values)."""
    view = payload.get("view")
    state = view.get("state") if isinstance(view, dict) else None
    values = state.get("values") if isinstance(state, dict) else None
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _first_field(parsed: modals.Submission) -> str:
    """The field a refusal is shown under: the form's first input."""
    if isinstance(parsed, modals.Declare):
        return "who"
    if isinstance(parsed, modals.Dismiss):
        return "reason"
    if isinstance(parsed, modals.Resolve):
        return "summary"
    return "update"
