"""Inbound sources: each turns its wire format into ``router.alerts.Alert``.

Parsers raise ``PayloadError`` naming the offending field; the web layer turns it
into a 400/422 with that field in the JSON body.
"""

from __future__ import annotations


class PayloadError(ValueError):
    """The payload is well-formed JSON but not what the source promises."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def pydantic_field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)
