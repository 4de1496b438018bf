"""Signing in and out of the console, sessions and CSRF.

Nothing under the console is shown without sign-in. A browser (``Accept: text/html``)
that is not signed in is sent to the sign-in page with where it was going; anything
else gets a 401 page with no data on it.

Sessions are signed cookies (:mod:`router.adapters.web.sessions`): HttpOnly,
SameSite=Lax, Secure when ``web.public_url`` is https, Path the console's prefix, and
an expiry (``web.auth.session_hours``) inside the signed part. In proxy mode the proxy
is asked on every request (its headers, from a trusted address) and the cookie only
saves the Slack look-up and carries the CSRF token; a request around the proxy gets
nothing, cookie or not.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web
from yarl import URL

from router.adapters.web import context as ctx
from router.adapters.web.access import Viewer
from router.adapters.web.context import Console
from router.adapters.web.proxy import Claim, ProxyRefused
from router.adapters.web.sessions import SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_LIFETIME, Session
from router.adapters.web.signin import SignInRefused

log = logging.getLogger(__name__)

# What the sign-in page says for each reason a sign-in did not go through.
REFUSALS = {
    "access_denied": "You did not allow the sign-in in Slack.",
    "state_mismatch": "The sign-in expired or was started in another window. Try again.",
    "invalid_code": "Slack did not accept the sign-in code (it may have been used). Try again.",
    "wrong_workspace": "You signed in to another Slack workspace than the one this router serves.",
    "slack_unreachable": "Slack could not be reached. Try again in a moment.",
    "keys_unavailable": "Slack's signing keys could not be fetched. Try again in a moment.",
}
_DEFAULT_REFUSAL = "Slack's answer could not be verified, so you are not signed in."


class SignInNeeded(Exception):
    """No (valid) session: the person must sign in first."""

    def __init__(self, status: int = 401, reason: str = "", message: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.message = message


async def authenticate(request: web.Request, console: Console) -> tuple[Session, str | None]:
    """The request's session, and a new session cookie to set if one was made."""
    session = console.signer.session(request.cookies.get(SESSION_COOKIE))
    if console.proxy is None:
        if session is None:
            raise SignInNeeded()
        return session, None
    claim = console.proxy.claim(request)
    if claim is None:
        raise SignInNeeded()
    if session is not None and _same_person(session, claim, console):
        return session, None
    try:
        viewer = await console.proxy.viewer(claim)
    except ProxyRefused as refused:
        console.metrics.sign_ins.labels("proxy", refused.reason).inc()
        log.warning("console: sign-in through the proxy refused: %s", refused.reason)
        if refused.status == 503:
            raise ctx.PageError(503, "Try again in a moment", refused.message) from None
        raise ctx.PageError(refused.status, "Not signed in", refused.message) from None
    cookie, session = console.signer.new_session(viewer, _lifetime(console))
    console.metrics.sign_ins.labels("proxy", "ok").inc()
    log.info("console: %s signed in through the proxy", _loggable(viewer))
    return session, cookie


def _same_person(session: Session, claim: Claim, console: Console) -> bool:
    """Whether the proxy still vouches for the person the session was made for."""
    if session.viewer.email != claim.email:
        return False
    if console.proxy is not None and console.proxy.directory is None:
        return session.viewer.user == (claim.user or claim.email)
    return claim.email is not None


def _loggable(viewer: Viewer) -> str:
    # a Slack user id is an id; an e-mail (no directory to map it) is personal data
    return "a person known by e-mail" if "@" in viewer.user else viewer.user


def _lifetime(console: Console) -> timedelta:
    return timedelta(hours=console.config.auth.session_hours)


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def to_sign_in(request: web.Request, console: Console, need: SignInNeeded) -> web.StreamResponse:
    if _wants_html(request) and request.method == "GET":
        target = _sign_in_url(request, next_path=str(request.rel_url))
        response: web.StreamResponse = redirect(target)
    else:
        response = ctx.error_page(
            request, 401, "Sign in first", "This page is only shown to people signed in."
        )
    if request.cookies.get(SESSION_COOKIE):
        # altered or expired: take it away so the browser stops sending it
        response.del_cookie(SESSION_COOKIE, path=_prefix(request))
    return response


def redirect(location: str, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def _prefix(request: web.Request) -> str:
    return str(request.app.router["incidents"].url_for())


def _sign_in_url(request: web.Request, next_path: str | None = None) -> str:
    target = request.app.router["sign_in"].url_for()
    if next_path and next_path != _prefix(request):
        target = target.with_query(next=next_path)
    return str(target)


def safe_next(request: web.Request, value: str | None) -> str:
    """A path inside the console to go to after signing in; anything else goes home."""
    prefix = _prefix(request)
    if not value:
        return prefix
    target = URL(value)
    if target.is_absolute() or value.startswith("//") or "\\" in value:
        return prefix
    if not target.path.startswith(prefix) or ".." in target.path.split("/"):
        return prefix
    return value


def set_session_cookie(
    request: web.Request, console: Console, response: web.StreamResponse, value: str
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        path=_prefix(request),
        max_age=int(_lifetime(console).total_seconds()),
        httponly=True,
        secure=console.config.secure_cookies,
        samesite="Lax",
    )


async def check_csrf(request: web.Request, console: Console, session: Session) -> None:
    """A POST must carry the session's CSRF token, and come from our own origin."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != _own_origin(request, console):
        raise ctx.PageError(
            403, "Refused", "This form was sent from another site, so it was not accepted."
        )
    form = await request.post()
    token = form.get("csrf")
    if not console.signer.csrf_ok(session, token if isinstance(token, str) else None):
        raise ctx.PageError(
            403, "Refused", "This form has expired. Reload the page and send it again."
        )


def _own_origin(request: web.Request, console: Console) -> str:
    if console.config.public_url:
        url = URL(console.config.public_url)
        return str(url.origin())
    return f"{request.scheme}://{request.host}"


# ------------------------------------------------------------------------ handlers


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    console = request.app[ctx.CONSOLE]
    next_path = safe_next(request, request.query.get("next"))
    if console.signer.session(request.cookies.get(SESSION_COOKIE)) and console.proxy is None:
        return redirect(next_path)
    return _sign_in(request, next_path)


def _sign_in(
    request: web.Request, next_path: str, status: int = 200, problem: str | None = None
) -> web.Response:
    console = request.app[ctx.CONSOLE]
    slack_url = str(request.app.router["sign_in_slack"].url_for())
    if next_path != _prefix(request):
        slack_url = str(URL(slack_url).with_query(next=next_path))
    return ctx.page(
        request,
        "sign_in.html",
        status=status,
        problem=problem,
        slack_url=slack_url,
        public_url=console.config.public_url,
    )


async def sign_in_slack(request: web.Request) -> web.StreamResponse:
    """Off to Slack to consent, with a fresh state and nonce kept in a signed cookie."""
    console = request.app[ctx.CONSOLE]
    if console.slack is None:
        raise web.HTTPNotFound()
    cookie, state = console.signer.new_sign_in(safe_next(request, request.query.get("next")))
    response = redirect(console.slack.authorize_url(state.state, state.nonce))
    response.set_cookie(
        SIGN_IN_COOKIE,
        cookie,
        path=str(request.app.router["sign_in_callback"].url_for()),
        max_age=int(SIGN_IN_LIFETIME.total_seconds()),
        httponly=True,
        secure=console.config.secure_cookies,
        samesite="Lax",  # sent on Slack's redirect back, a top-level GET
    )
    return response


async def sign_in_callback(request: web.Request) -> web.StreamResponse:
    console = request.app[ctx.CONSOLE]
    if console.slack is None:
        raise web.HTTPNotFound()
    pending = console.signer.sign_in(request.cookies.get(SIGN_IN_COOKIE))
    home = _prefix(request)
    try:
        if request.query.get("error"):
            raise SignInRefused("access_denied")
        code = request.query.get("code")
        if pending is None or not code or request.query.get("state") != pending.state:
            raise SignInRefused("state_mismatch")
        identity = await console.slack.identify(code, pending.nonce)
    except SignInRefused as refused:
        console.metrics.sign_ins.labels("slack", refused.reason).inc()
        log.warning("console: Sign in with Slack refused: %s", refused.reason)
        message = REFUSALS.get(refused.reason, _DEFAULT_REFUSAL)
        response = _sign_in(request, pending.next if pending else home, 401, message)
        response.del_cookie(SIGN_IN_COOKIE, path=str(request.rel_url.path))
        return response
    viewer = Viewer(identity.user, identity.name, identity.email, "slack")
    cookie, _ = console.signer.new_session(viewer, _lifetime(console))
    console.metrics.sign_ins.labels("slack", "ok").inc()
    log.info("console: %s signed in with Slack", viewer.user)
    response = redirect(safe_next(request, pending.next))
    response.del_cookie(SIGN_IN_COOKIE, path=str(request.rel_url.path))
    set_session_cookie(request, console, response, cookie)
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    console = request.app[ctx.CONSOLE]
    request.pop(ctx.NEW_COOKIE, None)
    if console.proxy is not None and console.config.auth.proxy_sign_out_url:
        # end the proxy's session too, or its next request signs the person in again
        response = redirect(console.config.auth.proxy_sign_out_url, 303)
    else:
        response = redirect(str(request.app.router["sign_in"].url_for()), 303)
    response.del_cookie(SESSION_COOKIE, path=_prefix(request))
    return response
