"""What the console's handlers share: its state behind one app key, and the page
helpers that render a template with what every page needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jinja2
from aiohttp import web

from router.adapters.web.access import AccessPolicy, Viewer
from router.adapters.web.config import ConsoleSecrets, WebConfig
from router.adapters.web.metrics import ConsoleMetrics
from router.adapters.web.proxy import ProxySignIn
from router.adapters.web.render import Stylesheet, render
from router.adapters.web.sessions import Session, Signer
from router.adapters.web.signin import SlackSignIn
from router.adapters.web.views import ConsoleSource
from router.app.clock import Clock


class PageError(Exception):
    """Answer with the error page: status, a title and what the person can do."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message


@dataclass
class Console:
    config: WebConfig
    source: ConsoleSource
    access: AccessPolicy
    secrets: ConsoleSecrets
    signer: Signer
    metrics: ConsoleMetrics
    clock: Clock
    templates: jinja2.Environment
    stylesheet: Stylesheet
    proxy: ProxySignIn | None
    slack_api_url: str
    slack: SlackSignIn | None = None  # made at start: it needs an HTTP client session
    http: aiohttp.ClientSession | None = None
    _children: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict)

    def page_metrics(self, page: str, status: int) -> tuple[Any, Any]:
        key = (page, str(status))
        if key not in self._children:
            self._children[key] = (
                self.metrics.requests.labels(page, str(status)),
                self.metrics.latency.labels(page),
            )
        return self._children[key]


CONSOLE = web.AppKey("console", Console)
SESSION = web.RequestKey("console_session", Session)  # the session of a signed-in request
NEW_COOKIE = web.RequestKey("console_new_cookie", str)  # a session cookie to set


def page_name(request: web.Request) -> str:
    # The route's name, never the path: numbers in paths must not make series.
    name = request.match_info.route.name
    return name if name is not None else "unmatched"


def context(request: web.Request, **values: Any) -> dict[str, Any]:
    """What every template gets: who is signed in, the CSRF token, address helpers."""
    console = request.app[CONSOLE]
    session: Session | None = request.get(SESSION)
    router = request.app.router

    def url(name: str, query: dict[str, Any] | None = None, **parts: Any) -> str:
        target = router[name].url_for(**{k: str(v) for k, v in parts.items()})
        if query:
            target = target.with_query({k: str(v) for k, v in query.items() if v not in (None, "")})
        return str(target)

    viewer: Viewer | None = session.viewer if session else None
    return {
        "viewer": viewer,
        "csrf": console.signer.csrf_token(session) if session else "",
        "url": url,
        "stylesheet": url("stylesheet", query={"v": console.stylesheet.version}),
        "now": console.clock.now(),
        "mode": console.config.auth.mode,
        "active": page_name(request),
        **values,
    }


def page(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    console = request.app[CONSOLE]
    body = render(console.templates, template, context(request, **values))
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return page(
        request, "error.html", status=status, status_code=status, title=title, message=message
    )
