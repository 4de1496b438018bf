"""GitHub jobs (tracking issue, timeline comments, state/labels) through PyGithub.

PyGithub is synchronous (requests/urllib3), so every call runs in a worker thread via
``asyncio.to_thread``, and the calls of one adapter run **one at a time**: PyGithub's
requester keeps a single persistent connection object whose ``request()`` stores the
verb, URL and body and whose ``getresponse()`` then sends them, so two threads using it
at once can send each other's requests.

The client is built with ``retry=None`` and no client-side throttling: retries are the
outbox's job, and PyGithub's default retry re-POSTs after a 5xx, which creates a
duplicate issue when GitHub had committed the first one. ``lazy=True``: comments and
updates go straight to ``/repos/{repo}/issues/{n}`` without fetching the issue first.

Idempotency. An issue carries its job's marker as an HTML comment, ``<!-- marker -->``.
Before creating one the adapter looks for an issue holding that exact comment: through
the search API, and also in the repository's 100 most recent issues, since search
indexing lags and does not index HTML comments everywhere (GitHub Enterprise); issues
are rare, so the extra call is cheap insurance against a duplicate.
A retried comment job first looks for its marker among the issue's comments.

Failures are sorted in one place, :func:`github_failure`:

* 401 -> ``PermanentFailure``; 404 (no such repo/issue, or no access) -> permanent;
  410 (issues disabled), 422 (validation), other 4xx -> permanent.
* 403/429 that are rate limits -> ``RetryLater(after=...)``: ``Retry-After`` if given,
  else until ``X-RateLimit-Reset`` + 1 s when the remaining count is 0, else 60 s
  (a secondary limit without Retry-After).
* 5xx, connection errors, timeouts -> ``RetryLater``.

Confidential by default: an issue is only created in a private repository unless
``allow_public_repo``. Reasons and log lines carry repository names, issue numbers,
job ids and status codes: never the token, a title or a body.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import requests
from github import Auth, Github
from github.GithubException import (
    BadCredentialsException,
    GithubException,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.Issue import Issue
from github.Repository import Repository

from router.app.effects import PermanentFailure, ResultLookup, RetryLater, require_result
from router.core.jobs import JobKind, StoredJob

log = logging.getLogger(__name__)

GITHUB_KINDS: frozenset[JobKind] = frozenset(
    {JobKind.GITHUB_ISSUE, JobKind.GITHUB_COMMENT, JobKind.GITHUB_UPDATE}
)
STATES = frozenset({"open", "closed"})
STATE_REASONS = frozenset({"completed", "not_planned"})
SECONDARY_LIMIT_WAIT = 60.0
# A marker goes inside an HTML comment and inside a quoted search phrase.
MARKER = re.compile(r"[^\s\"<>]{1,128}")

T = TypeVar("T")


def marker_comment(marker: str) -> str:
    return f"<!-- {marker} -->"


def with_marker(body: str, marker: str) -> str:
    """``body`` carrying ``<!-- marker -->`` (appended when it is not there yet)."""
    comment = marker_comment(marker)
    if comment in body:
        return body
    return f"{body}\n\n{comment}" if body else comment


def carries_marker(body: str | None, marker: str) -> bool:
    return body is not None and marker_comment(marker) in body


# ---------------------------------------------------------------- failure classification


def github_failure(what: str, exc: BaseException) -> RetryLater | PermanentFailure:
    """The one place a failed GitHub call becomes retry-later or permanent."""
    if isinstance(exc, GithubException):
        status = exc.status
        headers = exc.headers or {}
        if isinstance(exc, RateLimitExceededException) or (
            status in (403, 429) and _is_rate_limited(exc, headers)
        ):
            return RetryLater(f"{what}: rate limited (HTTP {status})", rate_limit_wait(headers))
        if isinstance(exc, BadCredentialsException) or status == 401:
            return PermanentFailure(f"{what}: HTTP 401 (bad credentials)")
        if isinstance(exc, UnknownObjectException) or status == 404:
            return PermanentFailure(f"{what}: HTTP 404 (not found, or the token has no access)")
        if status == 410:
            return PermanentFailure(f"{what}: HTTP 410 (issues are disabled in the repository)")
        if status == 422:
            return PermanentFailure(f"{what}: HTTP 422 (validation failed{_errors(exc.data)})")
        if status == 403:
            return PermanentFailure(
                f"{what}: HTTP 403 (forbidden: the token lacks permission or the repository"
                " is archived)"
            )
        if status >= 500 or status == 408:
            return RetryLater(f"{what}: HTTP {status}")
        return PermanentFailure(f"{what}: HTTP {status}")
    if isinstance(
        exc,
        requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError,
    ):
        return RetryLater(f"{what}: {type(exc).__name__}")
    return PermanentFailure(f"{what}: {type(exc).__name__}")


def rate_limit_wait(headers: Mapping[str, Any], now: float | None = None) -> float:
    """Seconds to wait after a rate-limit answer, as GitHub's docs ask."""
    retry_after = _header(headers, "retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass  # an HTTP date: GitHub sends seconds
    remaining, reset = (
        _header(headers, "x-ratelimit-remaining"),
        _header(headers, "x-ratelimit-reset"),
    )
    if remaining == "0" and reset is not None:
        try:
            until = float(reset) - (time.time() if now is None else now)
        except ValueError:
            return SECONDARY_LIMIT_WAIT
        return max(until, 0.0) + 1.0
    return SECONDARY_LIMIT_WAIT


def _is_rate_limited(exc: GithubException, headers: Mapping[str, Any]) -> bool:
    data = exc.data
    message = data.get("message") if isinstance(data, Mapping) else None
    text = message.lower() if isinstance(message, str) else ""
    return (
        exc.status == 429
        or "rate limit" in text
        or _header(headers, "x-ratelimit-remaining") == "0"
        or _header(headers, "retry-after") is not None
    )


def _errors(data: Any) -> str:
    """``: Issue.title missing_field`` out of a 422's ``errors`` (codes only, no values)."""
    errors = data.get("errors") if isinstance(data, Mapping) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for error in errors[:3]:
        if isinstance(error, Mapping):
            where = ".".join(str(error[k]) for k in ("resource", "field") if error.get(k))
            parts.append(" ".join(p for p in (where, str(error.get("code") or "")) if p))
    parts = [p for p in parts if p]
    return ": " + ", ".join(parts) if parts else ""


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


# ---------------------------------------------------------------- payload helpers


def _str(payload: Mapping[str, Any], name: str, what: str, *, empty: bool = False) -> str:
    value = payload.get(name)
    if isinstance(value, str) and (empty or value.strip()):
        return value
    raise PermanentFailure(f"{what} job: payload.{name} must be a non-empty string")


def _labels(payload: Mapping[str, Any], name: str, what: str) -> list[str] | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PermanentFailure(f"{what} job: payload.{name} must be a list of label names")
    return list(value)


def _marker(payload: Mapping[str, Any], what: str) -> str:
    marker = _str(payload, "marker", what)
    if not MARKER.fullmatch(marker) or "--" in marker:
        raise PermanentFailure(
            f"{what} job: payload.marker must be up to 128 characters without spaces,"
            ' quotes, "<", ">" or "--"'
        )
    return marker


def _issue_number(result: Mapping[str, Any], key: str) -> int:
    number = result.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise PermanentFailure(f"github job: the result of job {key} has no issue number")
    return number


class GitHubAdapter:
    """Carries out GitHub jobs against the REST API at ``api_url`` in one repository.

    ``repo`` is ``owner/name``. ``timeout`` is per request (PyGithub wants whole
    seconds, so it is rounded up).
    """

    kinds: frozenset[JobKind] = GITHUB_KINDS
    system = "github"

    def __init__(
        self,
        api_url: str,
        token: str,
        repo: str,
        *,
        allow_public_repo: bool = False,
        timeout: float = 15,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.repo_name = repo
        self.allow_public_repo = allow_public_repo
        self.timeout = timeout
        self._gh = Github(
            base_url=self.api_url,
            auth=Auth.Token(token),
            timeout=max(1, math.ceil(timeout)),
            retry=None,
            seconds_between_requests=None,
            seconds_between_writes=None,
            per_page=100,
            lazy=True,
        )
        self._repo: Repository | None = None
        self._queue = asyncio.Lock()  # one call in flight, waiting on the loop...
        self._thread_lock = threading.Lock()  # ...and in threads, should a wait be cancelled

    def __repr__(self) -> str:
        return f"GitHubAdapter(api_url={self.api_url!r}, repo={self.repo_name!r})"

    async def close(self) -> None:
        async with self._queue:
            await asyncio.to_thread(self._locked, self._gh.close)

    # ------------------------------------------------------------ running calls

    def _locked(self, fn: Callable[[], T]) -> T:
        with self._thread_lock:
            return fn()

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` (blocking PyGithub calls) in a thread; failures sorted."""
        async with self._queue:
            try:
                return await asyncio.to_thread(self._locked, fn)
            except (GithubException, requests.RequestException) as exc:
                raise github_failure(what, exc) from exc

    def _repository(self) -> Repository:
        # Lazy: no request until an attribute is read or a call is made through it.
        if self._repo is None:
            self._repo = self._gh.get_repo(self.repo_name)
        return self._repo

    def _is_private(self, *, refresh: bool) -> bool:
        """(In a thread) the repository's visibility: re-read, or as last read."""
        repo = self._repository()
        if refresh:
            repo.update()  # a conditional GET after the first: 304 (free) when unchanged
        return repo.private is True  # a lazy object completes itself on first read

    def _public_problem(self) -> str:
        return (
            f"github.repo {self.repo_name} is public: incident details are confidential;"
            " set github.allow_public_repo: true to allow it"
        )

    async def _require_confidential(self, *, refresh: bool) -> None:
        """Refuse a public repository unless allowed.

        ``refresh``: re-read its visibility now (before creating an issue); otherwise
        the last read is trusted when it says private and re-checked when it says public.
        """
        if self.allow_public_repo:
            return
        what = f"github get repo {self.repo_name}"
        private = await self._call(what, lambda: self._is_private(refresh=refresh))
        if not private and not refresh:
            private = await self._call(what, lambda: self._is_private(refresh=True))
        if not private:
            raise PermanentFailure(self._public_problem())

    # ------------------------------------------------------------ start-up check

    async def check_repository(self) -> str | None:
        """A problem with the configured repository, or None if issues can go there.

        Covers a public repository (unless allowed), a missing one or one the token
        cannot see, a rejected token, disabled issues and an archived repository. Failing
        to reach GitHub at all also comes back as a message ("could not be checked").
        """

        def read() -> tuple[bool, bool, bool]:
            private = self._is_private(refresh=True)
            repo = self._repository()
            return private, repo.has_issues, repo.archived

        try:
            private, has_issues, archived = await self._call(
                f"github get repo {self.repo_name}", read
            )
        except PermanentFailure as exc:
            if "HTTP 404" in exc.reason:
                return f"github.repo {self.repo_name} not found or no access"
            if "HTTP 401" in exc.reason:
                return "github token rejected (HTTP 401 bad credentials)"
            return f"github.repo {self.repo_name}: {exc.reason}"
        except RetryLater as exc:
            return f"github.repo {self.repo_name} could not be checked: {exc.reason}"
        if not private and not self.allow_public_repo:
            return self._public_problem()
        if not has_issues:
            return f"github.repo {self.repo_name} has issues disabled"
        if archived:
            return f"github.repo {self.repo_name} is archived (read-only)"
        return None

    # ------------------------------------------------------------ jobs

    async def run(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        if job.kind == JobKind.GITHUB_ISSUE:
            return await self._issue(job)
        if job.kind == JobKind.GITHUB_COMMENT:
            return await self._comment(job, results)
        if job.kind == JobKind.GITHUB_UPDATE:
            return await self._update(job, results)
        raise PermanentFailure(f"github adapter cannot run {job.kind} jobs")

    async def find(self, job: StoredJob, results: ResultLookup) -> dict[str, Any] | None:
        """None: ``run`` looks itself. An issue or a comment is searched by its marker
        before one is made, and labels and state are set, not added, so running a job
        that may have happened again does not do it twice."""
        return None

    async def _issue(self, job: StoredJob) -> dict[str, Any]:
        payload = job.payload
        title = _str(payload, "title", "github.issue")
        body = _str(payload, "body", "github.issue", empty=True)
        labels = _labels(payload, "labels", "github.issue") or []
        marker = _marker(payload, "github.issue")
        text = with_marker(body, marker)
        where = self.repo_name

        await self._require_confidential(refresh=True)
        found = await self._call(
            f"github search issues in {where}", lambda: self._search_marker(marker)
        )
        if found is None:
            # An earlier attempt, or another replica whose lease on this job ran out, may
            # have made the issue too recently for search: look at the newest ones too.
            found = await self._call(
                f"github list issues in {where}", lambda: self._recent_marked(marker)
            )
        if found is not None:
            log.info(
                "github: job %s found issue #%s in %s already made", job.id, found["number"], where
            )
            return found

        def create() -> dict[str, Any]:
            issue = self._repository().create_issue(title=title, body=text, labels=labels)
            return _issue_ref(issue)

        made = await self._call(f"github create issue in {where}", create)
        log.info("github: job %s created issue #%s in %s", job.id, made["number"], where)
        return made

    def _search_marker(self, marker: str) -> dict[str, Any] | None:
        query = f'"{marker}" repo:{self.repo_name} in:body'
        found = _find_marked(self._gh.search_issues(query).get_page(0), marker)
        return None if found is None else _issue_ref(found)

    def _recent_marked(self, marker: str) -> dict[str, Any] | None:
        # The most recently created issues: the first page only (up to 100).
        recent = self._repository().get_issues(state="all", sort="created", direction="desc")
        found = _find_marked(recent.get_page(0), marker)
        return None if found is None else _issue_ref(found)

    async def _target(self, job: StoredJob, results: ResultLookup, what: str) -> int:
        """The number of the issue made by job ``payload.issue``, in our repository."""
        key = _str(job.payload, "issue", what)
        result = await require_result(results, key)
        number = _issue_number(result, key)
        url = result.get("url")
        if isinstance(url, str) and not url.lower().endswith(
            f"/repos/{self.repo_name}/issues/{number}".lower()
        ):
            raise PermanentFailure(
                f"{what} job: issue #{number} of job {key} is not in {self.repo_name}"
            )
        return number

    def _issue_handle(self, number: int) -> Issue:
        # Lazy: no GET; reading an attribute the handle lacks (even ``number``) costs one.
        return self._repository().get_issue(number)

    async def _comment(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        body = _str(job.payload, "body", "github.comment")
        marker = _marker(job.payload, "github.comment")
        number = await self._target(job, results, "github.comment")
        await self._require_confidential(refresh=False)
        what = f"github comment on {self.repo_name}#{number}"
        retried = job.attempts > 1

        def post() -> tuple[dict[str, Any], bool]:
            issue = self._issue_handle(number)
            if retried:
                found = _find_marked(issue.get_comments(), marker)
                if found is not None:
                    return {"id": found.id, "html_url": found.html_url}, False
            comment = issue.create_comment(with_marker(body, marker))
            return {"id": comment.id, "html_url": comment.html_url}, True

        ref, made = await self._call(what, post)
        if not made:
            log.info(
                "github: job %s found comment %s on #%d already made", job.id, ref["id"], number
            )
        return ref

    async def _update(self, job: StoredJob, results: ResultLookup) -> dict[str, Any]:
        payload = job.payload
        state = payload.get("state")
        if state is not None and state not in STATES:
            raise PermanentFailure(
                f"github.update job: payload.state must be one of {sorted(STATES)}"
            )
        reason = payload.get("state_reason")
        if reason is not None and reason not in STATE_REASONS:
            raise PermanentFailure(
                f"github.update job: payload.state_reason must be one of {sorted(STATE_REASONS)}"
            )
        labels = _labels(payload, "labels", "github.update")
        add_labels = _labels(payload, "add_labels", "github.update")
        remove_labels = _labels(payload, "remove_labels", "github.update") or []
        edit: dict[str, Any] = {}
        if state is not None:
            edit["state"] = state
        if reason is not None:
            edit["state_reason"] = reason
        if labels is not None:
            edit["labels"] = labels
        read_only = bool(payload.get("read_state"))
        if not edit and not add_labels and not remove_labels and not read_only:
            raise PermanentFailure("github.update job: nothing to change")
        number = await self._target(job, results, "github.update")

        def apply() -> str:
            issue = self._issue_handle(number)
            if read_only and not edit and not add_labels:
                issue = self._repository().get_issue(number)  # a real GET: its state now
            if edit:
                issue.edit(**edit)
            for name in remove_labels:
                # Only ours goes; labels people added stay. Already gone is fine.
                if any(label.name.lower() == name.lower() for label in issue.labels):
                    issue.remove_from_labels(name)
            if add_labels:
                issue.add_to_labels(*add_labels)
            return issue.state  # known from the PATCH; one GET after labels alone

        state_now = await self._call(f"github update {self.repo_name}#{number}", apply)
        return {"state": state_now}


def _find_marked(items: Iterable[Any], marker: str) -> Any:
    """The earliest-made item (issue or comment) whose body carries ``marker``."""
    marked = [item for item in items if carries_marker(item.body, marker)]
    return min(marked, key=lambda item: item.id) if marked else None


def _issue_ref(issue: Issue) -> dict[str, Any]:
    return {"number": issue.number, "url": issue.url, "html_url": issue.html_url}
