"""Inbound sources: each turns its wire format into ``router.alerts.Alert``.

Parsers raise ``PayloadError`` naming the offending field; the web layer turns it
into a 400/422 with that field in the JSON body.
"""

from __future__ import annotations

import json
from typing import Any


class PayloadError(ValueError):
    """The payload is well-formed JSON but not what the source promises."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def pydantic_field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def decode_json(body: bytes) -> Any:
    """The body as JSON, or ``PayloadError`` (400) saying where it stops being JSON."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise PayloadError(f"body is not valid JSON{where}", status=400) from exc
