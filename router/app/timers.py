"""A due timer, applied once: its step and its ``done`` in one transaction.

The page's acknowledgement timeout and the digest's (paging), and the incident's
reminders (``router.app.incidents``).
"""

from __future__ import annotations

from datetime import datetime

from router.app.incidents import fire_incident_timer
from router.app.outcomes import commit
from router.app.paging import view
from router.app.ports import Tx
from router.core import lifecycle
from router.core.jobs import AckTimeout, DigestTimeout, IncidentReminder, StoredJob, timer
from router.core.policy import Outcome, Policy


def fire_timer(tx: Tx, job: StoredJob, worker: str, now: datetime, policy: Policy) -> Outcome:
    """Apply a due timer and mark it done in the same transaction: it fires once."""
    if not tx.finish_job(job.id, worker, {}, now):
        return Outcome()  # our claim lapsed and another worker has it
    event = timer(job)
    if isinstance(event, IncidentReminder):
        return fire_incident_timer(tx, event, now, policy)
    if isinstance(event, DigestTimeout):
        digest = tx.digest(event.digest)
        if digest is None:
            return Outcome()
        waiting = tx.waiting_digest_lines(digest.key)
        outcome = lifecycle.digest_timeout(digest, event.level, waiting, now, policy)
        commit(tx, outcome, now, policy)
        return outcome
    if not isinstance(event, AckTimeout):
        return Outcome()
    page = tx.page(event.page)
    if page is None:
        return Outcome()
    outcome = lifecycle.ack_timeout(page, event.level, now, policy, view(tx, page, policy))
    commit(tx, outcome, now, policy)
    return outcome
