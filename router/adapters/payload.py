"""Inbound sources: each turns its wire format into ``router.core.alerts.Alert``.

Parsers raise ``PayloadError`` naming the offending field; the web layer turns it
into a 400/422 with that field in the JSON body. A 4xx tells Alertmanager, Grafana
and PagerDuty never to send that request again, so it is kept for what can never
succeed; everything here that the store could not hold is refused, never half-kept:

* JSON nested deeper than the parser's limit, invalid UTF-8, and strings with a lone
  UTF-16 surrogate (``"\\ud800"``: not text, so neither engine can store it);
* a NUL character in an identifier (PostgreSQL's text cannot hold one; elsewhere a
  NUL stays inside a JSON column, escaped, where it harms nothing);
* identifiers too long for a unique index are kept as a prefix and a hash
  (``router.core.alerts.bounded_key``), not refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import from_json

from router.app.ports import UnreadableBody
from router.core.alerts import bounded_key


class PayloadError(UnreadableBody):
    """The payload is well-formed JSON but not what the source promises."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message, field)
        self.status = status


def pydantic_field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def decode_json(data: bytes | str, where: str | None = None) -> Any:
    """Decode a JSON document, or raise a 400 ``PayloadError`` saying where it breaks.

    pydantic_core's parser, not ``json.loads``: it stops at 200 levels of nesting
    (``json.loads`` raises RecursionError on 5,000 ``[``), and it refuses lone
    surrogates, which ``json.loads`` turns into strings no store can encode.
    ``where`` names the field that held the document (a Slack form's ``payload``)."""
    try:
        return from_json(data)
    except ValueError as exc:
        message = str(exc)
        field = where
        if "surrogate" in message or "hex escape" in message:
            found = _surrogate_path(data, where)
            if found is not None:
                field = found
                message = f"a string holds a lone UTF-16 surrogate, which is not text ({message})"
        label = f"{where} is" if where else "body is"
        raise PayloadError(f"{label} not valid JSON: {message}", field=field, status=400) from exc


def _surrogate_path(data: bytes | str, where: str | None) -> str | None:
    """Where the lone surrogate is, as a field path (the parser only gives a column)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    for path, text in _strings(document, [where] if where else []):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return ".".join(path) or None
    return None


def _strings(value: Any, path: list[str]) -> Iterator[tuple[list[str], str]]:
    # Iterative: json.loads stops well before Python's recursion limit, a walk need not.
    stack = [(path, value)]
    while stack:
        here, node = stack.pop()
        if isinstance(node, str):
            yield here, node
        elif isinstance(node, dict):
            for key, child in node.items():
                yield [*here, key], key
                stack.append(([*here, key], child))
        elif isinstance(node, list):
            stack.extend(([*here, str(i)], child) for i, child in enumerate(node))


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _identifier(value: str) -> str:
    return bounded_key(_no_nul(value))


def _none_is_empty(value: Any) -> Any:
    # Go encodes a nil map as null: Grafana does for alerts without values.
    return {} if value is None else value


# An identifier a sender chose (group key, fingerprint, event id): kept as sent,
# unless the store could not index it.
Key = Annotated[str, AfterValidator(_identifier)]
# Text the router looks things up by (a button's value), so it reaches SQL as is.
Text = Annotated[str, AfterValidator(_no_nul)]
# A map of strings that a Go sender may send as null when empty.
Labels = Annotated[dict[str, str], BeforeValidator(_none_is_empty)]
