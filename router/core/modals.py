"""Modals where people type, and what their submissions mean.

Four views (Block Kit ``modal``), each routed back by its ``callback_id``:

* ``incident.declare``: ``/incident declare`` with no text: title, description,
  severity (optional: it can be classified later), confidential, and who investigates
  ("I will be Incident Commander" or "page eng-primary").
* ``page.dismiss``: **Not an incident**: one of the existing reasons
  (``router.core.messages.DISMISS_REASONS``) and/or a note; both are recorded.
* ``incident.resolve``: summary, customer impact, post-mortem owed (pre-filled when the
  policy owes one: critical severity, a production outage or data loss).
* ``incident.update``: a status update, from the incident's controls.

What a submission needs besides the typed values travels in ``private_metadata`` (JSON,
``{"v": 1, ...}``, at most 3,000 characters): the page key, the incident number, what
the policy said when the view was built. Who submitted comes from the payload's
``user.id``; whether they may do it is the lifecycle's question, asked again at
submission.

``parse_submission`` turns a ``view_submission`` payload into a typed value
(``Declare``, ``Dismiss``, ``Resolve``, ``StatusUpdate``), or ``Refused`` whose
``answer()`` is Slack's ``{"response_action": "errors", "errors": {block_id: message}}``
(the modal stays open, the message under the field). A payload that is not one of ours,
or whose metadata is broken, raises ``SubmissionError`` naming the field (a 400).

``simulate_submission`` builds the payload Slack would send for a view and some field
values: the console's ``router press`` and the tests submit modals with it.

Slack's limits (docs.slack.dev/reference/views/modal-views): title, submit and close at
most 24 characters, at most 100 blocks, callback_id at most 255 characters, block_id
unique in the view and action_id in its block, input labels at most 2,000 characters,
option text and description at most 75, option values at most 150.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.core.incident import Flag, Incident
from router.core.messages import DISMISS_REASONS, escape
from router.core.severity import POLICY_CLAUSES, Severity

View = dict[str, Any]
Block = dict[str, Any]

CALLBACK_DECLARE = "incident.declare"
CALLBACK_DISMISS = "page.dismiss"
CALLBACK_RESOLVE = "incident.resolve"
CALLBACK_UPDATE = "incident.update"

METADATA_VERSION = 1
TITLE_MAX = 24
METADATA_MAX = 3000
INCIDENT_TITLE_MAX = 150  # a header block's limit: the announcement shows it whole
TEXT_MAX = 3000
NOTE_MAX = 1000
_OPTION_MAX = 75

WHO_COMMANDER = "commander"
WHO_PAGE = "page"
POSTMORTEM_OWED = "owed"
CONFIDENTIAL = "confidential"


class SubmissionError(ValueError):
    """Not a submission of one of these views, or a broken one; ``field`` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Refused:
    """Input to correct: ``errors`` maps block_id to what is wrong with it."""

    errors: dict[str, str]

    def answer(self) -> dict[str, Any]:
        return {"response_action": "errors", "errors": dict(self.errors)}


@dataclass(frozen=True)
class Declare:
    user: str
    view_id: str
    title: str
    description: str | None
    severity: Severity | None  # None: the suggestion (or the default) applies
    confidential: bool
    commander: bool  # True: "I will be Incident Commander"; False: page eng-primary
    channel: str | None  # where /incident was typed


@dataclass(frozen=True)
class Dismiss:
    user: str
    view_id: str
    page_key: str
    level: int | None  # the escalation level the person saw (a stale view is refused)
    reason: str | None
    note: str | None

    @property
    def recorded_reason(self) -> str:
        """The reason and the note as one line for the page and the timeline."""
        return ": ".join(part for part in (self.reason, self.note) if part)


@dataclass(frozen=True)
class Resolve:
    user: str
    view_id: str
    number: int
    summary: str
    impact: str | None
    postmortem_owed: bool


@dataclass(frozen=True)
class StatusUpdate:
    user: str
    view_id: str
    number: int
    text: str


Submission = Declare | Dismiss | Resolve | StatusUpdate


# ------------------------------------------------------------------ building blocks


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text if len(text) <= 3000 else text[:2990] + "…"}


def _option(text: str, value: str, description: str | None = None) -> dict[str, Any]:
    option: dict[str, Any] = {"text": _plain(text, _OPTION_MAX), "value": value}
    if description:
        option["description"] = _plain(description, _OPTION_MAX)
    return option


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint: str | None = None
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "optional": optional,
        "element": {**element, "action_id": block_id},
    }
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def _text_input(
    max_length: int, *, multiline: bool = False, placeholder: str | None = None
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": multiline,
        "max_length": max_length,
    }
    if placeholder:
        element["placeholder"] = _plain(placeholder, 150)
    return element


def _metadata(**values: Any) -> str:
    text = json.dumps({"v": METADATA_VERSION, **values}, separators=(",", ":"))
    if len(text) > METADATA_MAX:
        raise ValueError(f"private_metadata would be {len(text)} characters; Slack takes 3000")
    return text


def _view(title: str, callback_id: str, submit: str, metadata: str, blocks: list[Block]) -> View:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title, TITLE_MAX),
        "submit": _plain(submit, TITLE_MAX),
        "close": _plain("Cancel", TITLE_MAX),
        "private_metadata": metadata,
        "notify_on_close": False,
        "blocks": blocks,
    }


# ------------------------------------------------------------------ the views


def declare_view(*, channel_id: str | None) -> View:
    """``/incident declare`` with no text."""
    blocks = [
        _input(
            "title",
            "What is wrong?",
            _text_input(INCIDENT_TITLE_MAX, placeholder="e.g. Checkout returns 500s in eu-west"),
            optional=False,
        ),
        _input(
            "description",
            "Description",
            _text_input(
                TEXT_MAX, multiline=True, placeholder="What you see, since when, who is affected"
            ),
            optional=True,
        ),
        _input(
            "severity",
            "Severity",
            {
                "type": "static_select",
                "placeholder": _plain("Classify later", 150),
                "options": _severity_options(),
            },
            optional=True,
            hint="It can change later; without one the router suggests it from the policy.",
        ),
        _input(
            "confidential",
            "Confidential",
            {"type": "checkboxes", "options": [_confidential_option()]},
            optional=True,
        ),
        _input(
            "who",
            "Who investigates?",
            {"type": "radio_buttons", "options": _who_options()},
            optional=False,
        ),
        {
            "type": "context",
            "elements": [
                _mrkdwn("Incident details are confidential: they go to the incident's channel.")
            ],
        },
    ]
    return _view(
        "Declare an incident", CALLBACK_DECLARE, "Declare", _metadata(channel=channel_id), blocks
    )


def _severity_options() -> list[dict[str, Any]]:
    order = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
    return [_option(s.value, s.value, POLICY_CLAUSES[s]) for s in order]


def _confidential_option() -> dict[str, Any]:
    return _option(
        "Confidential", CONFIDENTIAL, "#incident-response sees only the id, commander and severity"
    )


def _who_options() -> list[dict[str, Any]]:
    return [
        _option("I will be Incident Commander", WHO_COMMANDER),
        _option("Page eng-primary to investigate", WHO_PAGE),
    ]


def dismiss_view(*, page_key: str, title: str, level: int | None) -> View:
    """**Not an incident** on a page: a reason, a note, or both."""
    blocks = [
        {"type": "section", "text": _mrkdwn(f"Page: *{escape(title)}*")},
        _input(
            "reason",
            "Why is it not an incident?",
            {
                "type": "static_select",
                "placeholder": _plain("Choose a reason", 150),
                "options": [_option(r, str(i)) for i, r in enumerate(DISMISS_REASONS)],
            },
            optional=True,
        ),
        _input(
            "note",
            "Note",
            _text_input(NOTE_MAX, multiline=True, placeholder="What you found"),
            optional=True,
        ),
        {
            "type": "context",
            "elements": [_mrkdwn("The reason and the note are recorded with the page.")],
        },
    ]
    return _view(
        "Not an incident",
        CALLBACK_DISMISS,
        "Not an incident",
        _metadata(page=page_key, level=level),
        blocks,
    )


def _postmortem_because(incident: Incident) -> str | None:
    """Why the policy owes a post-mortem for ``incident``, or None."""
    if incident.severity is Severity.CRITICAL:
        return "the incident is critical"
    if Flag.OUTAGE in incident.flags:
        return "it was a production outage"
    if Flag.DATA_LOSS in incident.flags:
        return "customer or critical data was lost"
    return None


def resolve_view(incident: Incident) -> View:
    """**Resolve**: summary, customer impact, post-mortem owed (pre-filled)."""
    why = _postmortem_because(incident)
    customers = Flag.CUSTOMERS in incident.flags
    owed = _option(
        "Post-mortem owed",
        POSTMORTEM_OWED,
        f"Owed: {why}" if why else "Details, timeline, impact, root causes, follow-ups",
    )
    postmortem: dict[str, Any] = {"type": "checkboxes", "options": [owed]}
    if why:
        postmortem["initial_options"] = [owed]
    blocks = [
        {"type": "section", "text": _mrkdwn(f"*{incident.ref}*: {escape(incident.title)}")},
        _input(
            "summary",
            "What resolved it?",
            _text_input(TEXT_MAX, multiline=True),
            optional=False,
            hint="Everyone affected is told it is over, with this summary.",
        ),
        _input(
            "impact",
            "Customer impact",
            _text_input(
                TEXT_MAX, multiline=True, placeholder="Who was affected, how, for how long"
            ),
            optional=not customers,
        ),
        _input("postmortem", "Post-mortem", postmortem, optional=True),
    ]
    metadata = _metadata(incident=incident.number, owed=why, customers=customers)
    return _view(f"Resolve {incident.ref}", CALLBACK_RESOLVE, "Resolve", metadata, blocks)


def status_update_view(incident: Incident) -> View:
    """A status update from the incident's controls."""
    blocks = [
        {
            "type": "section",
            "text": _mrkdwn(
                f"*{incident.ref}*: {escape(incident.title)} ({incident.status.value})"
            ),
        },
        _input(
            "update",
            "Where does it stand?",
            _text_input(TEXT_MAX, multiline=True, placeholder="What changed, what is next, when"),
            optional=False,
        ),
        {
            "type": "context",
            "elements": [_mrkdwn("Posted with the incident and on its tracking issue.")],
        },
    ]
    metadata = _metadata(incident=incident.number)
    return _view(f"Update {incident.ref}", CALLBACK_UPDATE, "Post update", metadata, blocks)


# ------------------------------------------------------------------ reading submissions


class _Form:
    """``view.state.values``: ``{block_id: {action_id: {"type": ..., value...}}}``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values

    def _state(self, block: str) -> Mapping[str, Any] | None:
        entry = self.values.get(block)
        if entry is None:
            return None
        where = f"view.state.values.{block}"
        if not isinstance(entry, Mapping):
            raise SubmissionError(where, "must be an object of actions")
        state = entry.get(block)
        if state is None:
            return None
        if not isinstance(state, Mapping):
            raise SubmissionError(f"{where}.{block}", "must be an object")
        return state

    def text(self, block: str) -> str | None:
        state = self._state(block)
        value = None if state is None else state.get("value")
        if value is not None and not isinstance(value, str):
            raise SubmissionError(f"view.state.values.{block}.{block}.value", "must be a string")
        return value.strip() if value and value.strip() else None

    def choice(self, block: str) -> str | None:
        state = self._state(block)
        option = None if state is None else state.get("selected_option")
        if option is None:
            return None
        if not isinstance(option, Mapping) or not isinstance(option.get("value"), str):
            raise SubmissionError(
                f"view.state.values.{block}.{block}.selected_option", "bad option"
            )
        return str(option["value"])

    def choices(self, block: str) -> list[str]:
        state = self._state(block)
        options = [] if state is None else state.get("selected_options") or []
        if not isinstance(options, list) or not all(
            isinstance(o, Mapping) and isinstance(o.get("value"), str) for o in options
        ):
            raise SubmissionError(
                f"view.state.values.{block}.{block}.selected_options", "bad options"
            )
        return [str(o["value"]) for o in options]


def _meta_int(meta: Mapping[str, Any], key: str, *, optional: bool = False) -> int | None:
    value = meta.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise SubmissionError("view.private_metadata", f"{key} must be a number")
    return value


def _too_long(text: str | None, limit: int) -> bool:
    return text is not None and len(text) > limit


def _declare(form: _Form, meta: Mapping[str, Any], user: str, view_id: str) -> Submission | Refused:
    channel = meta.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise SubmissionError("view.private_metadata", "channel must be a string")
    errors: dict[str, str] = {}
    title = form.text("title")
    if title is None:
        errors["title"] = "Say what is wrong: a short title."
    elif len(title) > INCIDENT_TITLE_MAX:
        errors["title"] = f"At most {INCIDENT_TITLE_MAX} characters."
    description = form.text("description")
    if _too_long(description, TEXT_MAX):
        errors["description"] = f"At most {TEXT_MAX} characters."
    severity_value = form.choice("severity")
    severity = None
    if severity_value is not None:
        if severity_value in {s.value for s in Severity}:
            severity = Severity(severity_value)
        else:
            errors["severity"] = "Choose critical, high, medium or low (or leave it empty)."
    who = form.choice("who")
    if who not in (WHO_COMMANDER, WHO_PAGE):
        errors["who"] = "Choose: you are Incident Commander, or page eng-primary."
    if errors:
        return Refused(errors)
    assert title is not None
    return Declare(
        user=user,
        view_id=view_id,
        title=title,
        description=description,
        severity=severity,
        confidential=CONFIDENTIAL in form.choices("confidential"),
        commander=who == WHO_COMMANDER,
        channel=channel,
    )


def _dismiss(form: _Form, meta: Mapping[str, Any], user: str, view_id: str) -> Submission | Refused:
    page = meta.get("page")
    if not isinstance(page, str) or not page:
        raise SubmissionError("view.private_metadata", "page must be a page key")
    level = _meta_int(meta, "level", optional=True)
    errors: dict[str, str] = {}
    reason = None
    index = form.choice("reason")
    if index is not None:
        if index.isdigit() and int(index) < len(DISMISS_REASONS):
            reason = DISMISS_REASONS[int(index)]
        else:
            errors["reason"] = "Choose one of the reasons in the list."
    note = form.text("note")
    if _too_long(note, NOTE_MAX):
        errors["note"] = f"At most {NOTE_MAX} characters."
    if reason is None and note is None and not errors:
        errors["reason"] = "Choose a reason or write a note: why is it not an incident?"
    if errors:
        return Refused(errors)
    return Dismiss(user=user, view_id=view_id, page_key=page, level=level, reason=reason, note=note)


def _resolve(form: _Form, meta: Mapping[str, Any], user: str, view_id: str) -> Submission | Refused:
    number = _meta_int(meta, "incident")
    assert number is not None
    owed_because = meta.get("owed")
    if owed_because is not None and not isinstance(owed_because, str):
        raise SubmissionError("view.private_metadata", "owed must be a reason or null")
    errors: dict[str, str] = {}
    summary = form.text("summary")
    if summary is None:
        errors["summary"] = "Summarise the resolution: everyone affected reads it."
    elif len(summary) > TEXT_MAX:
        errors["summary"] = f"At most {TEXT_MAX} characters."
    impact = form.text("impact")
    if impact is None and meta.get("customers") is True:
        errors["impact"] = "Customers were affected (flag customers): say how."
    elif _too_long(impact, TEXT_MAX):
        errors["impact"] = f"At most {TEXT_MAX} characters."
    owed = POSTMORTEM_OWED in form.choices("postmortem")
    if owed_because and not owed:
        errors["postmortem"] = f"The policy owes a post-mortem: {owed_because}."
    if errors:
        return Refused(errors)
    assert summary is not None
    return Resolve(
        user=user,
        view_id=view_id,
        number=number,
        summary=summary,
        impact=impact,
        postmortem_owed=owed,
    )


def _update(form: _Form, meta: Mapping[str, Any], user: str, view_id: str) -> Submission | Refused:
    number = _meta_int(meta, "incident")
    assert number is not None
    text = form.text("update")
    if text is None:
        return Refused({"update": "Write the update: what changed, what is next."})
    if len(text) > TEXT_MAX:
        return Refused({"update": f"At most {TEXT_MAX} characters."})
    return StatusUpdate(user=user, view_id=view_id, number=number, text=text)


Parser = Callable[[_Form, Mapping[str, Any], str, str], "Submission | Refused"]

# One row per view: its callback_id and how its submission is read.
PARSERS: dict[str, Parser] = {
    CALLBACK_DECLARE: _declare,
    CALLBACK_DISMISS: _dismiss,
    CALLBACK_RESOLVE: _resolve,
    CALLBACK_UPDATE: _update,
}


def parse_submission(payload: Mapping[str, Any]) -> Submission | Refused:
    """A ``view_submission`` payload as a typed value, or ``Refused`` with what to fix."""
    if payload.get("type") != "view_submission":
        raise SubmissionError("type", "must be view_submission")
    user = payload.get("user")
    user_id = user.get("id") if isinstance(user, Mapping) else None
    if not isinstance(user_id, str) or not user_id:
        raise SubmissionError("user.id", "missing")
    view = payload.get("view")
    if not isinstance(view, Mapping):
        raise SubmissionError("view", "must be an object")
    parser = PARSERS.get(str(view.get("callback_id")))
    if parser is None:
        raise SubmissionError("view.callback_id", "not a view of the router")
    try:
        meta = json.loads(view.get("private_metadata") or "")
    except (TypeError, ValueError):
        raise SubmissionError("view.private_metadata", "must be the router's JSON") from None
    if not isinstance(meta, dict) or meta.get("v") != METADATA_VERSION:
        raise SubmissionError("view.private_metadata", f"must be version {METADATA_VERSION}")
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    if not isinstance(values, Mapping):
        raise SubmissionError("view.state.values", "must be an object")
    return parser(_Form(values), meta, user_id, str(view.get("id") or ""))


# ------------------------------------------------------------------ what Slack would send


def simulate_submission(
    view: View,
    *,
    user: str,
    values: Mapping[str, str | Sequence[str]],
    view_id: str = "V0CONSOLE",
    strict: bool = True,
) -> dict[str, Any]:
    """The ``view_submission`` Slack sends for ``view`` filled in with ``values``
    (block_id -> text, an option's value, or a list of option values for checkboxes).

    ``strict`` refuses what Slack's own client would not let through: an option that is
    not offered, an empty required field, text over the field's ``max_length``.
    """
    inputs = {b["block_id"]: b for b in view["blocks"] if b.get("type") == "input"}
    unknown = set(values) - set(inputs)
    if unknown:
        raise ValueError(f"the view has no field {sorted(unknown)[0]!r}; it has {sorted(inputs)}")
    state: dict[str, Any] = {}
    for block_id, block in inputs.items():
        element = block["element"]
        kind = element["type"]
        given = values.get(block_id)
        options = {o["value"]: o for o in element.get("options", [])}
        if strict and given in (None, "", []) and not block.get("optional"):
            raise ValueError(f"{block_id} is required")
        if kind == "plain_text_input":
            text = str(given) if given is not None else None
            if strict and text and len(text) > element.get("max_length", 3000):
                raise ValueError(f"{block_id}: at most {element['max_length']} characters")
            entry: dict[str, Any] = {"type": kind, "value": text or None}
        elif kind in ("static_select", "radio_buttons"):
            if given is not None and not isinstance(given, str):
                raise ValueError(f"{block_id} takes one option value")
            if strict and given is not None and given not in options:
                raise ValueError(f"{given!r} is not an option of {block_id}: {sorted(options)}")
            chosen = options.get(given, {"text": _plain(str(given), 75), "value": given})
            entry = {"type": kind, "selected_option": chosen if given is not None else None}
        elif kind == "checkboxes":
            picked = [given] if isinstance(given, str) else list(given or [])
            if strict and any(p not in options for p in picked):
                raise ValueError(
                    f"not an option of {block_id}: {picked}; offered {sorted(options)}"
                )
            entry = {
                "type": kind,
                "selected_options": [
                    options.get(p, {"text": _plain(p, 75), "value": p}) for p in picked
                ],
            }
        else:  # pragma: no cover - the views above use only these elements
            raise ValueError(f"cannot simulate a {kind}")
        state[block_id] = {element["action_id"]: entry}
    return {
        "type": "view_submission",
        "team": {"id": "T0CONSOLE", "domain": "console"},
        "user": {"id": user, "username": user, "name": user, "team_id": "T0CONSOLE"},
        "api_app_id": "A0CONSOLE",
        "token": "console",
        "trigger_id": "0.0.console",
        "view": {
            **view,
            "id": view_id,
            "team_id": "T0CONSOLE",
            "state": {"values": state},
            "hash": "0.console",
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": "A0CONSOLE",
            "external_id": "",
            "bot_id": "B0CONSOLE",
        },
        "response_urls": [],
        "is_enterprise_install": False,
    }
