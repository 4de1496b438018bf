"""Instants in UTC, and how people read them: one way everywhere."""

from __future__ import annotations

from datetime import UTC, datetime

MINUTE = "%Y-%m-%d %H:%M UTC"


def utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive time is refused (it would be read in the host's zone)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"on-call times must be timezone-aware, got {at.isoformat()}")
    return at.astimezone(UTC)


def minute(at: datetime) -> str:
    """``2026-03-02 09:00 UTC``: how messages, issues and the console show a time."""
    return utc(at).strftime(MINUTE)
