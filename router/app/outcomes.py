"""Write what a step of the lifecycle returned, inside the unit's transaction.

Every use case (``paging``, ``incidents``, ``timers``) loads state, asks the pure
core for a step, and hands the ``Outcome`` here: state, jobs, cancellations,
timeline, and the digest parts to render again.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from router.app.ports import Tx
from router.core import lifecycle
from router.core.digest import DigestLine, part_of
from router.core.policy import Outcome, Policy

DigestParts = set[tuple[str, int]]  # (digest key, part) whose lines changed


def persist(tx: Tx, outcome: Outcome, now: datetime, policy: Policy) -> DigestParts:
    """Write what a step returned. Returns the digest parts whose lines changed:
    ``refresh_digests`` renders them once, after every step of the unit."""
    changed: DigestParts = set()
    if outcome.retire is not None:
        tx.save_page(outcome.retire)
    page = outcome.page
    if page is not None:
        if outcome.new_page:
            tx.insert_page(page)
        else:
            tx.save_page(page)
    if outcome.digest is not None:
        tx.save_digest(outcome.digest)
    if page is not None and page.digest_key is not None and page.digest_position is not None:
        tx.save_digest_line(page.digest_key, DigestLine.of(page))
        changed.add((page.digest_key, part_of(page.digest_position)))
        if outcome.new_page:
            changed.add((page.digest_key, 0))  # the first part counts the digest's pages
    incident = outcome.incident
    if incident is not None:
        if outcome.new_incident:
            tx.insert_incident(incident)
        else:
            tx.save_incident(incident)
    # Cancel before enqueueing: a timer re-armed in this step must survive.
    if outcome.cancel:
        tx.cancel_jobs(outcome.cancel, now)
    if outcome.cancel_prefixes:
        tx.cancel_jobs(outcome.cancel_prefixes, now, prefix=True)
    if outcome.jobs:
        tx.enqueue(outcome.jobs, now, policy.paging.edit_interval_seconds)
    if outcome.timeline:
        number = incident.number if incident else page.incident_number if page else None
        tx.append_timeline(outcome.timeline, page.key if page else None, number)
    return changed


def refresh_digests(tx: Tx, changed: DigestParts, now: datetime, policy: Policy) -> None:
    """Render each changed digest part once, from its own lines (at most a part's
    worth), and queue its DM or its (coalesced) edit."""
    parts: dict[str, set[int]] = defaultdict(set)
    for key, part in changed:
        parts[key].add(part)
    for key, wanted in parts.items():
        digest = tx.digest(key)
        if digest is None:
            continue
        lines = {part: tx.digest_lines(key, part) for part in wanted}
        posted = {p: ls for p, ls in lines.items() if ls}
        digest, jobs = lifecycle.digest_parts(digest, posted, policy.console_url)
        tx.save_digest(digest)
        tx.enqueue(jobs, now, policy.paging.edit_interval_seconds)


def commit(tx: Tx, outcome: Outcome, now: datetime, policy: Policy) -> None:
    """``persist`` and ``refresh_digests`` for a unit of one step."""
    refresh_digests(tx, persist(tx, outcome, now, policy), now, policy)
