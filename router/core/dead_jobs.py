"""Who hears about a job that failed for good (design rule 7: never silent).

A pure step: the outbox worker dead-letters the job, then enqueues what this returns
in the same transaction. The incident's commander hears about a GitHub, Google (the
collaborative doc) or Statuspage failure in the incident's thread (the record in Slack
stays complete); the operator channel hears about every dead job, except a notice
about a dead job (no loop of notices).
"""

from __future__ import annotations

from router.core import keys
from router.core.jobs import Job, JobKind, SlackPost

# What an incident's dead job of these systems failed to do, as its commander reads it.
_SYSTEMS = {
    "github": "update GitHub",
    "google": "make or share the collaborative doc",
    "statuspage": "publish on the status page (nothing new is public)",
}


def notices(
    kind: JobKind, key: str, job_id: int, reason: str, operator_channel: str | None
) -> list[Job]:
    found: list[Job] = []
    incident = keys.incident_of(key)
    system = _SYSTEMS.get(kind.value.partition(".")[0])
    if incident is not None and system is not None:
        found.append(
            SlackPost(
                channel=None,
                thread_of=keys.announcement(incident),
                text=f":warning: Could not {system} ({kind.value}): {reason}."
                " The operator was told; the record here is complete.",
            ).job(keys.dead_in_thread(key))
        )
    if operator_channel and not keys.is_dead_notice(key):
        found.append(
            SlackPost(
                channel=operator_channel,
                text=f":warning: A {kind.value} job failed for good and needs a "
                f"person: {reason} (job {job_id}, key `{key}`).",
            ).job(keys.dead_notice(key))
        )
    return found
