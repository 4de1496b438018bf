"""The on-call policy: who is paged when, and who is next.

Dates: 2026-01-05 is a Monday; Europe/Berlin springs forward on Sunday 2026-03-29 and
falls back on Sunday 2026-10-25 (CET = UTC+1, CEST = UTC+2).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from router.core.oncall import (
    ENG_PRIMARY,
    ENG_SECONDARY,
    ESCALATION_ORDER,
    LEADERSHIP,
    Handoff,
    OncallConfig,
    Schedule,
    format_oncall,
)

BERLIN = ZoneInfo("Europe/Berlin")
A, B, C = "U01AAAA", "U02BBBB", "U03CCCC"
Z, Y = "U09ZZZZ", "U08YYYY"


def berlin(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=BERLIN)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def rotation(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "members": [A, B, C],
        "start": "2026-01-05T09:00:00",
        "handoff_time": "09:00",
        "timezone": "Europe/Berlin",
    }
    return base | changes


def schedule(responders: list[str] | None = None, **rotations: dict[str, Any]) -> Schedule:
    """Rotations by keyword (underscores for dashes); eng-primary defaults to A, B, C."""
    named = {k.replace("_", "-"): v for k, v in rotations.items()}
    named.setdefault(ENG_PRIMARY, rotation())
    data = {"rotations": named, "responders": responders or []}
    return Schedule(OncallConfig.model_validate(data))


def primary(**changes: Any) -> Schedule:
    return schedule(eng_primary=rotation(**changes))


def override(user: str, start: str, end: str) -> dict[str, str]:
    return {"user": user, "start": start, "end": end, "reason": "swap"}


# --- rotation order and handoff minute ---


@pytest.mark.parametrize(("week", "expected"), [(0, A), (1, B), (2, C), (3, A), (4, B), (52, B)])
def test_members_take_weekly_shifts_in_order(week: int, expected: str) -> None:
    wednesday_noon = berlin(1, 7, 12) + timedelta(weeks=week)
    assert primary().who_is_on(ENG_PRIMARY, wednesday_noon) == expected


def test_first_member_is_on_from_the_exact_start() -> None:
    s = primary()
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 5, 9)) == A
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 5, 8, 59, 59)) is None


def test_handoff_happens_at_the_exact_local_minute() -> None:
    s = primary()
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 12, 8, 59)) == A
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 12, 8, 59, 59)) == A
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 12, 9, 0)) == B


def test_length_days_sets_the_shift_length() -> None:
    s = primary(length_days=1)
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 6, 8, 59)) == A
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 6, 9)) == B
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 7, 9)) == C
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 8, 9)) == A


def test_before_start_nobody_is_on() -> None:
    s = primary()
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 1, 12)) is None
    assert s.who_is_on(ENG_PRIMARY, datetime(2025, 6, 1, tzinfo=UTC)) is None


def test_the_zone_of_at_does_not_matter_only_the_instant() -> None:
    s = primary()
    # 08:00 UTC = 09:00 CET = 03:00 in New York: the handoff instant.
    new_york = ZoneInfo("America/New_York")
    assert s.who_is_on(ENG_PRIMARY, datetime(2026, 1, 12, 2, 59, tzinfo=new_york)) == A
    assert s.who_is_on(ENG_PRIMARY, datetime(2026, 1, 12, 3, 0, tzinfo=new_york)) == B
    assert s.who_is_on(ENG_PRIMARY, utc(1, 12, 8)) == B


def test_naive_times_are_refused() -> None:
    s = primary()
    with pytest.raises(ValueError, match="timezone-aware"):
        s.who_is_on(ENG_PRIMARY, datetime(2026, 1, 12, 9))
    with pytest.raises(ValueError, match="timezone-aware"):
        s.next_handoffs(ENG_PRIMARY, datetime(2026, 1, 12, 9))


def test_unknown_role_is_a_key_error() -> None:
    s = primary()
    with pytest.raises(KeyError, match="eng-tertiary"):
        s.who_is_on("eng-tertiary", berlin(1, 12, 9))
    with pytest.raises(KeyError, match="eng-tertiary"):
        s.next_handoffs("eng-tertiary", berlin(1, 12, 9))
    with pytest.raises(KeyError, match="eng-tertiary"):
        s.escalation_after("eng-tertiary")


# --- daylight saving time ---


def test_weekly_handoff_stays_at_0900_local_across_spring_forward() -> None:
    s = primary()
    # Week 11 (C) starts Mon 23 March 09:00 CET; week 12 (A) Mon 30 March 09:00 CEST.
    assert s.who_is_on(ENG_PRIMARY, utc(3, 23, 7, 59)) == B
    assert s.who_is_on(ENG_PRIMARY, utc(3, 23, 8, 0)) == C
    assert s.who_is_on(ENG_PRIMARY, utc(3, 30, 6, 59)) == C
    # 168 hours after the previous handoff would be 08:00 UTC = 10:00 CEST: too late.
    assert s.who_is_on(ENG_PRIMARY, utc(3, 30, 7, 0)) == A
    handoffs = s.next_handoffs(ENG_PRIMARY, berlin(3, 20, 12))
    assert [h.at.astimezone(BERLIN).hour for h in handoffs] == [9, 9, 9]
    assert [h.at.hour for h in handoffs] == [8, 7, 7]
    assert [(h.from_user, h.to_user) for h in handoffs] == [(B, C), (C, A), (A, B)]


def test_daily_handoff_on_the_spring_forward_day_is_0900_cest() -> None:
    s = primary(start="2026-03-27T09:00:00", length_days=1)
    # 27th A, 28th B, 29th (the DST Sunday) C from 09:00 CEST = 07:00 UTC.
    assert s.who_is_on(ENG_PRIMARY, utc(3, 29, 6, 59)) == B
    assert s.who_is_on(ENG_PRIMARY, utc(3, 29, 7, 0)) == C
    assert s.who_is_on(ENG_PRIMARY, utc(3, 28, 7, 59)) == A
    assert s.who_is_on(ENG_PRIMARY, utc(3, 28, 8, 0)) == B


def test_daily_handoff_on_the_fall_back_day_is_0900_cet() -> None:
    s = primary(start="2026-10-24T09:00:00", length_days=1)
    # 24th A from 07:00 UTC (CEST); 25th (the DST Sunday) B from 08:00 UTC (CET).
    assert s.who_is_on(ENG_PRIMARY, utc(10, 24, 7, 0)) == A
    assert s.who_is_on(ENG_PRIMARY, utc(10, 25, 7, 30)) == A
    assert s.who_is_on(ENG_PRIMARY, utc(10, 25, 8, 0)) == B
    [first] = s.next_handoffs(ENG_PRIMARY, utc(10, 24, 12), count=1)
    assert first.at == utc(10, 25, 8)


def test_override_ending_in_the_repeated_autumn_hour_is_compared_as_an_instant() -> None:
    # 02:30 occurs twice on 25 October; a naive time means the first (CEST, 00:30 UTC).
    s = primary(overrides=[override(Z, "2026-10-24T12:00:00", "2026-10-25T02:30:00")])
    assert s.who_is_on(ENG_PRIMARY, utc(10, 25, 0, 29)) == Z
    # 01:00 UTC is 02:00 CET, the second pass: earlier on the wall clock, yet later.
    # The week from Monday 19 October is week 41: C.
    assert s.who_is_on(ENG_PRIMARY, utc(10, 25, 1, 0)) == C


# --- overrides ---


def test_override_wins_for_its_window_and_then_ends() -> None:
    s = primary(overrides=[override(Z, "2026-01-07T09:00:00", "2026-01-08T09:00:00")])
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 7, 8, 59)) == A
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 7, 9)) == Z
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 8, 8, 59)) == Z
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 8, 9)) == A


def test_override_spanning_a_shift_boundary_then_hands_to_the_new_shift() -> None:
    s = primary(overrides=[override(Z, "2026-01-10T09:00:00", "2026-01-13T09:00:00")])
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 12, 10)) == Z
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 13, 9)) == B


def test_override_before_the_rotation_starts_is_honoured() -> None:
    s = primary(overrides=[override(Z, "2026-01-02T09:00:00", "2026-01-03T09:00:00")])
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 2, 12)) == Z
    assert s.who_is_on(ENG_PRIMARY, berlin(1, 3, 9)) is None


# --- next handoffs ---


def test_next_handoffs_include_override_start_and_end_in_order() -> None:
    s = primary(overrides=[override(Z, "2026-01-07T09:00:00", "2026-01-08T09:00:00")])
    assert s.next_handoffs(ENG_PRIMARY, berlin(1, 6, 12)) == [
        Handoff(ENG_PRIMARY, utc(1, 7, 8), A, Z),
        Handoff(ENG_PRIMARY, utc(1, 8, 8), Z, A),
        Handoff(ENG_PRIMARY, utc(1, 12, 8), A, B),
    ]


def test_override_ending_on_a_shift_boundary_is_one_handoff() -> None:
    s = primary(overrides=[override(Z, "2026-01-10T09:00:00", "2026-01-12T09:00:00")])
    assert s.next_handoffs(ENG_PRIMARY, berlin(1, 6, 12)) == [
        Handoff(ENG_PRIMARY, utc(1, 10, 8), A, Z),
        Handoff(ENG_PRIMARY, utc(1, 12, 8), Z, B),
        Handoff(ENG_PRIMARY, utc(1, 19, 8), B, C),
    ]


def test_override_for_the_person_already_on_is_no_handoff() -> None:
    s = primary(overrides=[override(A, "2026-01-07T09:00:00", "2026-01-08T09:00:00")])
    handoffs = s.next_handoffs(ENG_PRIMARY, berlin(1, 6, 12), count=1)
    assert handoffs == [Handoff(ENG_PRIMARY, utc(1, 12, 8), A, B)]


def test_next_handoffs_before_start_begin_with_the_first_shift() -> None:
    handoffs = primary().next_handoffs(ENG_PRIMARY, berlin(1, 1, 12), count=2)
    assert handoffs == [
        Handoff(ENG_PRIMARY, utc(1, 5, 8), None, A),
        Handoff(ENG_PRIMARY, utc(1, 12, 8), A, B),
    ]


def test_next_handoffs_are_strictly_after_at() -> None:
    [first] = primary().next_handoffs(ENG_PRIMARY, berlin(1, 12, 9), count=1)
    assert first == Handoff(ENG_PRIMARY, utc(1, 19, 8), B, C)


def test_next_handoffs_count() -> None:
    s = primary()
    handoffs = s.next_handoffs(ENG_PRIMARY, berlin(1, 6, 12), count=5)
    assert [h.to_user for h in handoffs] == [B, C, A, B, C]
    assert s.next_handoffs(ENG_PRIMARY, berlin(1, 6, 12), count=0) == []
    assert len(s.next_handoffs(ENG_PRIMARY, berlin(1, 6, 12))) == 3


def test_handoff_times_are_aware_utc() -> None:
    [h] = primary().next_handoffs(ENG_PRIMARY, berlin(1, 6, 12), count=1)
    assert h.at.tzinfo is UTC
    assert h.at == berlin(1, 12, 9)


def test_one_person_rotation_has_no_handoffs_and_terminates() -> None:
    s = primary(members=[A])
    assert s.next_handoffs(ENG_PRIMARY, berlin(2, 1, 12)) == []
    with_cover = primary(
        members=[A],
        overrides=[override(Z, "2026-03-01T09:00:00", "2026-03-02T09:00:00")],
    )
    assert with_cover.next_handoffs(ENG_PRIMARY, berlin(2, 1, 12)) == [
        Handoff(ENG_PRIMARY, utc(3, 1, 8), A, Z),
        Handoff(ENG_PRIMARY, utc(3, 2, 8), Z, A),
    ]


def test_next_handoffs_reach_past_a_long_override() -> None:
    # The override covers 20 shift boundaries; it ends on Monday 1 June, week 21 (A).
    s = primary(overrides=[override(Z, "2026-01-06T09:00:00", "2026-06-01T09:00:00")])
    handoffs = s.next_handoffs(ENG_PRIMARY, berlin(1, 5, 12))
    assert [(h.from_user, h.to_user) for h in handoffs] == [(A, Z), (Z, A), (A, B)]
    assert handoffs[1].at == berlin(6, 1, 9)
    assert handoffs[2].at.astimezone(BERLIN).date().isoformat() == "2026-06-08"


# --- validation at load ---


def load_error(**secondary: Any) -> str:
    """The load error of a config whose eng-secondary rotation has ``secondary``."""
    data = {"rotations": {ENG_PRIMARY: rotation(), ENG_SECONDARY: rotation(**secondary)}}
    with pytest.raises(ValueError) as caught:
        OncallConfig.model_validate(data)
    return str(caught.value)


@pytest.mark.parametrize(
    ("secondary", "reason"),
    [
        ({"members": []}, "members must not be empty"),
        ({"handoff_time": "10:00"}, "handoff_time 10:00:00 does not match"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"timezone": "../etc/passwd"}, "unknown timezone"),
        ({"length_days": 0}, "length_days must be at least 1, got 0"),
        (
            {
                "overrides": [
                    override(Z, "2026-02-01T09:00:00", "2026-02-03T09:00:00"),
                    override(Y, "2026-02-02T09:00:00", "2026-02-04T09:00:00"),
                ]
            },
            "overrides overlap",
        ),
        (
            {
                "overrides": [
                    override(Z, "2026-02-01T09:00:00", "2026-02-10T09:00:00"),
                    override(Y, "2026-02-02T09:00:00", "2026-02-03T09:00:00"),
                    override(A, "2026-02-05T09:00:00", "2026-02-06T09:00:00"),
                ]
            },
            "2026-02-10T09:00:00 and U01AAAA",
        ),
        (
            {"overrides": [override(Z, "2026-02-01T09:00:00", "2026-02-01T09:00:00")]},
            "override for U09ZZZZ must end after it starts",
        ),
        (
            {"overrides": [override(Z, "2026-02-02T09:00:00", "2026-02-01T09:00:00")]},
            "must end after it starts",
        ),
    ],
)
def test_invalid_rotation_is_refused_naming_it(secondary: dict[str, Any], reason: str) -> None:
    message = load_error(**secondary)
    assert "rotation 'eng-secondary'" in message
    assert reason in message
    assert "rotation 'eng-primary'" not in message


def test_adjacent_overrides_are_allowed() -> None:
    s = primary(
        overrides=[
            override(Z, "2026-02-02T09:00:00", "2026-02-03T09:00:00"),
            override(Y, "2026-02-01T09:00:00", "2026-02-02T09:00:00"),
        ]
    )
    assert s.who_is_on(ENG_PRIMARY, berlin(2, 2, 9)) == Z
    assert s.who_is_on(ENG_PRIMARY, berlin(2, 2, 8, 59)) == Y


def test_every_problem_is_reported_at_once() -> None:
    message = load_error(members=[], timezone="Nowhere")
    assert "members must not be empty" in message
    assert "unknown timezone 'Nowhere'" in message


def test_eng_primary_is_required() -> None:
    with pytest.raises(ValueError, match="must define 'eng-primary'"):
        OncallConfig.model_validate({"rotations": {LEADERSHIP: rotation()}})


def test_start_with_an_offset_is_refused() -> None:
    message = load_error(start="2026-01-05T09:00:00+01:00")
    assert "eng-secondary" in message and "start" in message


def test_misspelt_key_is_refused() -> None:
    message = load_error(member=[A])
    assert "eng-secondary" in message and "member" in message


def test_unquoted_yaml_handoff_time_is_refused() -> None:
    text = """
rotations:
  eng-primary:
    members: [U01AAAA]
    start: 2026-01-05T10:00:00
    handoff_time: 10:00
    timezone: Europe/Berlin
"""
    with pytest.raises(ValidationError, match="quoted") as caught:
        OncallConfig.model_validate(yaml.safe_load(text))
    assert "eng-primary" in str(caught.value)


def test_yaml_example_from_the_design_loads() -> None:
    text = """
rotations:
  eng-primary:
    members: [U01AAAA, U02BBBB, U03CCCC]
    start: "2026-01-05T09:00:00"
    handoff_time: "09:00"
    timezone: Europe/Berlin
    length_days: 7
    overrides:
      - {user: U09ZZZZ, start: "2026-02-01T09:00:00", end: "2026-02-02T09:00:00", reason: "swap"}
responders: [U05RESP]
"""
    s = Schedule(OncallConfig.model_validate(yaml.safe_load(text)))
    assert s.who_is_on(ENG_PRIMARY, berlin(2, 1, 12)) == Z
    assert s.is_responder("U05RESP")


def test_require_roles() -> None:
    config = schedule(leadership=rotation()).config
    config.require_roles([ENG_PRIMARY, LEADERSHIP], "severity.rules[0]")
    with pytest.raises(ValueError) as caught:
        config.require_roles([ENG_PRIMARY, "eng-secondry"], "severity.rules[2]")
    assert str(caught.value) == (
        "unknown on-call role 'eng-secondry' referenced in severity.rules[2]"
    )


# --- roles, escalation, responders ---


def test_escalation_follows_the_order_through_configured_roles() -> None:
    full = schedule(eng_secondary=rotation(), leadership=rotation())
    assert ESCALATION_ORDER == (ENG_PRIMARY, ENG_SECONDARY, LEADERSHIP)
    assert full.escalation_after(ENG_PRIMARY) == ENG_SECONDARY
    assert full.escalation_after(ENG_SECONDARY) == LEADERSHIP
    assert full.escalation_after(LEADERSHIP) is None


def test_escalation_skips_roles_that_are_not_configured() -> None:
    assert schedule(leadership=rotation()).escalation_after(ENG_PRIMARY) == LEADERSHIP
    assert primary().escalation_after(ENG_PRIMARY) is None


def test_roles_outside_the_order_do_not_escalate() -> None:
    assert (
        schedule(db_oncall=rotation(), leadership=rotation()).escalation_after("db-oncall") is None
    )


def test_roles_lists_the_escalation_order_first() -> None:
    s = schedule(db_oncall=rotation(), leadership=rotation(), app_oncall=rotation())
    assert s.roles() == [ENG_PRIMARY, LEADERSHIP, "app-oncall", "db-oncall"]


def test_only_the_responder_group_are_responders() -> None:
    s = schedule(responders=["U05RESP"])
    assert s.is_responder("U05RESP")
    assert s.is_responder("U05RESP", ENG_PRIMARY)
    assert not s.is_responder(A)  # a rotation member, but not a responder
    with pytest.raises(KeyError):
        s.is_responder("U05RESP", "eng-tertiary")


# --- the `router oncall` text ---


def test_format_oncall_names_who_is_on_and_the_next_handoffs() -> None:
    s = schedule(leadership=rotation(members=[Y], start="2026-02-01T09:00:00"))
    text = format_oncall(s, berlin(1, 13, 12))
    primary_part, leadership_part = text.split("\n\nleadership")
    assert "eng-primary (Europe/Berlin)" in primary_part
    assert f"now:  {B}" in primary_part
    assert f"{B} -> {C}" in primary_part
    assert f"{C} -> {A}" in primary_part
    assert f"{A} -> {B}" in primary_part
    assert "2026-01-19 09:00 CET (2026-01-19 08:00 UTC)" in primary_part
    assert primary_part.count("next:") == 3
    assert "now:  nobody" in leadership_part
    assert f"nobody -> {Y}" in leadership_part
    assert "2026-02-01 09:00 CET" in leadership_part


def test_format_oncall_shows_summer_time_in_local_and_utc() -> None:
    text = format_oncall(primary(), berlin(3, 25, 12))
    assert "2026-03-30 09:00 CEST (2026-03-30 07:00 UTC)" in text
    assert f"now:  {C}" in text
