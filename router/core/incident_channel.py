"""What an incident's own Slack channel shows, and what #incident-response is told of it.

The policy says incident information is confidential, so by default each incident gets
a private channel with its responders in it; #incident-response still gets the
declaration the policy asks for (id, title, commander, severity), linking the channel.
A confidential incident shows only its id, commander and severity there: no title, no
severity reason, nothing from its alerts.

* ``topic``: the channel topic, kept in step with severity, commander and status; at
  most 250 characters (Slack's limit for ``conversations.setTopic``, ``too_long``).
  Slack shows a topic as plain text, so the commander is ``<@U…>`` unless the caller
  has a name for them (``commander_label``).
* ``declaration``: the message for #incident-response.
* ``bookmarks``: the channel's links (tracking issue, runbooks, the alerts); only
  http(s) links of at most 2,048 characters, which ``bookmarks.add`` takes.

Pure functions of domain state: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from router.core.alerts import Alert
from router.core.incident import Incident, IncidentStatus
from router.core.messages import escape, severity_text

TOPIC_MAX = 250
LINK_MAX = 2048  # bookmarks.add: link maxLength
MAX_RUNBOOKS = 3
_HEADER_MAX = 150  # a header block's plain_text
_SEP = " · "

Block = dict[str, Any]


# ------------------------------------------------------------------ topic


def _status(incident: Incident) -> str:
    if incident.postmortem_owed and incident.status is IncidentStatus.RESOLVED:
        return "resolved, post-mortem owed"
    return incident.status.value


def _cut(text: str, room: int) -> str:
    if len(text) <= room:
        return text
    return text[: max(0, room - 1)].rstrip() + "…"


def topic(
    incident: Incident, *, commander_label: str | None = None, show_title: bool = True
) -> str:
    """``INC-12 · high · IC <@U…> · active · <title>``, within 250 characters.

    The facts come first so a cut only ever shortens the title. ``show_title=False``
    for a channel non-responders can see (a public channel of a confidential incident).
    """
    commander = commander_label or f"<@{incident.commander}>"
    head = _SEP.join([incident.ref, incident.severity.value, f"IC {commander}", _status(incident)])
    if len(head) > TOPIC_MAX:  # only an absurd label gets here
        return _cut(head, TOPIC_MAX)
    if not show_title or not incident.title.strip():
        return head
    room = TOPIC_MAX - len(head) - len(_SEP)
    if room < 8:  # no room for a useful piece of the title
        return head
    return head + _SEP + _cut(" ".join(incident.title.split()), room)


# ------------------------------------------------------------------ declaration


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(text, limit)}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _cut(text, 3000)}


def declaration(
    incident: Incident, *, channel_id: str | None, confidential: bool
) -> tuple[str, list[Block]]:
    """The declaration in #incident-response: id, title, commander, severity, and a link
    to the incident's channel. ``confidential``: id, commander and severity only."""
    where = (
        f"Work happens in <#{channel_id}>: ask <@{incident.commander}> to be added."
        if channel_id
        else f"Its channel is being made; ask <@{incident.commander}> to be added."
    )
    chosen = incident.severity_reason != incident.suggestion.clause or (
        incident.severity is not incident.suggestion.severity
    )  # as the announcement says it
    severity_title = "Severity (set by the commander)" if chosen else "Suggested severity"
    fields = [
        _mrkdwn(f"*Incident Commander*\n<@{incident.commander}>"),
        _mrkdwn(f"*{severity_title}*\n{incident.severity.value}"),
    ]
    if confidential:
        text = (
            f"{incident.ref} declared (confidential). Incident Commander "
            f"<@{incident.commander}>, severity {incident.severity.value}"
        )
        return text, [
            {
                "type": "header",
                "text": _plain(f":lock: {incident.ref} (confidential)", _HEADER_MAX),
            },
            {"type": "section", "fields": fields},
            {"type": "section", "text": _mrkdwn(where)},
            {
                "type": "context",
                "elements": [
                    _mrkdwn(
                        "Confidential incident: only its id, commander and severity are "
                        "shown outside its channel."
                    )
                ],
            },
        ]
    text = (
        f"{incident.ref} declared: {incident.title}. Incident Commander "
        f"<@{incident.commander}>, severity {incident.severity.value}"
    )
    fields.append(_mrkdwn(f"*Why this severity*\n{escape(incident.severity_reason)}"))
    return text, [
        {
            "type": "header",
            "text": _plain(f":rotating_light: {incident.ref}: {incident.title}", _HEADER_MAX),
        },
        {"type": "section", "fields": fields},
        # the policy's announcement: the suggested severity with its clause and evidence
        {"type": "section", "text": _mrkdwn("Suggested " + severity_text(incident.suggestion))},
        {"type": "section", "text": _mrkdwn(where)},
        {
            "type": "context",
            "elements": [_mrkdwn("Incident details are confidential: they stay in its channel.")],
        },
    ]


# ------------------------------------------------------------------ bookmarks


@dataclass(frozen=True)
class Bookmark:
    title: str
    link: str


def _linkable(href: str | None) -> bool:
    return href is not None and href.startswith(("https://", "http://")) and len(href) <= LINK_MAX


def bookmarks(
    *, tracking_issue: str | None, alerts: Sequence[Alert], alerts_url: str | None = None
) -> list[Bookmark]:
    """The channel's bookmarks, in the order people need them: the tracking issue, the
    runbooks the alerts name (at most three, each once), where the alerts are seen."""
    made: list[Bookmark] = []
    if tracking_issue and _linkable(tracking_issue):
        made.append(Bookmark("Tracking issue", tracking_issue))
    runbooks: list[str] = []
    for alert in alerts:
        for link in alert.links:
            if link.text == "Runbook" and _linkable(link.href) and link.href not in runbooks:
                runbooks.append(link.href)
    for i, href in enumerate(runbooks[:MAX_RUNBOOKS]):
        made.append(Bookmark("Runbook" if i == 0 else f"Runbook {i + 1}", href))
    source = alerts_url if _linkable(alerts_url) else None
    if source is None:
        source = next(
            (
                link.href
                for alert in alerts
                for link in alert.links
                if link.text in ("Source", "PagerDuty") and _linkable(link.href)
            ),
            None,
        )
    if source:
        made.append(Bookmark("Alerts", source))
    return made
