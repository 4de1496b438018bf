"""The contract between the outbox worker and the adapters that carry out jobs.

An adapter runs one job and returns its result (message ts, issue URL), which is
stored with the job so later jobs can refer to it (an update needs the ts of the
message it edits). It never decides anything. It fails in one of two ways:

* ``RetryLater``: timeouts, connection errors, 5xx, 429 (with ``after`` taken from
  Retry-After), or a job it depends on has not run yet. The worker backs off.
* ``PermanentFailure``: any other 4xx, or an API error that no retry can fix
  (Slack ``channel_not_found``, GitHub 422). The worker dead-letters the job and
  surfaces it (metric, log, operator channel).

``classify_status`` is the one place HTTP status codes are sorted into these.

An attempt whose outcome was never recorded (the store failed after the call, the
process died during it) may have happened. Before such a job runs again the worker asks
the adapter's ``find``: the result of the earlier attempt, if the other side shows it
happened (a Slack message carrying the job's key in its metadata), or None, and the job
runs again. ``find`` returns None when running again cannot do it twice (a GitHub issue
is found by its marker before one is made, a PagerDuty event is deduplicated by its
dedup_key, a message edit carries the whole message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from router.core.jobs import JobKind, StoredJob

# The stored result of an earlier job, by its idempotency key (None: not done yet).
ResultLookup = Callable[[str], Awaitable[dict[str, Any] | None]]


class RetryLater(Exception):
    def __init__(
        self,
        reason: str,
        after: float | None = None,
        waiting: bool = False,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after  # seconds the other side asked us to wait, if it said
        # Waiting for another job to run first: not a failure, uses up no attempt.
        self.waiting = waiting
        # The call may have been carried out all the same (no answer came): the next
        # attempt looks first (``Adapter.find``).
        self.in_doubt = in_doubt


class PermanentFailure(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Adapter(Protocol):
    """Carries out the jobs of the kinds it lists."""

    kinds: frozenset[JobKind]
    system: str  # "slack", "github", "pagerduty": the metrics label

    async def run(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]: ...

    async def find(self, job: StoredJob, results: ResultLookup) -> dict[str, Any] | None:
        """The result of an earlier attempt of ``job`` that did happen, else None. Fails
        like ``run``; ``job.started_at`` bounds the search (it began no earlier)."""
        ...


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from these APIs; fall back to our backoff


def classify_status(status: int, what: str, retry_after: str | None = None) -> Exception | None:
    """None for success; otherwise the exception to raise for this status."""
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500 or status == 408:
        return RetryLater(f"{what}: HTTP {status}", parse_retry_after(retry_after))
    return PermanentFailure(f"{what}: HTTP {status}")


async def require_result(results: ResultLookup, key: str) -> dict[str, Any]:
    """The result of the job ``key``; retry later if it has not run yet."""
    result = await results(key)
    if result is None:
        raise RetryLater(f"waiting for job {key}", after=1.0, waiting=True)
    return result
