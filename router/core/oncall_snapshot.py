"""Who is on call, as an outside provider (PagerDuty) last said: an immutable snapshot.

The lifecycle asks on-call questions through one small protocol, which
``router.core.oncall.Schedule`` (rotations from the config file) already satisfies and
``OncallSnapshot`` and ``OncallView`` satisfy too::

    class OnCallSchedule(Protocol):
        def roles(self) -> list[str]: ...
            # the configured roles: ESCALATION_ORDER first, then the rest by name
        def who_is_on(self, role: str, at: datetime) -> str | None: ...
            # the Slack user id on call for ``role`` at the aware instant ``at``;
            # None when nobody is; KeyError for a role not in roles()

That is all the lifecycle and the duties use (``lifecycle.on_call_after``,
``duties.is_responder``, the leadership look-up). Both questions are pure and
synchronous: the provider's I/O happens elsewhere (an adapter task refreshes the
snapshot on its own clock), and a decision reads whichever snapshot was current when
it began, so a decision replayed with the same snapshot decides the same.

A snapshot holds the shifts that overlap the window the provider was asked about,
``[taken_at, until)``, with their real start and end, so any ``at`` inside it is
answered exactly, handoffs included. Past ``until`` the snapshot no longer knows; it
answers with the person of the last shift it knew (the one covering the end of its
window), because paging the last known on-call engineer beats paging nobody while the
provider is unreachable. ``OncallView.answer`` says which of these happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from router.core import when
from router.core.oncall import ESCALATION_ORDER, Handoff

_INSTANT = timedelta(microseconds=1)


class OnCallSchedule(Protocol):
    """What the lifecycle asks of any on-call source (see the module docstring)."""

    def roles(self) -> list[str]: ...

    def who_is_on(self, role: str, at: datetime) -> str | None: ...


_utc = when.utc


def ordered_roles(names: Iterable[str]) -> list[str]:
    """The escalation order first, then the other roles by name (as ``Schedule``)."""
    known = set(names)
    first = [r for r in ESCALATION_ORDER if r in known]
    return first + sorted(known - set(first))


@dataclass(frozen=True, slots=True)
class Shift:
    """One person on call from ``start`` until ``end`` (None: no end)."""

    user: str | None  # the Slack user id; None when the provider's person has none
    start: datetime  # aware, UTC
    end: datetime | None
    named: str = ""  # who the provider named (a PagerDuty user id), for ``router oncall``

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start))
        if self.end is not None:
            object.__setattr__(self, "end", _utc(self.end))
            if self.end <= self.start:
                raise ValueError(
                    f"a shift must end after it starts ({self.start.isoformat()}"
                    f" .. {self.end.isoformat()})"
                )

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True)
class OncallSnapshot:
    """The shifts of each role overlapping ``[taken_at, until)``, as the provider said."""

    taken_at: datetime
    until: datetime
    shifts: Mapping[str, tuple[Shift, ...]]

    def __post_init__(self) -> None:
        taken_at, until = _utc(self.taken_at), _utc(self.until)
        if until <= taken_at:
            raise ValueError("a snapshot's window must end after it was taken")
        # Sorted by start; a copy behind a read-only view, so no caller can change it.
        shifts = {role: tuple(sorted(s, key=lambda x: x.start)) for role, s in self.shifts.items()}
        object.__setattr__(self, "taken_at", taken_at)
        object.__setattr__(self, "until", until)
        object.__setattr__(self, "shifts", MappingProxyType(shifts))

    @classmethod
    def build(
        cls,
        taken_at: datetime,
        until: datetime,
        roles: Iterable[str],
        shifts: Iterable[tuple[str, Shift]],
    ) -> OncallSnapshot:
        """From (role, shift) pairs; every role in ``roles`` is known, even with no shift.

        The same shift reported twice (PagerDuty lists a schedule once per escalation
        policy and level that uses it) is kept once.
        """
        by_role: dict[str, set[Shift]] = {role: set() for role in roles}
        for role, shift in shifts:
            by_role.setdefault(role, set()).add(shift)
        return cls(taken_at, until, {role: tuple(s) for role, s in by_role.items()})

    def roles(self) -> list[str]:
        return ordered_roles(self.shifts)

    def knows(self, at: datetime) -> bool:
        """True when ``at`` is inside the window the provider was asked about."""
        return _utc(at) < self.until

    def shift_at(self, role: str, at: datetime) -> Shift | None:
        """The shift answering for ``role`` at ``at``: the one covering it (the latest
        to start if several do, as an override does), or past the window the one
        covering its end."""
        try:
            shifts = self.shifts[role]
        except KeyError:
            raise KeyError(f"unknown on-call role {role!r}") from None
        instant = min(_utc(at), self.until - _INSTANT)
        covering = [s for s in shifts if s.covers(instant)]
        return covering[-1] if covering else None

    def who_is_on(self, role: str, at: datetime) -> str | None:
        shift = self.shift_at(role, at)
        return None if shift is None else shift.user

    def next_handoffs(self, role: str, at: datetime, count: int = 3) -> list[Handoff]:
        """Changes of who is on strictly after ``at`` and inside the window."""
        now = _utc(at)
        edges = sorted(
            {
                t
                for s in self.shifts.get(role, ())
                for t in (s.start, s.end)
                if t is not None and now < t < self.until
            }
        )
        handoffs: list[Handoff] = []
        before = self.who_is_on(role, now)
        for instant in edges:
            after = self.who_is_on(role, instant)
            if after != before:
                handoffs.append(Handoff(role, instant, before, after))
                if len(handoffs) >= count:
                    break
            before = after
        return handoffs


class Source(StrEnum):
    """Where an on-call answer came from, for ``router oncall`` and the logs."""

    PROVIDER = "provider"  # the provider's last answer, and its last refresh worked
    CACHED = "cached"  # the last good answer, kept while the provider fails
    CONFIG = "config"  # no answer from the provider yet: the config's rotations
    NOBODY = "nobody"  # no answer from the provider and no rotation to fall back to


@dataclass(frozen=True, slots=True)
class Answer:
    role: str
    user: str | None
    source: Source
    as_of: datetime | None  # when the provider said so (None for CONFIG and NOBODY)
    shift: Shift | None  # the provider's shift behind the answer, if any
    beyond_window: bool = False  # ``at`` is past what the provider was asked about


@dataclass(frozen=True)
class OncallView:
    """The current on-call source as one immutable value: the last good snapshot (or
    none yet), the config fallback, and whether the provider is failing now.

    It satisfies ``OnCallSchedule``; a decision takes one view and uses it throughout.
    """

    snapshot: OncallSnapshot | None
    fallback: OnCallSchedule | None = None
    failing_since: datetime | None = None  # the first failed refresh after the last good one
    failure: str | None = None  # why the last refresh failed (no secrets, no names)
    provider: str = "pagerduty"
    configured_roles: tuple[str, ...] = field(default_factory=tuple)

    def roles(self) -> list[str]:
        if self.snapshot is not None:
            return self.snapshot.roles()
        if self.fallback is not None:
            return self.fallback.roles()
        return ordered_roles(self.configured_roles)

    def who_is_on(self, role: str, at: datetime) -> str | None:
        return self.answer(role, at).user

    def answer(self, role: str, at: datetime) -> Answer:
        if self.snapshot is not None:
            shift = self.snapshot.shift_at(role, at)
            source = Source.PROVIDER if self.failing_since is None else Source.CACHED
            return Answer(
                role,
                None if shift is None else shift.user,
                source,
                self.snapshot.taken_at,
                shift,
                beyond_window=not self.snapshot.knows(at),
            )
        if self.fallback is not None:
            if role not in self.fallback.roles():
                raise KeyError(f"unknown on-call role {role!r}")
            return Answer(role, self.fallback.who_is_on(role, at), Source.CONFIG, None, None)
        if role not in self.configured_roles:
            raise KeyError(f"unknown on-call role {role!r}")
        return Answer(role, None, Source.NOBODY, None, None)


class RefreshingOncall(Protocol):
    """An outside on-call source (PagerDuty): a task refreshes it, decisions read its
    last answer (``current``), never waiting on the network."""

    def current(self) -> OncallView: ...

    async def refresh(self) -> bool: ...  # ask once; False: failed, the last answer stays

    async def run(self, refreshed: bool = False) -> None: ...  # refresh until cancelled

    async def close(self) -> None: ...


class CurrentOncall:
    """The ``OnCallSchedule`` a provider-backed ``Policy`` holds: every question goes to
    the view the provider holds now (``current``, e.g. ``PagerDutyOncall.current``), so
    a refresh is seen by the next question without rebuilding the policy. Each question
    reads one immutable view; a refresh landing between two questions of one decision
    is the same as the handoff it reports happening a moment earlier."""

    def __init__(self, current: Callable[[], OncallView]) -> None:
        self._current = current

    def view(self) -> OncallView:
        return self._current()

    def roles(self) -> list[str]:
        return self._current().roles()

    def who_is_on(self, role: str, at: datetime) -> str | None:
        return self._current().who_is_on(role, at)


_PROVIDER_NAMES = {"pagerduty": "PagerDuty"}


_when = when.minute


def format_view(view: OncallView, at: datetime) -> str:
    """Text for ``router oncall`` with a provider: per role, who is on, until when,
    where the answer came from, and the next handoffs the snapshot knows."""
    provider = _PROVIDER_NAMES.get(view.provider, view.provider)
    lines = [f"On call at {_when(at)}, from {provider}"]
    failing = (
        f"{provider} failing since {_when(view.failing_since)}: {view.failure}"
        if view.failing_since is not None
        else None
    )
    for role in view.roles():
        answer = view.answer(role, at)
        who = answer.user or "nobody"
        shift = answer.shift
        if shift is not None:
            who += f" ({provider} {shift.named})" if shift.named else ""
            who += f" until {_when(shift.end)}" if shift.end is not None else ""
        lines += ["", role, f"  now:  {who}"]
        if answer.source is Source.PROVIDER and answer.as_of is not None:
            lines.append(f"  from: {provider}, answer of {_when(answer.as_of)}")
        elif answer.source is Source.CACHED and answer.as_of is not None:
            lines.append(f"  from: cached answer of {_when(answer.as_of)} ({failing})")
        elif answer.source is Source.CONFIG:
            why = f": {view.failure}" if view.failure else ""
            lines.append(f"  from: config rotation ({provider} has not answered yet{why})")
        else:
            lines.append(
                f"  from: nobody ({provider} has not answered yet and no rotation is configured)"
            )
        if answer.beyond_window and view.snapshot is not None:
            lines.append(
                f"  note: past the cached window (until {_when(view.snapshot.until)}):"
                " the last known person"
            )
        if view.snapshot is not None and answer.source is not Source.CONFIG:
            handoffs = view.snapshot.next_handoffs(role, at)
            if not handoffs and not answer.beyond_window:
                lines.append("  next: no handoffs in the cached window")
            for h in handoffs:
                lines.append(
                    f"  next: {_when(h.at)}  {h.from_user or 'nobody'} -> {h.to_user or 'nobody'}"
                )
    return "\n".join(lines)
