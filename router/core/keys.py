"""Idempotency keys: every job key is built here, and read back only here.

A key names the side effect, not the attempt, so a replayed webhook, a double click or
a racing replica makes the same key and the store's unique constraint keeps one job
(design rule 4). Keys are also how jobs refer to each other (a thread post names the
announcement it goes under, an edit names the message it changes) and how pending
timers are cancelled (by prefix). Stored keys outlive releases: a format here changes
only with a reader for the old one.
"""

from __future__ import annotations

from datetime import datetime

DEAD = "dead:"  # a notice about a dead job; never itself reported when it dies

# -- pages ------------------------------------------------------------------------


def page_dm(page: str, paged: int, user: str) -> str:
    """The DM of a page to the ``paged``-th person paged."""
    return f"page:{page}:dm:{paged}:{user}"


def page_ack_timer(page: str, level: int) -> str:
    return f"page:{page}:ack:{level}"


def page_pagerduty(page: str, action: str, version: int) -> str:
    # The version makes a second trigger (firing again after resolving) a new event.
    return f"page:{page}:pd:{action}:v{version}"


def page_thread(page: str, version: int) -> str:
    """A post in the incident's thread about its page's alerts."""
    return f"page:{page}:thread:{version}"


def page_notice(page: str, what: str) -> str:
    """An operator notice about a page (``nobody``, ``exhausted``)."""
    return f"page:{page}:{what}"


def again(message: str, why: str) -> str:
    """A new copy of a message (a re-page)."""
    return f"{message}:{why}"


def edit(message: str, seq: int) -> str:
    """The edit of the message made by job ``message`` to version ``seq``."""
    return f"{message}:v{seq}"


# -- storm digests ----------------------------------------------------------------


def digest(user: str, window: int) -> str:
    return f"digest:{user}:{window}"


def digest_ack_timer(digest: str, level: int) -> str:
    return f"{digest}:ack:{level}"


def digest_pagerduty(digest: str) -> str:
    return f"{digest}:pd:trigger"


def digest_escalated(digest: str, user: str) -> str:
    """The copy of a digest sent to ``user`` on escalation."""
    return f"{digest}:to:{user}"


def digest_part(message: str, part: int) -> str:
    """The DM job carrying ``part`` of the digest copy ``message``."""
    return message if part == 0 else f"{message}:part:{part}"


# -- incidents --------------------------------------------------------------------


def _incident(number: int | None) -> str:
    return f"incident:{number}:"


def announcement(number: int | None) -> str:
    return f"{_incident(number)}announce"


def incident_step(number: int, what: str, version: int) -> str:
    """A side effect of a duty step, once per incident version."""
    return f"{_incident(number)}{what}:v{version}"


def incident_job(number: int, what: str) -> str:
    """A side effect an incident has once (``tracking-issue``, ``postmortem``)."""
    return f"{_incident(number)}{what}"


def incident_timer_prefix(number: int, what: str) -> str:
    """The prefix of every timer of this kind for this incident (cancelled by it)."""
    return f"{_incident(number)}timer:{what}:"


def incident_timer(number: int, what: str, due: datetime) -> str:
    # The due time in the key: a re-armed timer is a new job.
    return f"{incident_timer_prefix(number, what)}{due.timestamp():.0f}"


def doc(number: int) -> str:
    """The incident's first collaborative-doc job (it makes the copy)."""
    return incident_job(number, "doc")


def doc_share(number: int, version: int) -> str:
    """A doc job sharing the copy with a new responder."""
    return incident_step(number, "doc:share", version)


def public_notice(number: int, draft: str) -> str:
    """The public notice a confirm of draft ``draft`` publishes (once, however often
    it is pressed)."""
    return incident_job(number, f"public:{draft}")


def incident_channel(number: int) -> str:
    """The job that makes an incident's own channel (the others name it: ``channel_of``)."""
    return incident_job(number, "channel")


def channel_bookmark(channel_job: str, index: int) -> str:
    return f"{channel_job}:bookmark:{index}"


def declaration(number: int) -> str:
    """The declaration in #incident-response of an incident that has its own channel."""
    return incident_job(number, "declaration")


def derived(job: str, what: str) -> str:
    """A job that follows another (``:link``, ``:nochannel``, ``:state:<t>``)."""
    return f"{job}:{what}"


def incident_anchors() -> tuple[str, ...]:
    """SQL LIKE patterns of the jobs an incident keeps referring to: its announcement
    (updates thread under it) and its issues (the console links them). Pruning keeps
    them however old."""
    return tuple(f"incident:%:{what}" for what in ("announce", "tracking-issue", "postmortem"))


def incident_of(key: str) -> int | None:
    """The incident a job key belongs to, if it is one of an incident's jobs."""
    head, _, rest = key.partition(":")
    number, sep, _ = rest.partition(":")
    if head != "incident" or not sep or not number.isascii() or not number.isdigit():
        return None
    return int(number)


# -- the outbox and the inbox ------------------------------------------------------


def dead_notice(job: str) -> str:
    return f"{DEAD}{job}"


def dead_in_thread(job: str) -> str:
    return f"{DEAD}{job}:thread"


def is_dead_notice(key: str) -> bool:
    return key.startswith(DEAD)


def inbox_dead(delivery: int | str) -> str:
    return f"inbox:{delivery}:dead"


def answer(delivery: str) -> str:
    """The ephemeral answer to one button press (``delivery``: the press's own id)."""
    return f"answer:{delivery}"
