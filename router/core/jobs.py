"""Jobs: side effects the lifecycle asks for, run later by the outbox worker.

The lifecycle never calls Slack or GitHub; it returns ``Job`` values, which the store
commits in the same transaction as the state change (transactional outbox). Each job
has an idempotency key so a replayed webhook or a racing replica cannot enqueue the
same side effect twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.core.severity import Severity


class JobKind(StrEnum):
    SLACK_DM = "slack.dm"  # open a DM with payload.user, post text/blocks -> {channel, ts}
    SLACK_POST = "slack.post"  # post to payload.channel, or in the thread of payload.thread_of
    SLACK_UPDATE = "slack.update"  # chat.update the message made by the job payload.target
    SLACK_RESPOND = "slack.respond"  # POST payload.body to an interaction's response_url
    # An incident's own channel (payload.channel_of: the key of the job that made it).
    SLACK_CHANNEL = "slack.channel"  # conversations.create payload.name -> {channel, name}
    SLACK_INVITE = "slack.invite"  # conversations.invite payload.users -> who, who not
    SLACK_TOPIC = "slack.topic"  # conversations.setTopic payload.topic
    SLACK_BOOKMARK = "slack.bookmark"  # bookmarks.add payload.title, payload.link (once)
    SLACK_ARCHIVE = "slack.archive"  # conversations.archive
    PAGERDUTY_EVENT = "pagerduty.event"  # Events API v2 trigger/acknowledge/resolve
    GITHUB_ISSUE = "github.issue"  # find-or-create an issue carrying payload.marker
    GITHUB_COMMENT = "github.comment"  # comment on the issue made by job payload.issue
    GITHUB_UPDATE = "github.update"  # labels/state of the issue made by job payload.issue
    GOOGLE_DOC = "google.doc"  # find-or-copy the incident's doc, fill, share (DocJob)
    STATUSPAGE_NOTICE = "statuspage.notice"  # a confirmed public notice (NoticeJob)
    TIMER = "timer"  # a lifecycle event (payload.event) to apply when due


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"  # permanent failure, surfaced to the operator
    CANCELLED = "cancelled"  # e.g. an ack timer after the decision


class Job(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: JobKind
    key: str = Field(description="idempotency key: unique across all jobs")
    payload: dict[str, Any] = Field(default_factory=dict)
    due_at: datetime | None = None  # None: as soon as possible


class StoredJob(BaseModel):
    """A job as the outbox worker sees it after claiming."""

    id: int
    kind: JobKind
    key: str
    payload: dict[str, Any]
    due_at: datetime
    attempts: int
    status: JobStatus
    last_error: str | None = None
    # Set when an earlier attempt called the adapter and recorded no outcome: the side
    # effect may have happened, so the adapter looks before doing it again.
    started_at: datetime | None = None


# -- typed payloads ---------------------------------------------------------------------
#
# Each kind's payload is a model: where a job is made, mypy checks its fields; where it
# is run, ``Model.of(job)`` reads it back. The stored JSON is what the fields were given
# (``exclude_unset``), the same keys and values as the dicts of earlier versions, so jobs
# stored by them run after an upgrade and the other way round during a rolling one.
# Reading is tolerant: keys a model does not know are kept (extra="allow").

Blocks = list[dict[str, Any]]


class PayloadError(ValueError):
    """A stored job's payload is not what its kind needs: it can never run."""


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    KIND: ClassVar[JobKind]

    def job(self, key: str, due_at: datetime | None = None) -> Job:
        payload = self.model_dump(exclude_unset=True)
        return Job(kind=self.KIND, key=key, payload=payload, due_at=due_at)

    @classmethod
    def of(cls, job: Job | StoredJob) -> Self:
        if job.kind is not cls.KIND:
            raise PayloadError(f"a {job.kind.value} job is not {cls.KIND.value}")
        try:
            return cls.model_validate(job.payload)
        except ValidationError as exc:
            error = exc.errors()[0]
            if error["type"] == "missing":  # as reading the dict would: the worker retries
                raise KeyError(".".join(str(part) for part in error["loc"])) from None
            raise PayloadError(f"{job.kind.value} job: {error['msg']}") from exc


class SlackDm(Payload):
    KIND = JobKind.SLACK_DM
    user: str
    role: str | None = None  # eng-primary, ...; digest, handoff, reminder are not pages
    text: str = ""
    blocks: Blocks | None = None
    after: str | None = None  # key of a DM that must be posted first (digest parts)


class SlackPost(Payload):
    KIND = JobKind.SLACK_POST
    channel: str | None = None
    thread_of: str | None = None  # key of the job that posted the thread's parent
    channel_of: str | None = None  # key of the job that made the incident channel it goes to
    text: str = ""
    blocks: Blocks | None = None
    fill_from: str | None = None  # key of a job whose result fills {fields} of text
    # key of a job whose result replaces {fields} in text and blocks (people's words
    # may hold braces); ``unlinked`` is posted instead should that job be dead
    replace_from: str | None = None
    unlinked: dict[str, Any] | None = None


class SlackUpdate(Payload):
    KIND = JobKind.SLACK_UPDATE
    target: str  # key of the job that posted the message
    seq: int | None = None  # the version it shows: an older one never lands after
    text: str = ""
    blocks: Blocks | None = None
    replace_from: str | None = None  # as SlackPost's
    unlinked: dict[str, Any] | None = None


# An incident's own channel: the first job makes it, the others act on it (``channel_of``:
# the key of that first job, whose result holds the channel's id).


class SlackChannel(Payload):
    KIND = JobKind.SLACK_CHANNEL
    name: str  # from the name template; name_taken tries -2, -3, ...
    private: bool = True
    incident: int
    on_result: Literal["incident_channel"] = "incident_channel"  # its id goes to the incident


class SlackInvite(Payload):
    KIND = JobKind.SLACK_INVITE
    channel_of: str
    users: list[str]


class SlackTopic(Payload):
    KIND = JobKind.SLACK_TOPIC
    channel_of: str
    topic: str


class SlackBookmark(Payload):
    KIND = JobKind.SLACK_BOOKMARK
    channel_of: str
    title: str
    link: str  # may be "{html_url}" with fill_from: an issue's link once it exists
    fill_from: str | None = None


class SlackArchive(Payload):
    KIND = JobKind.SLACK_ARCHIVE
    channel_of: str


class SlackRespond(Payload):
    KIND = JobKind.SLACK_RESPOND
    response_url: str
    body: dict[str, Any]


class PagerDutyEvent(Payload):
    KIND = JobKind.PAGERDUTY_EVENT
    event_action: str  # trigger, acknowledge, resolve
    dedup_key: str
    payload: dict[str, Any] | None = None  # the trigger's summary, source, severity


class GitHubIssue(Payload):
    KIND = JobKind.GITHUB_ISSUE
    title: str
    body: str
    labels: list[str] = Field(default_factory=list)
    marker: str  # found by it before one is made


class GitHubComment(Payload):
    KIND = JobKind.GITHUB_COMMENT
    issue: str  # key of the job that made the issue
    body: str
    marker: str | None = None


class GitHubUpdate(Payload):
    KIND = JobKind.GITHUB_UPDATE
    issue: str  # key of the job that made the issue
    add_labels: list[str] | None = None
    remove_labels: list[str] | None = None
    state: str | None = None
    state_reason: str | None = None
    read_state: bool | None = None  # only read the issue's state (returned as the result)
    on_result: Literal["postmortem_state"] | None = None  # what the result is applied to
    incident: int | None = None


class Timer(Payload):
    KIND = JobKind.TIMER
    event: str

    def job(self, key: str, due_at: datetime | None = None) -> Job:
        payload = {"event": self.event} | self.model_dump(exclude_unset=True)
        return Job(kind=self.KIND, key=key, payload=payload, due_at=due_at)


class AckTimeout(Timer):
    event: Literal["ack_timeout"] = "ack_timeout"
    page: str
    level: int


class DigestTimeout(Timer):
    event: Literal["digest_timeout"] = "digest_timeout"
    digest: str
    level: int


class IncidentReminder(Timer):
    """``event`` is ``incident_<what>``: a reminder of ``router.core.duties``."""

    incident: int

    @classmethod
    def due(cls, number: int, what: str) -> IncidentReminder:
        return cls(event=f"incident_{what}", incident=number)

    @property
    def what(self) -> str:
        return self.event.removeprefix("incident_")


def timer(job: Job | StoredJob) -> AckTimeout | DigestTimeout | IncidentReminder | None:
    """A timer job's event, or None for an event this version does not know. A known
    event without its fields raises (``Payload.of``): the worker retries and says why."""
    event = str(job.payload.get("event", ""))
    model: type[AckTimeout | DigestTimeout | IncidentReminder]
    if event == "ack_timeout":
        model = AckTimeout
    elif event == "digest_timeout":
        model = DigestTimeout
    elif event.startswith("incident_"):
        model = IncidentReminder
    else:
        return None
    return model.of(job)


# The payload model of each kind (a timer's event says which ``Timer`` it is: ``timer``).
class DocLink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    url: str


class DocJob(Payload):
    """The incident's collaborative doc: find or copy, fill, share (router.core.
    collaborative_doc makes it, router.adapters.google.docs runs it)."""

    KIND = JobKind.GOOGLE_DOC
    incident: str  # the incident id ("INC-42"): the copy's appProperties marker
    title: str
    commander: str  # as it should read in the doc (a name or a Slack id)
    severity: str
    clause: str  # the policy clause the severity matched
    links: tuple[DocLink, ...] = ()
    responders: tuple[str, ...] = ()  # Slack user ids to share the doc with
    # A confidential incident's doc goes to its responders only, whatever
    # incident.doc.share_with_link says.
    confidential: bool = False
    # The incident's first doc job, when this one only shares it with a new responder:
    # it runs after that one, so the two can never both copy the template.
    after: str | None = None


PublicStatus = Literal["investigating", "identified", "monitoring", "resolved"]
PUBLIC_NOTICE_MAX = 25_000  # Statuspage's limit on an update's body


class NoticeJob(Payload):
    """A public notice the commander confirmed (router.core.public_notice makes it,
    router.adapters.statuspage.notice publishes it)."""

    KIND = JobKind.STATUSPAGE_NOTICE
    incident: str  # the router's incident id ("INC-42"): the Statuspage incident's marker
    name: str = Field(max_length=255)  # the public incident name
    body: str = Field(max_length=PUBLIC_NOTICE_MAX)  # the public update
    status: PublicStatus
    severity: Severity  # the configured components take the status mapped from it
    # The key of the job that published the incident's first notice; None: this is it.
    first: str | None = None
    # The notice confirmed just before this one: it is published first, so the page
    # never ends on an older text after a retry.
    previous: str | None = None


PAYLOADS: dict[JobKind, type[Payload]] = {
    model.KIND: model
    for model in (SlackDm, SlackPost, SlackUpdate, SlackRespond, PagerDutyEvent, GitHubIssue,
                  GitHubComment, GitHubUpdate, Timer, DocJob, NoticeJob, SlackChannel,
                  SlackInvite, SlackTopic, SlackBookmark, SlackArchive)
}  # fmt: skip
