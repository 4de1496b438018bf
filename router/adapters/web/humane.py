"""Times and durations as people read them on the console. All times are shown in UTC,
the zone of the timeline in the tracking issue and the post-mortem."""

from __future__ import annotations

from datetime import UTC, datetime


def when(at: datetime | None) -> str:
    if at is None:
        return "—"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def duration(seconds: float | None) -> str:
    """45 s, 12 min, 3.5 h, 2.1 d: one unit, at most one decimal."""
    if seconds is None:
        return "—"
    s = max(seconds, 0.0)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 36 * 3600:
        return _one_decimal(s / 3600, "h")
    return _one_decimal(s / 86400, "d")


def ago(at: datetime | None, now: datetime) -> str:
    """How long ago, in at most two units: 12 min, 4 h 36 min, 2 d 3 h, 45 d."""
    if at is None:
        return "—"
    s = int(max((now - at).total_seconds(), 0))
    if s < 90:
        return "just now"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 3600:
        text = f"{minutes} min"
    elif s < 86400:
        text = f"{hours} h" + (f" {minutes % 60} min" if minutes % 60 else "")
    elif s < 14 * 86400:
        text = f"{days} d" + (f" {hours % 24} h" if hours % 24 else "")
    else:
        text = f"{days} d"
    return text + " ago"


def time_unit(max_seconds: float) -> tuple[str, float]:
    """The unit a chart of durations reads best in: (label, seconds per unit)."""
    if max_seconds < 2 * 3600:
        return "min", 60.0
    if max_seconds < 2 * 86400:
        return "h", 3600.0
    return "d", 86400.0


def _one_decimal(value: float, unit: str) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"
