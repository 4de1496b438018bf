"""Who is on call, pinned at its boundaries: an override starting or ending exactly now,
overlapping overrides, local dates far from UTC, and what `router oncall` prints.

Written against the survivors of mutation testing (`make mutation`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo

import pytest
from pydantic import ValidationError

from router.core.oncall import Handoff, format_oncall
from tests.unit.test_oncall import A, B, C, Y, Z, berlin, primary, rotation, schedule


@pytest.mark.rule("oncall.who-is-on")
def test_an_override_starting_exactly_now_is_on_now_and_its_end_is_the_next_handoff() -> None:
    s = primary(overrides=[{"user": Z, "start": "2026-01-13T12:00:00",
                            "end": "2026-01-13T18:00:00"}])  # fmt: skip
    now = berlin(1, 13, 12)
    assert s.who_is_on("eng-primary", now) == Z
    assert s.who_is_on("eng-primary", now - timedelta(seconds=1)) == B
    assert s.next_handoffs("eng-primary", now, count=1) == [
        Handoff("eng-primary", berlin(1, 13, 18).astimezone(UTC), Z, B)
    ]
    # exactly at its end the rotation is back: the end is not part of the override
    assert s.who_is_on("eng-primary", berlin(1, 13, 18)) == B


def override(user: str, start: str, end: str) -> dict[str, str]:
    """``user`` on call from midnight of January ``start`` to midnight of ``end``."""
    return {"user": user, "start": f"2026-01-{start}T00:00:00", "end": f"2026-01-{end}T00:00:00"}


@pytest.mark.rule("oncall.who-is-on")
def test_overlapping_overrides_are_refused_naming_the_one_reaching_furthest() -> None:
    def problems(*overrides: tuple[str, str, str]) -> str:
        with pytest.raises(ValidationError) as error:
            primary(overrides=[override(*o) for o in overrides])
        return str(error.value)

    # B ends when A ends: A still reaches furthest, and C overlaps A
    text = problems((A, "10", "15"), (B, "11", "15"), (C, "14", "16"))
    assert (
        f"overrides overlap: {A} 2026-01-10T00:00:00..2026-01-15T00:00:00 and {C} "
        "2026-01-14T00:00:00..2026-01-16T00:00:00"
    ) in text
    # an override that ends before it starts is reported, and the others still checked
    text = problems((A, "10", "09"), (B, "11", "13"), (C, "12", "14"))
    assert f"override for {A} must end after it starts" in text
    assert f"overrides overlap: {B} 2026-01-11T00:00:00..2026-01-13T00:00:00 and {C}" in text
    # back to back is not an overlap
    assert primary(overrides=[override(A, "10", "11"), override(B, "11", "12")])


@pytest.mark.rule("oncall.who-is-on")
def test_a_rotation_without_members_says_so() -> None:
    with pytest.raises(ValidationError, match="rotation 'eng-primary': members must not be empty"):
        primary(members=[])


class NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None


@pytest.mark.rule("oncall.who-is-on")
def test_times_without_an_offset_are_refused() -> None:
    s = primary()
    for at in (datetime(2026, 1, 13, 12), datetime(2026, 1, 13, 12, tzinfo=NoOffset())):
        with pytest.raises(ValueError, match="on-call times must be timezone-aware"):
            s.who_is_on("eng-primary", at)


@pytest.mark.rule("oncall.who-is-on")
def test_shifts_count_local_days_where_the_local_date_is_not_the_utc_date() -> None:
    """Auckland is UTC+13 in January: 08:00 local on a handoff day is the day before
    in UTC. The shift is the local day's."""
    s = primary(timezone="Pacific/Auckland", start="2026-01-05T07:00:00", handoff_time="07:00",
                length_days=1)  # fmt: skip
    handoff_day = datetime(2026, 1, 6, 8, 0, tzinfo=UTC) - timedelta(hours=13)  # 08:00 local
    assert s.who_is_on("eng-primary", handoff_day) == B
    assert s.who_is_on("eng-primary", handoff_day - timedelta(hours=2)) == A  # 06:00 local


@pytest.fixture
def tokyo_local_time() -> Iterator[None]:
    """The process's local time zone is not UTC (as on a laptop in Tokyo)."""
    import os

    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.rule("oncall.who-is-on")
def test_router_oncall_prints_utc_whatever_the_local_time_zone(tokyo_local_time: None) -> None:
    text = format_oncall(primary(), berlin(1, 13, 12))
    assert "2026-01-19 09:00 CET (2026-01-19 08:00 UTC)" in text


@pytest.mark.rule("oncall.who-is-on")
def test_router_oncall_says_when_nobody_is_next() -> None:
    one = schedule(eng_primary=rotation(members=[Y]))
    assert format_oncall(one, berlin(1, 13, 12)).splitlines()[-1] == "  next: no handoffs"
    # an override before the rotation starts hands over to nobody
    early = schedule(eng_primary=rotation(start="2026-02-02T09:00:00", overrides=[
        {"user": Z, "start": "2026-01-12T09:00:00", "end": "2026-01-14T09:00:00"}]))  # fmt: skip
    text = format_oncall(early, berlin(1, 13, 12))
    assert f"  now:  {Z}" in text
    assert f"{Z} -> nobody" in text and f"nobody -> {A}" in text
