"""``/incident`` command text -> a ``Command``, or a usage error a person can act on.

A command names its incident as ``INC-<n>`` right after the subcommand; the id may
be left out when exactly one incident is open (``Command.number`` is None then).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from router.core.incident import Flag
from router.core.severity import Severity

HELP = """*`/incident` commands* (INC-<n> may be left out when one incident is open)
• `declare <title>`: report a suspected incident (be commander, or page eng-primary)
• `status [INC-n]`: where the incident stands
• `severity [INC-n] <critical|high|medium|low> <reason>`: classify (can change later)
• `role comms [INC-n] <@user>`: appoint the communications lead
• `handoff [INC-n] <@user>`: offer the commander role; they accept with a button
• `accept [INC-n]`: accept a handoff offered to you
• `escalate [INC-n] <note>`: page leadership and tell the channel
• `vendor [INC-n] <name>`: record contacting a vendor; shows their contact details
• `update [INC-n] <text>`: status update to the thread and the tracking issue
• `flag [INC-n] <outage|data-loss|customers>`: facts that shape the end (post-mortem, comms)
• `issue [INC-n]`: open the GitHub tracking issue now
• `mitigated [INC-n]` · `resolve [INC-n] <summary>` · `postmortem done [INC-n]`
• `help`: this list"""

_ID = re.compile(r"^INC-([0-9]+)$", re.IGNORECASE)
# Incident numbers are stored as 32-bit integers; a longer number names none of them.
_MAX_DIGITS = 9
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9]{6,})$")
NEEDS_INCIDENT = frozenset(
    {"status", "severity", "comms", "handoff", "accept", "escalate", "vendor", "update",
     "flag", "issue", "mitigated", "resolve", "postmortem"}
)  # fmt: skip


class UsageError(ValueError):
    """The command cannot be understood; the message says how to write it."""


@dataclass(frozen=True)
class Command:
    name: str  # declare, status, severity, comms, handoff, ... , help
    number: int | None = None  # INC-<n>, when given
    text: str = ""  # the free text: title, reason, note, update, summary, vendor
    user: str | None = None  # a mentioned person
    severity: Severity | None = None
    flag: Flag | None = None


def incident_number(ref: str) -> int | None:
    """``INC-<n>`` as its number; None when ``ref`` is not one (ASCII digits only:
    ``"INC-²"`` is not an incident, and int() of it would raise)."""
    match = _ID.match(ref)
    digits = match.group(1) if match else ""
    return int(digits) if digits and len(digits) <= _MAX_DIGITS else None


def _user(token: str) -> str | None:
    match = _USER.match(token)
    return (match.group(1) or match.group(2)) if match else None


def parse(text: str) -> Command:
    words = text.strip().split()
    if not words or words[0].lower() == "help":
        return Command("help")
    name, rest = words[0].lower(), words[1:]
    if name == "role":
        if not rest or rest[0].lower() != "comms":
            raise UsageError("Usage: `/incident role comms [INC-n] <@user>`")
        name, rest = "comms", rest[1:]
    if name == "postmortem":
        if not rest or rest[0].lower() != "done":
            raise UsageError("Usage: `/incident postmortem done [INC-n]`")
        rest = rest[1:]
    if name == "declare":
        title = " ".join(rest).strip()
        if not title:
            raise UsageError("Usage: `/incident declare <title>`: say what is wrong.")
        return Command("declare", text=title[:200])
    if name not in NEEDS_INCIDENT:
        raise UsageError(f"Unknown command `{name}`. Try `/incident help`.")
    number = None
    if rest and _ID.match(rest[0]):
        number = incident_number(rest[0])
        if number is None:
            raise UsageError(f"There is no {rest[0][:20]}.")
        rest = rest[1:]
    free = " ".join(rest).strip()
    if name == "severity":
        if not rest or rest[0].lower() not in {s.value for s in Severity}:
            raise UsageError(
                "Usage: `/incident severity [INC-n] <critical|high|medium|low> <reason>`"
            )
        return Command(name, number, " ".join(rest[1:]).strip(), severity=Severity(rest[0].lower()))
    if name in ("comms", "handoff"):
        user = _user(rest[0]) if len(rest) == 1 else None
        if user is None:
            usage = "role comms" if name == "comms" else "handoff"
            raise UsageError(f"Usage: `/incident {usage} [INC-n] <@user>`: mention one person.")
        return Command(name, number, user=user)
    if name == "flag":
        values = {f.value for f in Flag}
        if len(rest) != 1 or rest[0].lower() not in values:
            raise UsageError("Usage: `/incident flag [INC-n] <outage|data-loss|customers>`")
        return Command(name, number, flag=Flag(rest[0].lower()))
    if name in ("update", "resolve", "vendor") and not free:
        what = {"update": "<text>", "resolve": "<summary>", "vendor": "<name>"}[name]
        raise UsageError(f"Usage: `/incident {name} [INC-n] {what}`")
    return Command(name, number, free)
