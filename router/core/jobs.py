"""Jobs: side effects the lifecycle asks for, run later by the outbox worker.

The lifecycle never calls Slack or GitHub; it returns ``Job`` values, which the store
commits in the same transaction as the state change (transactional outbox). Each job
has an idempotency key so a replayed webhook or a racing replica cannot enqueue the
same side effect twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobKind(StrEnum):
    SLACK_DM = "slack.dm"  # open a DM with payload.user, post text/blocks -> {channel, ts}
    SLACK_POST = "slack.post"  # post to payload.channel, or in the thread of payload.thread_of
    SLACK_UPDATE = "slack.update"  # chat.update the message made by the job payload.target
    SLACK_RESPOND = "slack.respond"  # POST payload.body to an interaction's response_url
    PAGERDUTY_EVENT = "pagerduty.event"  # Events API v2 trigger/acknowledge/resolve
    GITHUB_ISSUE = "github.issue"  # find-or-create an issue carrying payload.marker
    GITHUB_COMMENT = "github.comment"  # comment on the issue made by job payload.issue
    GITHUB_UPDATE = "github.update"  # labels/state of the issue made by job payload.issue
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
