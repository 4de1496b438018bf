"""What Slack's signed form bodies must hold before the router acts on them.

Signed does not mean well-formed: the signature proves the sender knows the secret,
not that ``payload`` is an object or ``actions`` a list of them. Every field the
handlers read is checked here, so a wrong shape is a 400 naming it (``payload.
actions.0.value``), never an AttributeError deep in a handler. The handlers then
read the decoded dict, whose shape this has vouched for.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.adapters.payload import PayloadError, Text, decode_json, pydantic_field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Slack adds fields; unknown ones are fine


class _User(_Model):
    id: Text = Field(min_length=1)


class _Container(_Model):
    message_ts: Text = ""


class _Message(_Model):
    ts: Text = ""


class _Option(_Model):
    value: Text = ""


class _Action(_Model):
    action_id: Text = ""
    block_id: Text = ""
    value: Text = ""
    action_ts: Text = ""
    selected_option: _Option | None = None
    selected_user: Text | None = None


class _Payload(_Model):
    type: str
    user: _User
    response_url: str | None = None
    container: _Container | None = None
    message: _Message | None = None
    # Slack sends the one action that was taken; each is a transaction of its own.
    actions: list[_Action] = Field(default=[], max_length=10)


class SlashCommand(_Model):
    user_id: Text = Field(min_length=1)
    text: Text = ""


def form_fields(body: bytes) -> dict[str, str]:
    """A url-encoded form, each field once (Slack never repeats one: a repeat is
    ambiguous, so it is refused rather than guessed)."""
    try:
        form = parse_qs(body.decode(), strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise PayloadError("body is not UTF-8 form data", status=400) from exc
    for key, values in form.items():
        if len(values) > 1:
            raise PayloadError(f"form field {key[:40]!r} appears {len(values)} times",
                               field=key[:100], status=400)  # fmt: skip
    return {key: values[0] for key, values in form.items()}


def interaction(form: dict[str, str]) -> dict[str, Any]:
    """The decoded ``payload`` field of an interaction, its shape checked."""
    if "payload" not in form:
        raise PayloadError("expected a form field payload with JSON", field="payload", status=400)
    return checked_interaction(decode_json(form["payload"], where="payload"))


def checked_interaction(document: Any) -> dict[str, Any]:
    """An interaction payload (from the form, or a Socket Mode envelope), its shape
    checked."""
    if not isinstance(document, dict):
        raise PayloadError("payload must be a JSON object", field="payload", status=400)
    try:
        _Payload.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = pydantic_field(("payload", *first["loc"]))
        raise PayloadError(first["msg"], field=field, status=400) from exc
    return document


def slash_command(form: dict[str, str]) -> SlashCommand:
    try:
        return SlashCommand.model_validate(form)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PayloadError(first["msg"], field=pydantic_field(first["loc"]), status=400) from exc
