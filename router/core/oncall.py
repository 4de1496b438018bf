"""Who is on call: rotations, dated overrides, and the escalation order.

Pure: no I/O and no clock. Every question takes an aware ``at`` (the lifecycle passes
its injected clock's time), so a later PagerDuty-backed provider only has to answer
``who_is_on(role, at)``.

Shifts are counted in local wall time, so a 09:00 Europe/Berlin handoff stays at 09:00
across daylight-saving changes. Instants are compared in UTC, because Python compares
two datetimes sharing one tzinfo by wall time and ignores ``fold``, which gets the
repeated hour of an autumn night wrong.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, NaiveDatetime, field_validator, model_validator

from router.core import when
from router.core.strict import Strict

ENG_PRIMARY = "eng-primary"
ENG_SECONDARY = "eng-secondary"
LEADERSHIP = "leadership"
ESCALATION_ORDER = (ENG_PRIMARY, ENG_SECONDARY, LEADERSHIP)


class OverrideConfig(Strict):
    """``user`` is on call from ``start`` until ``end`` (local times of the rotation)."""

    user: str
    start: NaiveDatetime
    end: NaiveDatetime
    reason: str = ""


class RotationConfig(Strict):
    """Members take ``length_days`` shifts in turn; the first starts at ``start``.

    ``start`` and override times are naive local times in ``timezone``.
    """

    members: list[str]
    start: NaiveDatetime
    handoff_time: time
    timezone: str
    length_days: int = 7
    overrides: list[OverrideConfig] = Field(default_factory=list)

    @field_validator("handoff_time", mode="before")
    @classmethod
    def _reject_yaml_sexagesimal(cls, value: object) -> object:
        # PyYAML reads an unquoted 10:00 as the base-60 number 600, which pydantic would
        # quietly turn into 00:10:00. ValueError, not TypeError: pydantic reports only
        # the former as a validation error with the field's location.
        if isinstance(value, int):
            raise ValueError(
                f'handoff_time must be a quoted "HH:MM" string, got the number {value}'
                " (YAML reads unquoted 10:00 as 600)"
            )
        return value

    def problems(self, name: str) -> list[str]:
        """Everything wrong with this rotation, each message naming it.

        Checked here rather than in a validator because only the enclosing
        ``OncallConfig`` knows the rotation's name.
        """
        found: list[str] = []
        if not self.members:
            found.append("members must not be empty")
        if self.length_days < 1:
            found.append(f"length_days must be at least 1, got {self.length_days}")
        if self.handoff_time != self.start.time():
            found.append(
                f"handoff_time {self.handoff_time.isoformat()} does not match the time"
                f" of start {self.start.isoformat()}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            found.append(f"unknown timezone {self.timezone!r}")
        latest: OverrideConfig | None = None  # the override reaching furthest so far
        for override in sorted(self.overrides, key=lambda o: o.start):
            if override.end <= override.start:
                found.append(
                    f"override for {override.user} must end after it starts"
                    f" (start {override.start.isoformat()}, end {override.end.isoformat()})"
                )
                continue
            if latest is not None and override.start < latest.end:
                found.append(
                    f"overrides overlap: {latest.user} {latest.start.isoformat()}"
                    f"..{latest.end.isoformat()} and {override.user}"
                    f" {override.start.isoformat()}..{override.end.isoformat()}"
                )
            if latest is None or override.end > latest.end:
                latest = override
        return [f"rotation {name!r}: {problem}" for problem in found]


class OncallConfig(Strict):
    """The ``oncall:`` section: rotations by role, and the responder group."""

    rotations: dict[str, RotationConfig]
    responders: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> OncallConfig:
        found = [p for name, r in self.rotations.items() for p in r.problems(name)]
        if ENG_PRIMARY not in self.rotations:
            found.insert(0, f"oncall.rotations must define {ENG_PRIMARY!r}: it is paged first")
        if found:
            raise ValueError("; ".join(found))
        return self

    def require_roles(self, names: Iterable[str], where: str) -> None:
        """Fail at load when another section names a role no rotation defines."""
        for name in names:
            if name not in self.rotations:
                raise ValueError(f"unknown on-call role {name!r} referenced in {where}")


@dataclass(frozen=True, slots=True)
class Handoff:
    role: str
    at: datetime  # aware, in UTC
    from_user: str | None  # None: the rotation had not started
    to_user: str | None  # None: an override before the rotation's start has ended


_utc = when.utc


@dataclass(frozen=True)
class _Rotation:
    config: RotationConfig
    zone: ZoneInfo
    overrides: tuple[tuple[datetime, datetime, str], ...]  # (start, end, user) in UTC

    @classmethod
    def build(cls, config: RotationConfig) -> _Rotation:
        zone = ZoneInfo(config.timezone)
        overrides = tuple(
            (
                _utc(o.start.replace(tzinfo=zone)),
                _utc(o.end.replace(tzinfo=zone)),
                o.user,
            )
            for o in sorted(config.overrides, key=lambda o: o.start)
        )
        return cls(config, zone, overrides)

    def boundary(self, shift: int) -> datetime:
        # Naive datetime arithmetic is wall-clock arithmetic: whole local days.
        local = self.config.start + timedelta(days=shift * self.config.length_days)
        return _utc(local.replace(tzinfo=self.zone))

    def shift_at(self, at: datetime) -> int | None:
        days = (at.astimezone(self.zone).date() - self.config.start.date()).days
        shift = days // self.config.length_days
        # Before the handoff on a handoff day, the previous shift still runs; a loop
        # because a handoff inside a DST gap can land after local midnight.
        while at < self.boundary(shift):
            shift -= 1
        return shift if shift >= 0 else None

    def who_is_on(self, at: datetime) -> str | None:
        for start, end, user in self.overrides:
            if start <= at < end:
                return user
        shift = self.shift_at(at)
        members = self.config.members
        return None if shift is None else members[shift % len(members)]


class Schedule:
    """Answers on-call questions from an ``OncallConfig``; every ``at`` must be aware."""

    def __init__(self, config: OncallConfig) -> None:
        self.config = config
        self._rotations = {name: _Rotation.build(r) for name, r in config.rotations.items()}

    def _rotation(self, role: str) -> _Rotation:
        try:
            return self._rotations[role]
        except KeyError:
            raise KeyError(f"unknown on-call role {role!r}") from None

    def roles(self) -> list[str]:
        """Configured roles: the escalation order first, then the rest by name."""
        known = [r for r in ESCALATION_ORDER if r in self._rotations]
        return known + sorted(r for r in self._rotations if r not in ESCALATION_ORDER)

    def timezone(self, role: str) -> ZoneInfo:
        return self._rotation(role).zone

    def who_is_on(self, role: str, at: datetime) -> str | None:
        """The override covering ``at`` if any (even before the rotation starts), else
        the scheduled member; None before the rotation's start."""
        return self._rotation(role).who_is_on(_utc(at))

    def next_handoffs(self, role: str, at: datetime, count: int = 3) -> list[Handoff]:
        """The next ``count`` changes of who is on, strictly after ``at``, in order.

        Shift changes and override starts and ends both count; a boundary where the
        same person stays on is not a handoff.
        """
        rotation = self._rotation(role)
        now = _utc(at)
        shift = rotation.shift_at(now)
        shifts = (rotation.boundary(i) for i in itertools.count(0 if shift is None else shift + 1))
        edges = sorted(t for s, e, _ in rotation.overrides for t in (s, e) if t > now)
        # Past the last override, every cycle of shifts repeats; if count + 1 cycles
        # bring no change, nothing ever will (a one-person rotation).
        cycle = timedelta(days=rotation.config.length_days * len(rotation.config.members))
        horizon = max([now, rotation.boundary(0), *edges]) + cycle * (count + 1)
        handoffs: list[Handoff] = []
        before = rotation.who_is_on(now)
        for instant in heapq.merge(shifts, edges):
            if len(handoffs) >= count or instant > horizon:
                break
            after = rotation.who_is_on(instant)
            if after != before:
                handoffs.append(Handoff(role, instant, before, after))
            before = after
        return handoffs

    def is_responder(self, user: str, role: str | None = None) -> bool:
        """True only if ``user`` is in the configured ``responders`` group.

        Rotation members are not responders by membership: the paged person is
        authorized by the page itself. ``role`` is checked to exist (a typo must not
        pass silently) but does not change the answer: there is one group for all roles.
        """
        if role is not None:
            self._rotation(role)
        return user in self.config.responders

    def escalation_after(self, role: str) -> str | None:
        """The next configured role in ``ESCALATION_ORDER`` after ``role``; None at the
        end, and for roles outside the order, which do not escalate."""
        self._rotation(role)
        if role not in ESCALATION_ORDER:
            return None
        later = ESCALATION_ORDER[ESCALATION_ORDER.index(role) + 1 :]
        return next((r for r in later if r in self._rotations), None)


def _when(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M %Z} ({instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC)"


def format_oncall(schedule: Schedule, at: datetime) -> str:
    """Text for ``router oncall``: per role, who is on now and the next 3 handoffs."""
    lines = [f"On call at {when.minute(at)}"]
    for role in schedule.roles():
        zone = schedule.timezone(role)
        lines += [
            "",
            f"{role} ({zone.key})",
            f"  now:  {schedule.who_is_on(role, at) or 'nobody'}",
        ]
        handoffs = schedule.next_handoffs(role, at)
        if not handoffs:
            lines.append("  next: no handoffs")
        for h in handoffs:
            who = f"{h.from_user or 'nobody'} -> {h.to_user or 'nobody'}"
            lines.append(f"  next: {_when(h.at, zone)}  {who}")
    return "\n".join(lines)
