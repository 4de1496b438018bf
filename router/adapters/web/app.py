"""The console: an aiohttp sub-application, mounted at ``/ui/`` by the router's app.

    app.add_subapp("/ui/", create_console(config.web, source=..., ...))

Every request goes through one middleware, in this order: find the route's page name
(for metrics), sign the person in or send them to sign in, check the CSRF token of a
POST, run the handler, and answer any refusal or error with an HTML page. Responses
carry a strict Content-Security-Policy, are never cached (incident details are
confidential) and never send a Referer outside.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from router.adapters.web import auth, handlers
from router.adapters.web.access import AccessPolicy
from router.adapters.web.config import ConsoleSecrets, WebConfig
from router.adapters.web.context import (
    CONSOLE,
    NEW_COOKIE,
    SESSION,
    Console,
    PageError,
    error_page,
    page_name,
)
from router.adapters.web.directory import UserDirectory
from router.adapters.web.metrics import ConsoleMetrics
from router.adapters.web.proxy import ProxySignIn
from router.adapters.web.render import Stylesheet, environment
from router.adapters.web.sessions import Signer
from router.adapters.web.signin import SlackSignIn
from router.adapters.web.views import ConsoleSource
from router.app.clock import Clock

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Routes anyone may reach: signing in, and the stylesheet the sign-in page needs.
PUBLIC = frozenset({"sign_in", "sign_in_slack", "sign_in_callback", "stylesheet"})

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def create_console(
    config: WebConfig,
    *,
    source: ConsoleSource,
    access: AccessPolicy,
    secrets: ConsoleSecrets,
    metrics: ConsoleMetrics,
    clock: Clock,
    slack_api_url: str = "https://slack.com/api/",
    directory: UserDirectory | None = None,
) -> web.Application:
    """The console as a sub-application; mount it with ``add_subapp("/ui/", ...)``.

    ``directory`` maps proxy-vouched e-mails to Slack users (``SlackDirectory`` with the
    bot token); without it the proxy's user header (else the e-mail) is the person's id.
    """
    console = Console(
        config=config,
        source=source,
        access=access,
        secrets=secrets,
        signer=Signer(secrets.session_secret, clock),
        metrics=metrics,
        clock=clock,
        templates=environment(),
        stylesheet=Stylesheet(),
        proxy=ProxySignIn(config.auth, directory) if config.auth.mode == "proxy" else None,
        slack_api_url=slack_api_url,
    )
    app = web.Application(middlewares=[_console_middleware])
    app[CONSOLE] = console
    app.router.add_get("/", handlers.incidents, name="incidents")
    app.router.add_get("/incidents/{number:[0-9]{1,9}}", handlers.incident, name="incident")
    app.router.add_get("/pages", handlers.pages, name="pages")
    app.router.add_get("/quality", handlers.quality, name="quality")
    app.router.add_get("/sign-in", auth.sign_in_page, name="sign_in")
    app.router.add_get("/sign-in/slack", auth.sign_in_slack, name="sign_in_slack")
    app.router.add_get("/sign-in/slack/callback", auth.sign_in_callback, name="sign_in_callback")
    app.router.add_post("/sign-out", auth.sign_out, name="sign_out")
    app.router.add_get("/static/console.css", handlers.stylesheet, name="stylesheet")
    app.cleanup_ctx.append(_http_ctx)
    return app


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    console = app[CONSOLE]
    console.http = aiohttp.ClientSession()
    slack_config = console.config.auth.slack
    if console.config.auth.mode == "slack" and slack_config is not None:
        redirect = console.config.public_url or ""
        redirect += str(app.router["sign_in_callback"].url_for())
        console.slack = SlackSignIn(
            slack_config,
            console.secrets.slack_client_secret or "",
            api_url=console.slack_api_url,
            redirect_uri=redirect,
            clock=console.clock,
            http=console.http,
        )
    yield
    await console.http.close()


@web.middleware
async def _console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = request.app[CONSOLE]
    started = time.perf_counter()
    page = page_name(request)
    try:
        if page not in PUBLIC and page != "unmatched":
            session, cookie = await auth.authenticate(request, console)
            request[SESSION] = session
            if cookie is not None:
                request[NEW_COOKIE] = cookie
            if request.method == "POST":
                await auth.check_csrf(request, console, session)
        response = await handler(request)
    except auth.SignInNeeded as need:
        response = auth.to_sign_in(request, console, need)
    except PageError as err:
        response = error_page(request, err.status, err.title, err.message)
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect raised by aiohttp itself
            response = web.Response(status=exc.status, headers=exc.headers)
        else:
            message = _HTTP_MESSAGES.get(exc.status, "")
            response = error_page(request, exc.status, exc.reason, message)
    except Exception:
        # the route's name only: the path and the query may hold incident text
        log.exception("console: unhandled error on page %s", page)
        response = error_page(
            request, 500, "Something went wrong", "The router log has the details."
        )
    if (cookie := request.get(NEW_COOKIE)) is not None:
        auth.set_session_cookie(request, console, response, cookie)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    requests, latency = console.page_metrics(page, response.status)
    requests.inc()
    latency.observe(time.perf_counter() - started)
    return response


_HTTP_MESSAGES = {
    404: "There is nothing at this address.",
    405: "This address does not take that kind of request.",
}
