"""The jobs that give an incident its own Slack channel, and keep that channel in step.

``incident.channel.mode: channel`` (the default). On declaration, in this order:

1. ``slack.channel``: ``conversations.create`` with the name from the template
   (``router.core.channel_names``; Slack's ``name_taken`` gets ``-2``, ``-3``, ...), private
   unless configured otherwise. Its result (the channel id) is written back to the
   incident (``on_result: incident_channel``), so ``/incident`` typed in the channel finds
   it without INC-n.
2. ``slack.invite``: the commander, whoever declared, the people paged for it and the
   configured responders; later the comms lead, a person offered the handoff, and
   ``/incident invite <@user>``.
3. ``slack.topic``: severity, commander, status (``incident_channel.topic``), again
   whenever one of them changes (``sync_topic``).
4. ``slack.bookmark``: the runbooks and alerts now, the tracking issue once it exists.
5. The summary with the controls (the announcement job: everything that threads under
   "the announcement" threads under it), posted in the channel.
6. The declaration in #incident-response (id, title, commander, severity; for a
   confidential incident no title), linking the channel once it exists.

On close, ``slack.archive`` after ``archive_after_days`` (a timer; 0: never). Pure: no
I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from router.core import incident_channel, keys
from router.core.channel_names import channel_name
from router.core.incident import Incident
from router.core.jobs import (
    IncidentReminder,
    Job,
    SlackArchive,
    SlackBookmark,
    SlackChannel,
    SlackInvite,
    SlackPost,
    SlackTopic,
    SlackUpdate,
)
from router.core.page import PageAlerts

# What the declaration links until the channel exists (replaced by the outbox with the
# channel job's result: ``replace_from``).
CHANNEL_PLACEHOLDER = "{channel}"
ON_RESULT = "incident_channel"


class ChannelConfig(Protocol):
    """What these steps read of ``incident.channel`` (``policy_config.ChannelConfig``)."""

    @property
    def name_template(self) -> str: ...
    @property
    def private(self) -> bool: ...
    @property
    def responders(self) -> Sequence[str]: ...
    @property
    def archive_after_days(self) -> int: ...


def channel_key(number: int) -> str:
    return keys.incident_channel(number)


def declaration_key(number: int) -> str:
    return keys.declaration(number)


def where(incident: Incident) -> dict[str, Any]:
    """Where the incident's own posts go (``SlackPost`` fields): its channel, or the
    announcement's thread."""
    if incident.channel_job is not None:
        return {"channel": None, "channel_of": incident.channel_job}
    return {"channel": None, "thread_of": incident.announce_job}


def open_channel(
    incident: Incident,
    config: ChannelConfig,
    alerts: PageAlerts,
    invitees: Iterable[str],
) -> list[Job]:
    """The channel, its people, topic and bookmarks (the summary and the declaration
    are the caller's: they are the announcement). Sets ``incident.channel_job`` and
    ``incident.topic`` in place."""
    key = channel_key(incident.number)
    incident.channel_job = key
    name = channel_name(
        config.name_template,
        number=incident.number,
        title=incident.title,
        severity=incident.severity,
        declared_at=incident.declared_at,
        confidential=incident.confidential,
    )
    made = SlackChannel(
        name=name, private=config.private, incident=incident.number, on_result=ON_RESULT
    )
    jobs = [made.job(key)]
    people = [incident.commander, incident.declared_by, *invitees, *config.responders]
    jobs += invite(incident, people, "declared")
    jobs += sync_topic(incident)
    shown = [*alerts.shown, *([alerts.worst] if alerts.worst else [])]
    for i, mark in enumerate(incident_channel.bookmarks(tracking_issue=None, alerts=shown)):
        bookmark = SlackBookmark(channel_of=key, title=mark.title, link=mark.link)
        jobs.append(bookmark.job(keys.channel_bookmark(key, i)))
    return jobs


def invite(incident: Incident, users: Iterable[str], why: str) -> list[Job]:
    """Invite ``users`` (each once; Slack says who is in already) to the channel."""
    if incident.channel_job is None:
        return []
    wanted = [u for u in dict.fromkeys(users) if u and u != "router"]
    if not wanted:
        return []
    key = keys.incident_step(incident.number, f"invite:{why}", incident.version)
    return [SlackInvite(channel_of=incident.channel_job, users=wanted).job(key)]


def sync_topic(incident: Incident) -> list[Job]:
    """A topic job when severity, commander or status changed what the topic says.
    Sets ``incident.topic`` in place."""
    if incident.channel_job is None:
        return []
    # A topic is seen where the channel is listed: a confidential one's carries no title.
    text = incident_channel.topic(incident, show_title=not incident.confidential)
    if text == incident.topic:
        return []
    incident.topic = text
    key = keys.incident_step(incident.number, "topic", incident.version)
    return [SlackTopic(channel_of=incident.channel_job, topic=text).job(key)]


def tracking_bookmark(incident: Incident, issue_job: str, title: str) -> list[Job]:
    """Bookmark an issue (tracking, post-mortem) in the channel once it exists."""
    if incident.channel_job is None:
        return []
    mark = SlackBookmark(
        channel_of=incident.channel_job, title=title, link="{html_url}", fill_from=issue_job
    )
    return [mark.job(keys.derived(issue_job, "bookmark"))]


def declaration(incident: Incident, incident_response: str) -> Job:
    """The declaration in #incident-response, linking the channel once it exists."""
    text, blocks = incident_channel.declaration(
        incident, channel_id=CHANNEL_PLACEHOLDER, confidential=incident.confidential
    )
    # Should the channel never be made (a missing scope), this is posted instead.
    plain, plain_blocks = incident_channel.declaration(
        incident, channel_id=None, confidential=incident.confidential
    )
    return SlackPost(
        channel=incident_response,
        text=text,
        blocks=blocks,
        replace_from=incident.channel_job,
        unlinked={"text": plain, "blocks": plain_blocks},
    ).job(declaration_key(incident.number))


def declaration_update(incident: Incident) -> Job:
    """The declaration again, after severity or commander changed."""
    text, blocks = incident_channel.declaration(
        incident, channel_id=CHANNEL_PLACEHOLDER, confidential=incident.confidential
    )
    plain, plain_blocks = incident_channel.declaration(
        incident, channel_id=None, confidential=incident.confidential
    )
    key = declaration_key(incident.number)
    return SlackUpdate(
        target=key,
        seq=incident.version,
        text=text,
        blocks=blocks,
        replace_from=incident.channel_job,
        unlinked={"text": plain, "blocks": plain_blocks},
    ).job(keys.edit(key, incident.version))


def archive_timer(incident: Incident, config: ChannelConfig, closed_at: datetime) -> list[Job]:
    """Archive the channel ``archive_after_days`` after close (0: never)."""
    if incident.channel_job is None or config.archive_after_days <= 0:
        return []
    due = closed_at + timedelta(days=config.archive_after_days)
    reminder = IncidentReminder.due(incident.number, "archive")
    return [reminder.job(keys.incident_timer(incident.number, "archive", due), due_at=due)]


def archive(incident: Incident) -> list[Job]:
    if incident.channel_job is None:
        return []
    key = keys.incident_job(incident.number, "archive")
    return [SlackArchive(channel_of=incident.channel_job).job(key)]
