"""A loopback fake of the GitHub REST API subset the router uses through PyGithub.

Built to /work/shared/protocols.md sections 5 and 7::

    async with FakeGitHub(token="ghp_test", repos={"org/ops": {"private": True}}) as gh:
        client = Github(base_url=gh.base_url, auth=Auth.Token("ghp_test"), retry=None,
                        seconds_between_requests=None, seconds_between_writes=None)
        repo = await asyncio.to_thread(client.get_repo, "org/ops")

PyGithub is synchronous: call it through ``asyncio.to_thread`` because this fake
serves from the test's event loop (a blocking call on the loop would deadlock).

What it holds to:

- Auth is ``Authorization: token <tok>`` (what ``Auth.Token`` sends). A wrong token,
  or any other scheme, gives 401 ``Bad credentials``; no header gives 401
  ``Requires authentication``. (Real GitHub also takes ``Bearer``; pass
  ``accept_bearer=True`` to allow it.)
- Response bodies have GitHub's shapes, and every ``url``/``html_url``/
  ``comments_url``/Link header is built on this fake's own origin and prefix, so
  PyGithub's same-host/port/prefix assertion passes. ``prefix="/api/v3"`` mimics GHES.
- Every response carries ``x-ratelimit-limit/remaining/used/reset/resource``. The
  limits are enforced (``core_limit`` per hour, ``search_limit`` per minute): past
  them the answer is 403 ``API rate limit exceeded ...`` with remaining 0.
- Errors are ``{"message", "documentation_url", "status"}``; 404 for unknown repos,
  issues and routes (GitHub answers an unsupported verb with 404 too), 410 when
  issues are disabled, 403 on writes to an archived repo, 415 for a non-JSON body,
  400 ``Problems parsing JSON``, 422 ``Validation Failed`` with ``errors``.
- Without push access (``push=False`` on the repo) labels and assignees sent on
  create are silently dropped, as GitHub does.
- ``POST .../issues/{n}/labels`` adds labels from a JSON array of names or from
  ``{"labels": [...]}`` and answers the issue's labels, as GitHub does.
- ``/search/issues`` matches each free-text term (or ``"quoted phrase"``) as a
  case-insensitive substring of title + body (GitHub tokenises words; this is
  simpler) and understands ``repo:``, ``is:``/``type:``/``state:``, ``label:``,
  ``in:title|body``, ``author:``, ``assignee:``. ``search_delay`` seconds can hide
  fresh changes from search, like GitHub's indexing lag.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

__all__ = [
    "PRIMARY_RATE_LIMIT_MESSAGE",
    "SECONDARY_RATE_LIMIT_MESSAGE",
    "FakeGitHub",
    "GitHubCall",
    "GitHubFault",
]

DOCS = "https://docs.github.com/rest"
PRIMARY_RATE_LIMIT_MESSAGE = (
    "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, "
    "please include the request ID 0000:0000:0000000:0000000:00000000."
)
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID "
    "0000:0000:0000000:0000000:00000000."
)
_STATE_REASONS = ("completed", "not_planned", "duplicate", "reopened")
_QUALIFIERS = {"repo", "is", "type", "state", "label", "in", "author", "assignee"}
_SEARCH_TOKEN = re.compile(r'[A-Za-z]+:"[^"]*"|"[^"]*"|\S+')


@dataclass
class GitHubCall:
    """One request as the fake saw it; ``path`` is relative to the prefix."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int | None = None
    response: Any = None


@dataclass
class GitHubFault:
    """A failure queued by :meth:`FakeGitHub.fail_next`."""

    path_regex: re.Pattern[str]
    method: str | None
    status: int
    message: str
    remaining: int | None
    retry_after: int | None
    reset_in: int
    times: int
    commit: bool = False


@dataclass
class _Repo:
    owner: str
    name: str
    id: int
    private: bool = False
    has_issues: bool = True
    archived: bool = False
    push: bool = True
    description: str = ""
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # lower-cased name -> label state

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class _GhError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        body["documentation_url"] = DOCS
        body["status"] = str(self.status)
        return body


def _not_found() -> _GhError:
    return _GhError(404, "Not Found")


def _validation(resource: str, code: str, field_name: str, **extra: Any) -> _GhError:
    return _GhError(
        422,
        "Validation Failed",
        [{"resource": resource, "code": code, "field": field_name, **extra}],
    )


@dataclass
class _Request:
    method: str
    query: dict[str, str]
    body: Any


class _RateWindow:
    def __init__(self, limit: int, period: int) -> None:
        self.limit = limit
        self.period = period
        self.used = 0
        self.reset = int(time.time()) + period

    def roll(self) -> None:
        now = int(time.time())
        if now >= self.reset:
            self.used = 0
            self.reset = now + self.period

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


class FakeGitHub(LoopbackServer):
    """GitHub REST on 127.0.0.1 with a random port.

    Args:
        token: the only token accepted (sent as ``Authorization: token <tok>``).
        repos: ``{"owner/name": {"private": bool, "has_issues": bool, "archived": bool,
            "push": bool, "description": str}}`` or an iterable of ``"owner/name"``.
        prefix: ``""`` (github.com style) or e.g. ``"/api/v3"`` (GitHub Enterprise).
        login: the authenticated user's login, used as issue/comment author.
        assignable: logins that may be assigned; ``None`` accepts anyone.
        core_limit, search_limit: primary rate limits (per hour / per minute).
        search_delay: seconds before a created/changed issue shows up in search.
        accept_bearer: also accept ``Authorization: Bearer <tok>``.
    """

    def __init__(
        self,
        token: str = "ghp_test",
        *,
        repos: Mapping[str, Mapping[str, Any]] | Iterable[str] = ("org/ops",),
        prefix: str = "",
        login: str = "router-bot",
        assignable: Iterable[str] | None = None,
        core_limit: int = 5000,
        search_limit: int = 30,
        search_delay: float = 0.0,
        accept_bearer: bool = False,
    ) -> None:
        super().__init__()
        self.token = token
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.login = login
        self.assignable: set[str] | None = None if assignable is None else set(assignable)
        self.search_delay = search_delay
        self.accept_bearer = accept_bearer
        self.calls: list[GitHubCall] = []

        self._repos: dict[str, _Repo] = {}
        self._faults: list[GitHubFault] = []
        self._rate = {
            "core": _RateWindow(core_limit, 3600),
            "search": _RateWindow(search_limit, 60),
        }
        self._ids = {
            "repo": 500_000_000,
            "issue": 1_000_000_000,
            "comment": 2_000_000_000,
            "label": 3_000_000_000,
        }
        self._request_seq = 0

        items: Iterable[tuple[str, Mapping[str, Any]]] = (
            repos.items() if isinstance(repos, Mapping) else ((name, {}) for name in repos)
        )
        for full_name, options in items:
            self.add_repo(full_name, **dict(options))

    # ------------------------------------------------------------------ lifecycle

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    @property
    def base_url(self) -> str:
        """API root for ``Github(base_url=...)``, without a trailing slash."""
        return self.origin + self.prefix

    # ------------------------------------------------------------------ configuration helpers

    def add_repo(
        self,
        full_name: str,
        *,
        private: bool = False,
        has_issues: bool = True,
        archived: bool = False,
        push: bool = True,
        description: str = "",
    ) -> None:
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"repo must be 'owner/name', got {full_name!r}")
        self._ids["repo"] += 1
        self._repos[full_name.lower()] = _Repo(
            owner=owner,
            name=name,
            id=self._ids["repo"],
            private=private,
            has_issues=has_issues,
            archived=archived,
            push=push,
            description=description,
        )

    def fail_next(
        self,
        path_regex: str,
        status: int = 403,
        message: str | None = None,
        remaining: int | None = None,
        times: int = 1,
        *,
        method: str | None = None,
        retry_after: int | None = None,
        reset_in: int = 60,
        commit: bool = False,
    ) -> None:
        """Make the next ``times`` requests whose path (relative to the prefix, e.g.
        ``/repos/org/ops/issues``) matches ``path_regex`` (``re.search``) fail.

        403/429 default to the primary rate-limit message with ``x-ratelimit-remaining:
        0`` and ``x-ratelimit-reset`` ``reset_in`` seconds ahead; use
        :data:`SECONDARY_RATE_LIMIT_MESSAGE` and/or ``retry_after`` for a secondary
        limit. Other statuses (500, 502, 503...) answer ``{"message": <reason>}``.
        ``method`` restricts the fault to one HTTP verb. ``commit=True`` carries the
        request out first and then answers the failure, like a server that timed out after
        doing the work: with PyGithub's default retry (which retries POST) that makes a
        duplicate issue.
        """
        if message is None:
            message = (
                PRIMARY_RATE_LIMIT_MESSAGE if status in (403, 429) else HTTPStatus(status).phrase
            )
        if remaining is None and status in (403, 429):
            remaining = 0
        self._faults.append(
            GitHubFault(
                path_regex=re.compile(path_regex),
                method=method.upper() if method else None,
                status=status,
                message=message,
                remaining=remaining,
                retry_after=retry_after,
                reset_in=reset_in,
                times=times,
                commit=commit,
            )
        )

    # ------------------------------------------------------------------ inspection helpers

    def issues(self, repo: str) -> list[dict[str, Any]]:
        """Issues of ``repo`` as GitHub would render them, by number."""
        r = self._repo_or_raise(repo)
        return [self._render_issue(r, r.issues[n]) for n in sorted(r.issues)]

    def issue(self, repo: str, number: int) -> dict[str, Any]:
        r = self._repo_or_raise(repo)
        return self._render_issue(r, r.issues[number])

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        r = self._repo_or_raise(repo)
        return [self._render_comment(r, number, c) for c in r.comments.get(number, [])]

    def labels(self, repo: str) -> list[dict[str, Any]]:
        r = self._repo_or_raise(repo)
        return [self._render_label(r, label) for label in r.labels.values()]

    def calls_to(self, method: str, path_regex: str) -> list[GitHubCall]:
        pattern = re.compile(path_regex)
        return [c for c in self.calls if c.method == method.upper() and pattern.search(c.path)]

    def summary(self) -> str:
        lines = [f"calls ({len(self.calls)}):"]
        for c in self.calls:
            body = "" if c.json is None else " " + _short(c.json)
            lines.append(f"  {c.method} {c.path}{body} -> {c.status}")
        for r in self._repos.values():
            lines.append(f"issues in {r.full_name} ({len(r.issues)}):")
            for n in sorted(r.issues):
                issue = r.issues[n]
                labels = ",".join(issue["labels"])
                lines.append(
                    f"  #{n} [{issue['state']}] {_short(issue['title'], 80)} labels={labels}"
                )
        return "\n".join(lines)

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle(self, request: web.Request) -> web.Response:
        raw_path = request.rel_url.raw_path
        path = raw_path[len(self.prefix) :] if raw_path.startswith(self.prefix + "/") else None
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        call = GitHubCall(
            method=request.method,
            path=path if path is not None else raw_path,
            query=dict(request.query.items()),
            json=body,
            headers=dict(request.headers),
        )
        self.calls.append(call)

        resource = "search" if path is not None and path.startswith("/search/") else "core"
        window = self._rate[resource]
        window.roll()
        headers: dict[str, str] = {}
        try:
            self._authenticate(request.headers.get("Authorization"))
            if path != "/rate_limit":
                if window.remaining <= 0:
                    raise _GhError(403, PRIMARY_RATE_LIMIT_MESSAGE)
                window.used += 1
            fault = self._take_fault(request.method, call.path)
            if fault is not None:
                if fault.commit and path is not None:
                    with contextlib.suppress(_GhError):
                        self._route(request, path, raw, body)
                if fault.remaining is not None:
                    headers["x-ratelimit-remaining"] = str(fault.remaining)
                    headers["x-ratelimit-used"] = str(max(window.limit - fault.remaining, 0))
                if fault.status in (403, 429):
                    headers["x-ratelimit-reset"] = str(int(time.time()) + fault.reset_in)
                if fault.retry_after is not None:
                    headers["retry-after"] = str(fault.retry_after)
                raise _GhError(fault.status, fault.message, headers=headers)
            if path is None:
                raise _not_found()
            status, payload, extra = self._route(request, path, raw, body)
        except _GhError as e:
            status, payload, extra = e.status, e.body(), e.headers
        headers = {**self._rate_headers(window, resource), **extra}
        call.status = status
        call.response = payload
        return web.json_response(payload, status=status, headers=headers)

    def _authenticate(self, header: str | None) -> None:
        if not header:
            raise _GhError(401, "Requires authentication")
        scheme, _, value = header.partition(" ")
        schemes = ("token", "bearer") if self.accept_bearer else ("token",)
        if scheme.lower() not in schemes or value.strip() != self.token:
            raise _GhError(401, "Bad credentials")

    def _rate_headers(self, window: _RateWindow, resource: str) -> dict[str, str]:
        self._request_seq += 1
        return {
            "x-ratelimit-limit": str(window.limit),
            "x-ratelimit-remaining": str(window.remaining),
            "x-ratelimit-used": str(window.used),
            "x-ratelimit-reset": str(window.reset),
            "x-ratelimit-resource": resource,
            "x-github-api-version-selected": "2022-11-28",
            "x-github-request-id": f"FAKE:{self._request_seq:08X}",
        }

    def _take_fault(self, method: str, path: str) -> GitHubFault | None:
        for fault in self._faults:
            if (fault.method is None or fault.method == method) and fault.path_regex.search(path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _route(
        self, request: web.Request, path: str, raw: bytes, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        method = request.method
        for verb, pattern, handler in self._routes():
            m = pattern.fullmatch(path)
            if m is None or verb != method:
                continue
            if method in ("POST", "PATCH", "PUT"):
                if raw and request.content_type != "application/json":
                    raise _GhError(415, "Unsupported 'Content-Type' header")
                # A few endpoints (adding labels) also take a bare JSON array.
                takes_array = handler == self._add_labels and isinstance(body, list)
                if not isinstance(body, dict) and not takes_array:
                    raise _GhError(400, "Problems parsing JSON")
            req = _Request(method=method, query=dict(request.query.items()), body=body)
            groups = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
            return handler(req, **groups)
        raise _not_found()

    def _routes(
        self,
    ) -> list[tuple[str, re.Pattern[str], Callable[..., tuple[int, Any, dict[str, str]]]]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        table: list[tuple[str, str, Callable[..., tuple[int, Any, dict[str, str]]]]] = [
            ("GET", r"/user", self._get_user),
            ("GET", r"/rate_limit", self._get_rate_limit),
            ("GET", r"/search/issues", self._search_issues),
            ("GET", repo, self._get_repo),
            ("GET", repo + r"/issues", self._list_issues),
            ("POST", repo + r"/issues", self._create_issue),
            ("GET", repo + r"/issues/comments/(?P<comment_id>\d+)", self._get_comment),
            ("GET", repo + r"/issues/(?P<number>\d+)", self._get_issue),
            ("PATCH", repo + r"/issues/(?P<number>\d+)", self._edit_issue),
            ("GET", repo + r"/issues/(?P<number>\d+)/comments", self._list_comments),
            ("POST", repo + r"/issues/(?P<number>\d+)/comments", self._create_comment),
            ("POST", repo + r"/issues/(?P<number>\d+)/labels", self._add_labels),
            (
                "DELETE",
                repo + r"/issues/(?P<number>\d+)/labels/(?P<name>[^/]+)",
                self._remove_label,
            ),
            ("GET", repo + r"/labels", self._list_labels),
            ("POST", repo + r"/labels", self._create_label),
            ("GET", repo + r"/labels/(?P<name>[^/]+)", self._get_label),
        ]
        return [(verb, re.compile(pattern), handler) for verb, pattern, handler in table]

    # ------------------------------------------------------------------ endpoints

    def _get_user(self, req: _Request) -> tuple[int, Any, dict[str, str]]:
        return 200, self._render_user(self.login), {}

    def _get_rate_limit(self, req: _Request) -> tuple[int, Any, dict[str, str]]:
        resources = {
            name: {
                "limit": w.limit,
                "remaining": w.remaining,
                "used": w.used,
                "reset": w.reset,
                "resource": name,
            }
            for name, w in self._rate.items()
        }
        return 200, {"resources": resources, "rate": resources["core"]}, {}

    def _get_repo(self, req: _Request, owner: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        return 200, self._render_repo(self._find_repo(owner, repo)), {}

    def _list_issues(self, req: _Request, owner: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        r = self._issues_repo(owner, repo)
        state = req.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _validation("Issue", "invalid", "state")
        wanted = {x.strip().lower() for x in req.query.get("labels", "").split(",") if x.strip()}
        selected = []
        for issue in r.issues.values():
            if state != "all" and issue["state"] != state:
                continue
            if not wanted <= {name.lower() for name in issue["labels"]}:
                continue
            if "creator" in req.query and issue["user"] != req.query["creator"]:
                continue
            if "assignee" in req.query and req.query["assignee"] not in issue["assignees"]:
                continue
            selected.append(issue)
        selected.sort(key=lambda i: i["id"], reverse=req.query.get("direction", "desc") != "asc")
        page, links = self._paginate(req, selected, f"{self._repo_api(r)}/issues")
        return 200, [self._render_issue(r, i) for i in page], links

    def _create_issue(
        self, req: _Request, owner: str, repo: str
    ) -> tuple[int, Any, dict[str, str]]:
        r = self._issues_repo(owner, repo)
        self._check_writable(r)
        body = req.body
        title = body.get("title")
        if title is None or (isinstance(title, str) and not title.strip()):
            raise _validation("Issue", "missing_field", "title")
        if not isinstance(title, (str, int)):
            raise _validation("Issue", "invalid", "title")
        text = body.get("body")
        if text is not None and not isinstance(text, str):
            raise _validation("Issue", "invalid", "body")
        labels = self._label_names(body.get("labels"))
        assignees = self._assignees(body)
        if not r.push:
            labels, assignees = [], []  # GitHub drops them silently without push access
        for name in labels:
            self._ensure_label(r, name)
        now = _now()
        self._ids["issue"] += 1
        number = max(r.issues, default=0) + 1
        issue = {
            "id": self._ids["issue"],
            "number": number,
            "title": str(title),
            "body": text,
            "state": "open",
            "state_reason": None,
            "labels": [r.labels[n.lower()]["name"] for n in labels],
            "assignees": assignees,
            "user": self.login,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "closed_by": None,
            "locked": False,
            "indexed_at": time.monotonic() + self.search_delay,
        }
        r.issues[number] = issue
        r.comments[number] = []
        rendered = self._render_issue(r, issue)
        return 201, rendered, {"Location": rendered["url"]}

    def _get_issue(
        self, req: _Request, owner: str, repo: str, number: str
    ) -> tuple[int, Any, dict[str, str]]:
        r = self._issues_repo(owner, repo)
        return 200, self._render_issue(r, self._find_issue(r, number)), {}

    def _edit_issue(
        self, req: _Request, owner: str, repo: str, number: str
    ) -> tuple[int, Any, dict[str, str]]:
        r = self._issues_repo(owner, repo)
        self._check_writable(r)
        issue = self._find_issue(r, number)
        body = req.body
        if "title" in body:
            if not isinstance(body["title"], str) or not body["title"].strip():
                raise _validation(
                    "Issue", "missing_field" if not body["title"] else "invalid", "title"
                )
            issue["title"] = body["title"]
        if "body" in body:
            if body["body"] is not None and not isinstance(body["body"], str):
                raise _validation("Issue", "invalid", "body")
            issue["body"] = body["body"]
        if "state_reason" in body and body["state_reason"] not in (*_STATE_REASONS, None):
            raise _validation("Issue", "invalid", "state_reason", value=body["state_reason"])
        if "state" in body:
            state = body["state"]
            if state not in ("open", "closed"):
                raise _validation("Issue", "invalid", "state", value=state)
            if state == "closed":
                if issue["state"] != "closed":
                    issue["closed_at"] = _now()
                    issue["closed_by"] = self.login
                issue["state"] = "closed"
                issue["state_reason"] = body.get("state_reason") or "completed"
            elif issue["state"] == "closed":
                issue.update(state="open", state_reason="reopened", closed_at=None, closed_by=None)
        elif "state_reason" in body and issue["state"] == "closed":
            issue["state_reason"] = body["state_reason"] or "completed"
        if r.push:
            if "labels" in body:
                names = self._label_names(body["labels"])
                for name in names:
                    self._ensure_label(r, name)
                issue["labels"] = [r.labels[n.lower()]["name"] for n in names]
            if "assignees" in body or "assignee" in body:
                issue["assignees"] = self._assignees(body)
        issue["updated_at"] = _now()
        issue["indexed_at"] = time.monotonic() + self.search_delay
        return 200, self._render_issue(r, issue), {}

    def _list_comments(
        self, req: _Request, owner: str, repo: str, number: str
    ) -> tuple[int, Any, dict[str, str]]:
        r = self._issues_repo(owner, repo)
        issue = self._find_issue(r, number)
        items = r.comments[issue["number"]]
        page, links = self._paginate(
            req, items, f"{self._repo_api(r)}/issues/{issue['number']}/comments"
        )
        return 200, [self._render_comment(r, issue["number"], c) for c in page], links

    def _create_comment(
        self, req: _Request, owner: str, repo: str, number: str
    ) -> tuple[int, Any, dict[str, str]]:
        r = self._issues_repo(owner, repo)
        self._check_writable(r)
        issue = self._find_issue(r, number)
        text = req.body.get("body")
        if not isinstance(text, str) or not text:
            raise _validation("IssueComment", "missing_field", "body")
        now = _now()
        self._ids["comment"] += 1
        comment = {
            "id": self._ids["comment"],
            "body": text,
            "user": self.login,
            "created_at": now,
            "updated_at": now,
        }
        r.comments[issue["number"]].append(comment)
        issue["updated_at"] = now
        rendered = self._render_comment(r, issue["number"], comment)
        return 201, rendered, {"Location": rendered["url"]}

    def _add_labels(
        self, req: _Request, owner: str, repo: str, number: str
    ) -> tuple[int, Any, dict[str, str]]:
        """``POST /repos/{o}/{r}/issues/{n}/labels``: add to the issue's labels.

        The body is a JSON array of names (what PyGithub's ``add_to_labels`` sends) or
        ``{"labels": [...]}`` (names or ``{"name": ...}`` objects), as GitHub accepts.
        Unknown labels are created. The answer is every label the issue now has.
        """
        r = self._issues_repo(owner, repo)
        self._check_writable(r)
        issue = self._find_issue(r, number)
        body = req.body
        names = self._label_names(body.get("labels") if isinstance(body, dict) else body)
        if isinstance(body, dict) and "labels" not in body:
            raise _validation("Issue", "missing_field", "labels")
        if r.push:  # without push access GitHub drops labels silently, as on create
            have = {name.lower() for name in issue["labels"]}
            for name in names:
                label = self._ensure_label(r, name)
                if name.lower() not in have:
                    issue["labels"].append(label["name"])
                    have.add(name.lower())
            issue["updated_at"] = _now()
            issue["indexed_at"] = time.monotonic() + self.search_delay
        return 200, [self._render_label(r, r.labels[n.lower()]) for n in issue["labels"]], {}

    def _remove_label(
        self, req: _Request, owner: str, repo: str, number: str, name: str
    ) -> tuple[int, Any, dict[str, str]]:
        """``DELETE /repos/{o}/{r}/issues/{n}/labels/{name}``: 404 if the issue lacks it;
        else the labels it keeps, as GitHub answers."""
        r = self._issues_repo(owner, repo)
        self._check_writable(r)
        issue = self._find_issue(r, number)
        kept = [label for label in issue["labels"] if label.lower() != name.lower()]
        if len(kept) == len(issue["labels"]):
            raise _not_found()
        issue["labels"] = kept
        issue["updated_at"] = _now()
        return 200, [self._render_label(r, r.labels[n.lower()]) for n in kept], {}

    def _get_comment(
        self, req: _Request, owner: str, repo: str, comment_id: str
    ) -> tuple[int, Any, dict[str, str]]:
        r = self._issues_repo(owner, repo)
        for number, comments in r.comments.items():
            for c in comments:
                if c["id"] == int(comment_id):
                    return 200, self._render_comment(r, number, c), {}
        raise _not_found()

    def _list_labels(self, req: _Request, owner: str, repo: str) -> tuple[int, Any, dict[str, str]]:
        r = self._find_repo(owner, repo)
        items = list(r.labels.values())
        page, links = self._paginate(req, items, f"{self._repo_api(r)}/labels")
        return 200, [self._render_label(r, label) for label in page], links

    def _create_label(
        self, req: _Request, owner: str, repo: str
    ) -> tuple[int, Any, dict[str, str]]:
        r = self._find_repo(owner, repo)
        self._check_writable(r)
        name = req.body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _validation("Label", "missing_field", "name")
        if name.lower() in r.labels:
            raise _validation("Label", "already_exists", "name")
        color = str(req.body.get("color") or "ededed").lstrip("#")
        if not re.fullmatch(r"[0-9a-fA-F]{6}", color):
            raise _validation("Label", "invalid", "color")
        label = self._ensure_label(r, name, color=color, description=req.body.get("description"))
        rendered = self._render_label(r, label)
        return 201, rendered, {"Location": rendered["url"]}

    def _get_label(
        self, req: _Request, owner: str, repo: str, name: str
    ) -> tuple[int, Any, dict[str, str]]:
        r = self._find_repo(owner, repo)
        label = r.labels.get(name.lower())
        if label is None:
            raise _not_found()
        return 200, self._render_label(r, label), {}

    def _search_issues(self, req: _Request) -> tuple[int, Any, dict[str, str]]:
        q = req.query.get("q", "").strip()
        if not q:
            raise _validation("Search", "missing", "q")
        quals: dict[str, list[str]] = {}
        terms: list[str] = []
        for token in _SEARCH_TOKEN.findall(q):
            key, sep, value = token.partition(":")
            if sep and key.lower() in _QUALIFIERS and not token.startswith('"'):
                quals.setdefault(key.lower(), []).append(value.strip('"').lower())
            else:
                terms.append(token.strip('"').lower())
        if any(v in ("pr", "pull-request") for k in ("is", "type") for v in quals.get(k, [])):
            candidates: list[tuple[_Repo, dict[str, Any]]] = []  # the fake has no pull requests
        else:
            candidates = [(r, i) for r in self._repos.values() for i in r.issues.values()]
        repos = set(quals.get("repo", []))
        states = {v for k in ("is", "state") for v in quals.get(k, []) if v in ("open", "closed")}
        where = set(quals.get("in", [])) or {"title", "body"}
        now = time.monotonic()
        hits = []
        for r, issue in candidates:
            if now < issue["indexed_at"]:
                continue
            if repos and r.full_name.lower() not in repos:
                continue
            if states and issue["state"] not in states:
                continue
            if not all(
                lab in {n.lower() for n in issue["labels"]} for lab in quals.get("label", [])
            ):
                continue
            if any(issue["user"].lower() != a for a in quals.get("author", [])):
                continue
            if any(
                a not in {x.lower() for x in issue["assignees"]} for a in quals.get("assignee", [])
            ):
                continue
            haystack = "\n".join(
                [
                    issue["title"] if "title" in where else "",
                    (issue["body"] or "") if "body" in where else "",
                ]
            ).lower()
            if all(term in haystack for term in terms):
                hits.append((r, issue))
        hits.sort(key=lambda hit: hit[1]["id"], reverse=True)
        page, links = self._paginate(req, hits, f"{self.base_url}/search/issues")
        items = []
        for r, issue in page:
            item = self._render_issue(r, issue)
            item.pop("closed_by", None)
            item["score"] = 1.0
            items.append(item)
        return 200, {"total_count": len(hits), "incomplete_results": False, "items": items}, links

    # ------------------------------------------------------------------ helpers

    def _repo_or_raise(self, full_name: str) -> _Repo:
        r = self._repos.get(full_name.lower())
        if r is None:
            raise KeyError(f"FakeGitHub has no repo {full_name!r}; known: {sorted(self._repos)}")
        return r

    def _find_repo(self, owner: str, repo: str) -> _Repo:
        r = self._repos.get(f"{owner}/{repo}".lower())
        if r is None:
            raise _not_found()
        return r

    def _issues_repo(self, owner: str, repo: str) -> _Repo:
        r = self._find_repo(owner, repo)
        if not r.has_issues:
            raise _GhError(410, "Issues are disabled for this repo")
        return r

    def _find_issue(self, r: _Repo, number: str | int) -> dict[str, Any]:
        issue = r.issues.get(int(number))
        if issue is None:
            raise _not_found()
        return issue

    @staticmethod
    def _check_writable(r: _Repo) -> None:
        if r.archived:
            raise _GhError(403, "Repository was archived so is read-only.")

    def _label_names(self, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _validation("Issue", "invalid", "labels")
        names: list[str] = []
        for item in value:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip():
                raise _validation("Label", "invalid", "name")
            if name.lower() not in {n.lower() for n in names}:
                names.append(name)
        return names

    def _assignees(self, body: dict[str, Any]) -> list[str]:
        value = body.get("assignees")
        if value is None and body.get("assignee"):
            value = [body["assignee"]]
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _validation("Issue", "invalid", "assignees")
        for login in value:
            if self.assignable is not None and login not in self.assignable:
                raise _validation("Issue", "invalid", "assignees", value=login)
        return list(dict.fromkeys(value))

    def _ensure_label(
        self, r: _Repo, name: str, *, color: str = "ededed", description: str | None = None
    ) -> dict[str, Any]:
        key = name.lower()
        if key not in r.labels:
            self._ids["label"] += 1
            r.labels[key] = {
                "id": self._ids["label"],
                "name": name,
                "color": color,
                "description": description,
            }
        return r.labels[key]

    def _paginate(
        self, req: _Request, items: list[Any], url: str
    ) -> tuple[list[Any], dict[str, str]]:
        try:
            per_page = min(max(int(req.query.get("per_page", 30)), 1), 100)
            page = max(int(req.query.get("page", 1)), 1)
        except ValueError:
            raise _GhError(400, "Invalid pagination parameters") from None
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        base_params = {k: v for k, v in req.query.items() if k not in ("page", "per_page")}

        def link(n: int, rel: str) -> str:
            params = urllib.parse.urlencode({**base_params, "per_page": per_page, "page": n})
            return f'<{url}?{params}>; rel="{rel}"'

        rels = []
        if page > 1:
            rels += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            rels += [link(page + 1, "next"), link(last, "last")]
        return chunk, ({"Link": ", ".join(rels)} if rels else {})

    # ------------------------------------------------------------------ rendering

    def _repo_api(self, r: _Repo) -> str:
        return f"{self.base_url}/repos/{r.owner}/{r.name}"

    def _render_user(self, login: str) -> dict[str, Any]:
        uid = int(hashlib.sha1(login.encode()).hexdigest()[:7], 16)
        api = f"{self.base_url}/users/{urllib.parse.quote(login)}"
        return {
            "login": login,
            "id": uid,
            "node_id": _node_id("U_kgDO", uid),
            "avatar_url": f"{self.origin}/avatars/u/{uid}",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{self.origin}/{urllib.parse.quote(login)}",
            "repos_url": f"{api}/repos",
            "type": "User",
            "site_admin": False,
        }

    def _render_repo(self, r: _Repo) -> dict[str, Any]:
        api = self._repo_api(r)
        html = f"{self.origin}/{r.owner}/{r.name}"
        open_issues = sum(1 for i in r.issues.values() if i["state"] == "open")
        owner = self._render_user(r.owner)
        owner["type"] = "Organization"
        return {
            "id": r.id,
            "node_id": _node_id("R_kgDO", r.id),
            "name": r.name,
            "full_name": r.full_name,
            "private": r.private,
            "visibility": "private" if r.private else "public",
            "owner": owner,
            "html_url": html,
            "description": r.description,
            "fork": False,
            "url": api,
            "issues_url": f"{api}/issues{{/number}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "clone_url": f"{html}.git",
            "default_branch": "main",
            "has_issues": r.has_issues,
            "archived": r.archived,
            "disabled": False,
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "pushed_at": "2024-01-01T00:00:00Z",
            "permissions": {
                "admin": False,
                "maintain": False,
                "push": r.push,
                "triage": r.push,
                "pull": True,
            },
        }

    def _render_label(self, r: _Repo, label: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": label["id"],
            "node_id": _node_id("LA_kwDO", label["id"]),
            "url": f"{self._repo_api(r)}/labels/{urllib.parse.quote(label['name'], safe='')}",
            "name": label["name"],
            "color": label["color"],
            "default": False,
            "description": label["description"],
        }

    def _render_issue(self, r: _Repo, issue: dict[str, Any]) -> dict[str, Any]:
        api = f"{self._repo_api(r)}/issues/{issue['number']}"
        assignees = [self._render_user(login) for login in issue["assignees"]]
        return {
            "url": api,
            "repository_url": self._repo_api(r),
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "timeline_url": f"{api}/timeline",
            "html_url": f"{self.origin}/{r.owner}/{r.name}/issues/{issue['number']}",
            "id": issue["id"],
            "node_id": _node_id("I_kwDO", issue["id"]),
            "number": issue["number"],
            "title": issue["title"],
            "user": self._render_user(issue["user"]),
            "labels": [self._render_label(r, r.labels[name.lower()]) for name in issue["labels"]],
            "state": issue["state"],
            "state_reason": issue["state_reason"],
            "locked": issue["locked"],
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "comments": len(r.comments.get(issue["number"], [])),
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": issue["closed_at"],
            "closed_by": self._render_user(issue["closed_by"]) if issue["closed_by"] else None,
            "author_association": "MEMBER",
            "active_lock_reason": None,
            "body": issue["body"],
        }

    def _render_comment(self, r: _Repo, number: int, comment: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{self._repo_api(r)}/issues/comments/{comment['id']}",
            "html_url": (
                f"{self.origin}/{r.owner}/{r.name}/issues/{number}#issuecomment-{comment['id']}"
            ),
            "issue_url": f"{self._repo_api(r)}/issues/{number}",
            "id": comment["id"],
            "node_id": _node_id("IC_kwDO", comment["id"]),
            "user": self._render_user(comment["user"]),
            "created_at": comment["created_at"],
            "updated_at": comment["updated_at"],
            "author_association": "MEMBER",
            "body": comment["body"],
        }


# ---------------------------------------------------------------------- module helpers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node_id(prefix: str, number: int) -> str:
    return prefix + base64.urlsafe_b64encode(number.to_bytes(8, "big")).decode().rstrip("=")


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
