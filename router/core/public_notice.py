"""Public communication, under the commander's control: what a public notice is, the
preview its author confirms, and the ``statuspage.notice`` job a confirm makes.

The policy: when customers are affected the company "may choose to proactively
communicate the issue publicly", and at the end the resolution is communicated to all
affected parties. So the router never publishes on its own. ``/incident public <text>``
(by the commander or the comms lead) stores a draft on the incident and answers with a
preview and two buttons; only Confirm, pressed by one of them while that preview is
the current draft, makes the job. A confidential incident refuses at both steps.

The first confirmed notice opens the Statuspage incident; every later one (updates,
the resolution) names that first job (``NoticeJob.first``), so it goes to the same
Statuspage incident. The public name is ``statuspage.incident_name``, never the
internal title. Component status follows severity (the adapter maps it,
``statuspage.component_status``), ``operational`` on the resolution.

Pure: the adapter (``router.adapters.statuspage.notice``) publishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.core import keys
from router.core.incident import Incident, IncidentStatus, PublicDraft
from router.core.jobs import PUBLIC_NOTICE_MAX, Job, NoticeJob, PublicStatus

__all__ = ["NoticeJob", "PublicPage", "PublicStatus", "notice_job", "preview", "status_for"]

PUBLIC_STATUSES: tuple[PublicStatus, ...] = (
    "investigating",
    "identified",
    "monitoring",
    "resolved",
)

MAX_TEXT = PUBLIC_NOTICE_MAX

# action_ids of the preview's buttons (router.adapters.slack.inbound_interactions reads them)
CONFIRM = "incident.public_confirm"
CANCEL = "incident.public_cancel"


@dataclass(frozen=True)
class PublicPage:
    """What the duties need of the ``statuspage`` section (the adapter reads the rest)."""

    incident_name: str  # the public incident's name, never the internal title
    resolution_text: str  # the resolution notice drafted when the incident resolves


def status_for(incident: Incident, asked: str | None = None) -> PublicStatus:
    """The public status of a notice: the one asked for, else from the incident's state
    (resolved once it is resolved, monitoring once mitigated, identified after the
    first notice, investigating before)."""
    if asked in PUBLIC_STATUSES:
        return asked
    if incident.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
        return "resolved"
    if incident.status is IncidentStatus.MITIGATED:
        return "monitoring"
    return "identified" if incident.public_first_job else "investigating"


def confidential_refusal(incident: Incident) -> str:
    return (
        f"{incident.ref} is confidential: nothing about it goes on the public status page."
        " Tell affected customers through the channels your policy allows."
    )


def preview(incident: Incident, draft: PublicDraft, name: str) -> tuple[str, list[dict[str, Any]]]:
    """The ephemeral preview of a draft with Confirm and Cancel (text, blocks)."""
    where = (
        "an update to the public incident already open"
        if incident.public_first_job
        else f"a new public incident named *{name}*"
    )
    text = (
        f"Preview of the public notice for {incident.ref} ({draft.status}), {where}:"
        f"\n>{draft.text}\nNothing is published until you press Confirm."
    )
    value = f"{incident.ref}|{draft.id}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {
            "type": "actions",
            "block_id": f"public|{incident.ref}|{draft.id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": CONFIRM,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Confirm: publish"},
                    "value": value,
                },
                {
                    "type": "button",
                    "action_id": CANCEL,
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "value": value,
                },
            ],
        },
    ]
    return text, blocks


def notice_key(incident: Incident, draft: PublicDraft) -> str:
    return keys.public_notice(incident.number, draft.id)


def notice_job(incident: Incident, draft: PublicDraft, name: str) -> Job:
    """The job a confirm makes; its key is the draft's, so a double confirm (or two
    replicas) enqueues it once."""
    return NoticeJob(
        incident=incident.ref,
        name=name,
        body=draft.text,
        status=status_for(incident, draft.status),
        severity=incident.severity,
        first=incident.public_first_job,
        previous=incident.public_last_job,
    ).job(notice_key(incident, draft))
