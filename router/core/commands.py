"""The ``/incident`` verbs, as one table, and command text -> a ``Command``.

``VERBS`` is the one place a verb is defined: how it is typed and what it takes (the
parser reads it), its line in ``HELP``, the announcement button that stands for it
(``BUTTONS``), and the duty it runs (``Verb.step``, called by ``router.app.incidents``).
A new verb is a row here and, if it does something new, a step in
``router.core.duties``.

A command names its incident as ``INC-<n>`` right after the subcommand; the id may
be left out in the incident's own channel, or when exactly one incident is open
(``Command.number`` is None then). ``declare`` without a title opens a form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from router.core import duties, messages, public_notice
from router.core.duties import Context
from router.core.incident import Flag, Incident
from router.core.policy import Outcome
from router.core.public_notice import PUBLIC_STATUSES
from router.core.severity import Severity

_ID = re.compile(r"^INC-([0-9]+)$", re.IGNORECASE)
# Incident numbers are stored as 32-bit integers; a longer number names none of them.
_MAX_DIGITS = 9
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9]{6,})$")


class UsageError(ValueError):
    """The command cannot be understood; the message says how to write it."""


@dataclass(frozen=True)
class Command:
    name: str  # a verb's name (VERBS): declare, status, severity, comms, ... , help
    number: int | None = None  # INC-<n>, when given
    text: str = ""  # the free text: title, reason, note, update, summary, vendor
    user: str | None = None  # a mentioned person
    severity: Severity | None = None
    flag: Flag | None = None
    # What the Resolve form adds to ``resolve``: the customer impact, and a post-mortem
    # owed though the policy does not require one.
    impact: str | None = None
    postmortem_owed: bool = False


class Takes(Enum):
    """What a verb takes after its (optional) ``INC-n``."""

    NOTHING = "nothing"  # any text is ignored
    TEXT = "text"  # free text, may be empty
    REQUIRED_TEXT = "required text"
    TITLE = "title"  # declare: no incident id; without a title the handler opens a form
    SEVERITY = "severity"  # a severity, then a reason
    USER = "user"  # exactly one mention
    FLAG = "flag"  # one of the flags


# A duty: the incident, the command, who acts, what the step may read.
Step = Callable[[Incident, Command, str, Context], Outcome]
# A verb that needs no incident answers at once: the reply and its blocks, if any.
Answer = Callable[[Command], tuple[str, list[dict[str, Any]] | None]]


@dataclass(frozen=True)
class Verb:
    name: str
    args: str  # as the help and the usage errors show it, after the typed words
    summary: str  # its help line; "" joins the line before it, " · " between
    takes: Takes = Takes.NOTHING
    step: Step | None = None  # the duty it runs on the incident it names
    answer: Answer | None = None  # or: the answer of a verb that names no incident
    typed: str = ""  # how it is typed, if not its name ("role comms")
    responders_only: bool = True  # False: anyone may (accepting a handoff offered to you)
    reads_timeline: bool = False  # the step writes an issue body or shows the record
    owed_postmortem: bool = False  # with no INC-n: the one incident owing a post-mortem
    button: str | None = None  # action_id of the announcement control that runs it
    button_text: str = ""  # the command's text when the control runs it (else: what
    # the button's value carries after "INC-n|", e.g. the preview a Confirm confirms)
    control_only: bool = False  # run only by its button: not typed, not in the help

    @property
    def words(self) -> str:
        return self.typed or self.name


def _incomplete(command: Command) -> Outcome:
    return duties.refuse(f"`{command.name}` is incomplete. Try `/incident help`.")


def _severity(incident: Incident, command: Command, actor: str, ctx: Context) -> Outcome:
    if command.severity is None:
        return _incomplete(command)
    return duties.change_severity(incident, actor, command.severity, command.text, ctx)


def _comms(incident: Incident, command: Command, actor: str, ctx: Context) -> Outcome:
    if not command.user:
        return _incomplete(command)
    return duties.appoint_comms_lead(incident, actor, command.user, ctx)


def _handoff(incident: Incident, command: Command, actor: str, ctx: Context) -> Outcome:
    if not command.user:
        return _incomplete(command)
    return duties.offer_handoff(incident, actor, command.user, ctx)


def _public(incident: Incident, command: Command, actor: str, ctx: Context) -> Outcome:
    """``public [INC-n] [status] <text>``: the status word is optional."""
    first, _, rest = command.text.partition(" ")
    if first.lower() in PUBLIC_STATUSES:
        return duties.draft_public_notice(incident, actor, rest, ctx, first.lower())
    return duties.draft_public_notice(incident, actor, command.text, ctx)


def _invite(incident: Incident, command: Command, actor: str, ctx: Context) -> Outcome:
    if not command.user:
        return _incomplete(command)
    return duties.invite(incident, actor, command.user, ctx)


def _declare(command: Command) -> tuple[str, list[dict[str, Any]] | None]:
    if not command.text:  # the Slack handlers open the declare form instead
        return "Type `/incident declare <title>`: say what is wrong.", None
    return messages.report_choice(command.text)


def _flag(incident: Incident, command: Command, actor: str, ctx: Context) -> Outcome:
    if command.flag is None:
        return _incomplete(command)
    return duties.flag(incident, actor, command.flag, ctx)


VERBS: tuple[Verb, ...] = (
    Verb(
        "declare",
        "[title]",
        "report a suspected incident (be commander, or page eng-primary); no title: a form",
        Takes.TITLE,
        answer=_declare,
    ),
    Verb(
        "status",
        "[INC-n]",
        "where the incident stands",
        Takes.TEXT,
        step=lambda i, c, a, ctx: Outcome(reply=messages.status_text(i)),
    ),
    Verb(
        "timeline",
        "[INC-n]",
        "what happened so far, shown to you only",
        step=lambda i, c, a, ctx: duties.show_timeline(i, ctx),
        reads_timeline=True,
    ),
    Verb(
        "severity",
        "[INC-n] <critical|high|medium|low> <reason>",
        "classify (can change later)",
        Takes.SEVERITY,
        step=_severity,
        reads_timeline=True,
        button=messages.INC_SEVERITY,
        button_text="set with the announcement's control",
    ),
    Verb(
        "comms",
        "[INC-n] <@user>",
        "appoint the communications lead",
        Takes.USER,
        step=_comms,
        typed="role comms",
        button=messages.INC_COMMS,
    ),
    Verb(
        "handoff",
        "[INC-n] <@user>",
        "offer the commander role; they accept with a button",
        Takes.USER,
        step=_handoff,
        button=messages.INC_HANDOFF,
    ),
    Verb(
        "invite",
        "[INC-n] <@user>",
        "add someone to the incident's channel",
        Takes.USER,
        step=_invite,
    ),
    Verb(
        "accept",
        "[INC-n]",
        "accept a handoff offered to you",
        step=lambda i, c, a, ctx: duties.accept_handoff(i, a, ctx),
        responders_only=False,
        button=messages.INC_ACCEPT,
    ),
    Verb(
        "escalate",
        "[INC-n] <note>",
        "page leadership and tell the channel",
        Takes.TEXT,
        step=lambda i, c, a, ctx: duties.escalate(i, a, c.text, ctx),
        button=messages.INC_ESCALATE,
    ),
    Verb(
        "vendor",
        "[INC-n] <name>",
        "record contacting a vendor; shows their contact details",
        Takes.REQUIRED_TEXT,
        step=lambda i, c, a, ctx: duties.contact_vendor(i, a, c.text, ctx),
    ),
    Verb(
        "update",
        "[INC-n] <text>",
        "status update to the thread and the tracking issue",
        Takes.REQUIRED_TEXT,
        step=lambda i, c, a, ctx: duties.status_update(i, a, c.text, ctx),
    ),
    Verb(
        "flag",
        "[INC-n] <outage|data-loss|customers>",
        "facts that shape the end (post-mortem, comms)",
        Takes.FLAG,
        step=_flag,
        reads_timeline=True,
    ),
    Verb(
        "issue",
        "[INC-n]",
        "open the GitHub tracking issue now",
        step=lambda i, c, a, ctx: duties.open_tracking_issue(i, a, ctx),
        reads_timeline=True,
        button=messages.INC_ISSUE,
    ),
    Verb(
        "doc",
        "[INC-n]",
        "make the collaborative doc now (shared with the responders only)",
        step=lambda i, c, a, ctx: duties.open_doc(i, a, ctx),
    ),
    Verb(
        "public",
        "[INC-n] [investigating|identified|monitoring|resolved] <text>",
        "a notice on the public status page (commander or comms lead): you see a preview,"
        " it is published only when you confirm",
        Takes.REQUIRED_TEXT,
        step=_public,
    ),
    Verb(
        "mitigated",
        "[INC-n]",
        "",
        step=lambda i, c, a, ctx: duties.mitigate(i, a, ctx),
        button=messages.INC_MITIGATED,
    ),
    Verb(
        "resolve",
        "[INC-n] <summary>",
        "",
        Takes.REQUIRED_TEXT,
        step=lambda i, c, a, ctx: duties.resolve(
            i, a, c.text, ctx, impact=c.impact, postmortem_owed=c.postmortem_owed
        ),
        reads_timeline=True,
        # the control opens the Resolve form (router.adapters.slack.forms)
    ),
    Verb(
        "postmortem",
        "[INC-n]",
        "",
        step=lambda i, c, a, ctx: duties.postmortem_done(i, a, ctx),
        typed="postmortem done",
        owed_postmortem=True,
    ),
    # The buttons of a public notice's preview (their value: INC-n|<draft id>).
    Verb(
        "public_confirm",
        "[INC-n] <draft>",
        "",
        step=lambda i, c, a, ctx: duties.confirm_public_notice(i, a, c.text, ctx),
        button=public_notice.CONFIRM,
        control_only=True,
    ),
    Verb(
        "public_cancel",
        "[INC-n] <draft>",
        "",
        step=lambda i, c, a, ctx: duties.cancel_public_notice(i, a, c.text, ctx),
        button=public_notice.CANCEL,
        control_only=True,
    ),
    Verb("help", "", "this list", answer=lambda c: (HELP, None)),
)

VERB: dict[str, Verb] = {verb.name: verb for verb in VERBS}
# action_id of an announcement (or handoff DM) control -> the verb it runs
BUTTONS: dict[str, Verb] = {verb.button: verb for verb in VERBS if verb.button}


def _help() -> str:
    lines: list[str] = []
    for verb in VERBS:
        if verb.control_only:
            continue
        typed = f"`{verb.words} {verb.args}`" if verb.args else f"`{verb.words}`"
        if verb.summary:
            lines.append(f"• {typed}: {verb.summary}")
        elif lines and lines[-1].endswith("`"):
            lines[-1] += f" · {typed}"
        else:
            lines.append(f"• {typed}")
    head = (
        "*`/incident` commands* (INC-<n> may be left out in the incident's own channel, "
        "or when one incident is open)"
    )
    return "\n".join([head, *lines])


HELP: str = _help()


def incident_number(ref: str) -> int | None:
    """``INC-<n>`` as its number; None when ``ref`` is not one (ASCII digits only:
    ``"INC-²"`` is not an incident, and int() of it would raise)."""
    match = _ID.match(ref)
    digits = match.group(1) if match else ""
    return int(digits) if digits and len(digits) <= _MAX_DIGITS else None


def _user(token: str) -> str | None:
    match = _USER.match(token)
    return (match.group(1) or match.group(2)) if match else None


def _verb(words: list[str]) -> tuple[Verb, list[str]]:
    """The verb the first words type, and the words after them. A verb typed in two
    words is also understood by its name alone (``comms`` for ``role comms``)."""
    first = words[0].lower()
    for verb in VERBS:
        if verb.control_only:
            continue
        typed = verb.words.split()
        if typed[0] != first:
            if verb.name == first:
                return verb, words[1:]
            continue
        given = [w.lower() for w in words[1 : len(typed)]]
        if given != typed[1:]:
            raise UsageError(f"Usage: `/incident {verb.words} {verb.args}`")
        return verb, words[len(typed) :]
    raise UsageError(f"Unknown command `{first}`. Try `/incident help`.")


def parse(text: str) -> Command:
    words = text.strip().split()
    if not words:
        return Command("help")
    verb, rest = _verb(words)
    name = verb.name
    if verb.answer is not None and verb.takes is not Takes.TITLE:
        return Command(name)
    if verb.takes is Takes.TITLE:  # no title: the form asks for it
        return Command(name, text=" ".join(rest).strip()[:200])
    number = None
    if rest and _ID.match(rest[0]):
        number = incident_number(rest[0])
        if number is None:
            raise UsageError(f"There is no {rest[0][:20]}.")
        rest = rest[1:]
    free = " ".join(rest).strip()
    usage = f"Usage: `/incident {verb.words} {verb.args}`"
    if verb.takes is Takes.SEVERITY:
        if not rest or rest[0].lower() not in {s.value for s in Severity}:
            raise UsageError(usage)
        return Command(name, number, " ".join(rest[1:]).strip(), severity=Severity(rest[0].lower()))
    if verb.takes is Takes.USER:
        user = _user(rest[0]) if len(rest) == 1 else None
        if user is None:
            raise UsageError(f"{usage}: mention one person.")
        return Command(name, number, user=user)
    if verb.takes is Takes.FLAG:
        if len(rest) != 1 or rest[0].lower() not in {f.value for f in Flag}:
            raise UsageError(usage)
        return Command(name, number, flag=Flag(rest[0].lower()))
    if verb.takes is Takes.REQUIRED_TEXT and not free:
        raise UsageError(usage)
    return Command(name, number, free)
