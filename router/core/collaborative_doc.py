"""The incident's collaborative doc, as the lifecycle asks for it: who it is shared
with and what goes in it (the ``google.doc`` job's payload, ``DocJob``).

The policy has the commander open a tracking issue "and a Google doc for collaborative
work" when ongoing work is likely, so the doc comes with the tracking issue (by
severity, or ``/incident issue``) and on ``/incident doc``. It is shared with the
incident's responders only: its commander, the person who declared it, its comms
lead and the configured responder group. Nobody else, and "anyone with the link" only
when ``incident.doc.share_with_link`` says so (the adapter reads that).

Pure: the adapter (``router.adapters.google.docs``) carries the job out.
"""

from __future__ import annotations

from collections.abc import Iterable

from router.core import keys
from router.core.incident import Incident
from router.core.jobs import DocJob, DocLink, Job

__all__ = ["DocJob", "DocLink", "doc_job", "doc_key", "made_text", "responders"]


def responders(incident: Incident, group: Iterable[str]) -> tuple[str, ...]:
    """Who the doc is shared with, in a stable order, each once."""
    people = [incident.commander, incident.declared_by, incident.comms_lead, *sorted(group)]
    return tuple(dict.fromkeys(p for p in people if p and p != "router"))


def doc_key(incident: Incident, share: bool = False) -> str:
    """The first doc job's key; ``share``: a later one sharing with a new responder
    (it finds the same copy, so it shares and fills, never copies again)."""
    if share:
        return keys.doc_share(incident.number, incident.version)
    return keys.doc(incident.number)


def doc_job(
    incident: Incident,
    key: str,
    group: Iterable[str],
    links: Iterable[tuple[str, str]] = (),
    after: str | None = None,
) -> Job:
    return DocJob(
        after=after,
        incident=incident.ref,
        title=incident.title,
        commander=incident.commander,
        severity=incident.severity.value,
        clause=incident.severity_reason,
        links=tuple(DocLink(text=text, url=url) for text, url in links),
        responders=responders(incident, group),
        confidential=incident.confidential,
    ).job(key)


def made_text(url: str, not_shared: Iterable[str]) -> str:
    """The thread's message once the doc exists."""
    missing = list(not_shared)
    text = f":page_facing_up: Collaborative doc (shared with the responders only): {url}"
    if missing:
        people = ", ".join(f"<@{user}>" for user in missing)
        text += f"\nNot shared with {people}: Slack shows no e-mail address for them."
    return text
