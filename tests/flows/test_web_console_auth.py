"""Signing in to the console: Sign in with Slack against the OpenID stand-in, the trusted
proxy header, sessions (expiry, tampering), sign-out, CSRF, 401 and 403."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from router.adapters.web import SlackDirectory, StaticDirectory
from router.adapters.web.app import SECURITY_HEADERS
from router.adapters.web.context import CONSOLE
from router.adapters.web.directory import DirectoryUser
from router.adapters.web.sessions import SESSION_COOKIE, SIGN_IN_COOKIE
from router.app.clock import FrozenClock
from tests.console_app import HTML, client_for, csrf_of, mount, proxy_config, slack_config
from tests.fakes.console_source import sample
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_oidc import FakeSlackOIDC

# What must never reach an unauthorised person or a log line: fixture text.
SECRET_TEXT = ("Checkout API p99", "Suspicious admin logins", "failing over the payments cache")


PATHS = ["/ui/", "/ui/incidents/42", "/ui/incidents/40", "/ui/pages", "/ui/quality",
         "/ui/?severity=nonsense", "/ui/incidents/77"]  # fmt: skip


@pytest.fixture
def clock() -> FrozenClock:
    # the stand-in signs tokens with the real time, so the console's clock starts there
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def _cookie(response: aiohttp.ClientResponse, name: str) -> Any:
    for header in response.headers.getall("Set-Cookie", []):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar[name]
    return None


def _sample(registry: CollectorRegistry, name: str, labels: dict[str, str]) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _slack_app(oidc: FakeSlackOIDC, clock: FrozenClock, **kwargs: Any) -> Any:
    return mount(
        slack_config(oidc.origin), sample(clock.now()), clock, slack_api_url=oidc.api_url, **kwargs
    )


async def _slack_sign_in(client: Any, oidc: FakeSlackOIDC, next_path: str = "") -> Any:
    """Walk the browser's part: to Slack, consent, back to the callback. Returns the
    callback's response (a redirect with the session cookie when it worked)."""
    start = await client.get("/ui/sign-in/slack" + next_path, allow_redirects=False)
    assert start.status == 302, await start.text()
    async with aiohttp.ClientSession() as browser:
        slack = await browser.get(start.headers["Location"], allow_redirects=False)
        assert slack.status == 302, await slack.text()
        back = urlsplit(slack.headers["Location"])
    return await client.get(f"{back.path}?{back.query}", allow_redirects=False)


# ------------------------------------------------------------------ not signed in


@pytest.mark.parametrize(
    "path", ["/ui/", "/ui/incidents/42", "/ui/incidents/40", "/ui/pages", "/ui/quality?days=7"]
)
async def test_a_browser_is_sent_to_sign_in_and_sees_no_incident_data(
    path: str, clock: FrozenClock
) -> None:
    app = mount(proxy_config(), sample(clock.now()), clock)
    async with client_for(app) as client:
        html = await client.get(path, headers=HTML, allow_redirects=False)
        assert html.status == 302
        location = html.headers["Location"]
        assert location.startswith("/ui/sign-in")
        if path != "/ui/":
            assert parse_qs(urlsplit(location).query)["next"] == [path]
        other = await client.get(path, allow_redirects=False)  # not a browser: 401
        assert other.status == 401
        body = await other.text()
        assert "Sign in first" in body
        for text in SECRET_TEXT:
            assert text not in body


async def test_sign_out_without_a_session_is_refused(clock: FrozenClock) -> None:
    app = mount(proxy_config(), sample(clock.now()), clock)
    async with client_for(app) as client:
        response = await client.post("/ui/sign-out", data={"csrf": "x"}, allow_redirects=False)
        assert response.status == 401


# ------------------------------------------------------------- Sign in with Slack


async def test_sign_in_with_slack_end_to_end(clock: FrozenClock) -> None:
    registry = CollectorRegistry()
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock, registry=registry)
        async with client_for(app) as client:
            start = await client.get(
                "/ui/sign-in/slack?next=/ui/incidents/42", allow_redirects=False
            )
            state_cookie = _cookie(start, SIGN_IN_COOKIE)
            assert state_cookie is not None
            assert state_cookie["httponly"] and state_cookie["samesite"] == "Lax"
            assert state_cookie["path"] == "/ui/sign-in/slack/callback"
            authorize = urlsplit(start.headers["Location"])
            assert f"{authorize.scheme}://{authorize.netloc}" == oidc.origin
            assert authorize.path == "/openid/connect/authorize"
            query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
            assert query["response_type"] == "code"
            assert query["scope"] == "openid profile email"
            assert query["client_id"] == "1234567890.0987654321"
            assert query["redirect_uri"] == "http://console.test/ui/sign-in/slack/callback"
            assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
            assert query["state"] != query["nonce"]

            callback = await _slack_sign_in(client, oidc, "?next=/ui/incidents/42")
            assert callback.status == 302
            assert callback.headers["Location"] == "/ui/incidents/42"
            session = _cookie(callback, SESSION_COOKIE)
            assert session["httponly"] and session["samesite"] == "Lax"
            assert session["path"] == "/ui/"
            assert session["max-age"] == str(12 * 3600)
            assert not session["secure"], "http public_url: no Secure flag"

            page = await client.get("/ui/incidents/42", headers=HTML)
            assert page.status == 200
            html = await page.text()
            assert "Checkout API p99 latency over 2 s" in html
            assert "Jane Doe" in html  # the name from the ID token, in the header

            # the code exchange as slack_sdk sends it: client credentials as HTTP Basic,
            # the rest form-encoded, the same redirect_uri as authorized
            (call,) = oidc.token_calls
            assert call.content_type == "application/x-www-form-urlencoded"
            assert call.basic_auth == ("1234567890.0987654321", "fake-client-secret")
            assert call.form["redirect_uri"] == query["redirect_uri"]
            assert call.response["ok"] is True
    assert (
        _sample(registry, "router_console_sign_ins_total", {"mode": "slack", "result": "ok"}) == 1
    )


async def test_secure_cookies_when_served_over_https(clock: FrozenClock) -> None:
    async with FakeSlackOIDC() as oidc:
        config = slack_config(oidc.origin, public_url="https://router.example.com")
        app = mount(config, sample(clock.now()), clock, slack_api_url=oidc.api_url)
        async with client_for(app) as client:
            start = await client.get("/ui/sign-in/slack", allow_redirects=False)
            state = _cookie(start, SIGN_IN_COOKIE)
            assert state["secure"]
            async with aiohttp.ClientSession() as browser:
                slack = await browser.get(start.headers["Location"], allow_redirects=False)
            back = urlsplit(slack.headers["Location"])
            assert back.netloc == "router.example.com"
            # an http test client rightly keeps a Secure cookie to itself: send it by hand
            callback = await client.get(
                f"{back.path}?{back.query}",
                headers={"Cookie": f"{SIGN_IN_COOKIE}={state.value}"},
                allow_redirects=False,
            )
            assert callback.status == 302
            assert _cookie(callback, SESSION_COOKIE)["secure"]


UNVERIFIED = "could not be verified"
REFUSALS = {
    "denied": (lambda o: setattr(o, "deny_next", True), "access_denied", "You did not allow"),
    "team": (
        lambda o: o.claims_override.update({"https://slack.com/team_id": "T0OTHERTEAM"}),
        "wrong_workspace",
        "another Slack workspace",
    ),
    "audience": (lambda o: o.claims_override.update(aud="9.9"), "wrong_audience", UNVERIFIED),
    "issuer": (
        lambda o: o.claims_override.update(iss="https://x.example"),
        "wrong_issuer",
        UNVERIFIED,
    ),
    "nonce": (lambda o: o.claims_override.update(nonce="replayed"), "nonce_mismatch", UNVERIFIED),
    "forged": (lambda o: setattr(o, "sign_with_stranger_key", True), "bad_signature", UNVERIFIED),
    "secret": (lambda o: setattr(o, "client_secret", "rotated"), "bad_client_secret", UNVERIFIED),
}


@pytest.mark.parametrize(("arrange", "reason", "message"), REFUSALS.values(), ids=REFUSALS)
async def test_sign_in_with_slack_refusals(
    arrange: Any, reason: str, message: str, clock: FrozenClock
) -> None:
    registry = CollectorRegistry()
    async with FakeSlackOIDC() as oidc:
        arrange(oidc)
        app = _slack_app(oidc, clock, registry=registry)
        async with client_for(app) as client:
            callback = await _slack_sign_in(client, oidc)
            assert callback.status == 401
            assert message in await callback.text()
            assert _cookie(callback, SESSION_COOKIE) is None
            after = await client.get("/ui/", headers=HTML, allow_redirects=False)
            assert after.status == 302  # still not signed in
    labels = {"mode": "slack", "result": reason}
    assert _sample(registry, "router_console_sign_ins_total", labels) == 1


async def test_expired_id_token_is_refused_by_the_console_clock(clock: FrozenClock) -> None:
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock)
        async with client_for(app) as client:
            clock.advance(timedelta(minutes=7))  # the token lives 5 min, leeway 1 min
            callback = await _slack_sign_in(client, oidc)
            assert callback.status == 401


async def test_state_must_match_and_codes_work_once(clock: FrozenClock) -> None:
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock)
        async with client_for(app) as client:
            start = await client.get("/ui/sign-in/slack", allow_redirects=False)
            async with aiohttp.ClientSession() as browser:
                slack = await browser.get(start.headers["Location"], allow_redirects=False)
            back = urlsplit(slack.headers["Location"])
            code = parse_qs(back.query)["code"][0]
            forged = await client.get(
                f"{back.path}?code={code}&state=someone-elses", allow_redirects=False
            )
            assert forged.status == 401
            assert "expired or was started in another window" in await forged.text()
            assert oidc.token_calls == [], "a mismatched state never reaches Slack"

            # a fresh attempt works; replaying its code afterwards does not
            callback = await _slack_sign_in(client, oidc)
            assert callback.status == 302
            used = oidc.token_calls[-1]
            client.session.cookie_jar.clear()
            start = await client.get("/ui/sign-in/slack", allow_redirects=False)
            state = parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
            replay = await client.get(
                f"{back.path}?code={used.form['code']}&state={state}", allow_redirects=False
            )
            assert replay.status == 401
            assert oidc.token_calls[-1].response == {"ok": False, "error": "invalid_code"}


async def test_keys_are_cached_and_refetched_for_an_unknown_kid(clock: FrozenClock) -> None:
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock)
        async with client_for(app) as client:
            for _ in range(2):
                client.session.cookie_jar.clear()
                assert (await _slack_sign_in(client, oidc)).status == 302
            assert oidc.key_fetches == 1
            oidc.rotate_keys()
            slack_sign_in = app._subapps[0][CONSOLE].slack
            slack_sign_in.keys_refetch_after = 0  # no minute to wait in a test
            client.session.cookie_jar.clear()
            assert (await _slack_sign_in(client, oidc)).status == 302
            assert oidc.key_fetches == 2


@pytest.mark.parametrize(
    "next_path", ["https://evil.example/ui/", "//evil.example/ui/", "/elsewhere", "/ui/../x"]
)
async def test_no_open_redirect_after_sign_in(next_path: str, clock: FrozenClock) -> None:
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock)
        async with client_for(app) as client:
            callback = await _slack_sign_in(client, oidc, "?next=" + next_path)
            assert callback.headers["Location"] == "/ui/"


# ----------------------------------------------------------------------- sessions


async def _signed_in(client: Any, oidc: FakeSlackOIDC) -> str:
    callback = await _slack_sign_in(client, oidc)
    assert callback.status == 302
    return str(_cookie(callback, SESSION_COOKIE).value)


async def test_session_expires(clock: FrozenClock) -> None:
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock)
        async with client_for(app) as client:
            await _signed_in(client, oidc)
            clock.advance(timedelta(hours=11, minutes=59))
            assert (await client.get("/ui/", headers=HTML)).status == 200
            clock.advance(timedelta(minutes=2))
            late = await client.get("/ui/", headers=HTML, allow_redirects=False)
            assert late.status == 302
            assert late.headers["Location"].startswith("/ui/sign-in")
            gone = _cookie(late, SESSION_COOKIE)
            assert gone is not None and gone.value == "", "the stale cookie is taken away"


@pytest.mark.parametrize("how", ["payload", "signature", "truncated", "garbage", "sign-in state"])
async def test_altered_session_cookie_is_refused(how: str, clock: FrozenClock) -> None:
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock)
        async with client_for(app) as client:
            value = await _signed_in(client, oidc)
            body, mac = value.split(".")
            if how == "payload":  # another person, same signature
                import base64
                import json

                data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
                data["u"] = "U0MEI00004"
                body = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
                altered = f"{body}.{mac}"
            elif how == "signature":
                altered = f"{body}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}"
            elif how == "truncated":
                altered = body
            elif how == "garbage":
                altered = "%%%.!!!"
            else:  # a value we signed, but for the sign-in state, not a session
                start = await client.get("/ui/sign-in/slack", allow_redirects=False)
                altered = _cookie(start, SIGN_IN_COOKIE).value
            client.session.cookie_jar.clear()
            response = await client.get(
                "/ui/", headers={**HTML, "Cookie": f"{SESSION_COOKIE}={altered}"},
                allow_redirects=False,
            )  # fmt: skip
            assert response.status == 302
            assert "Checkout API" not in await response.text()


# ---------------------------------------------------------------- sign-out, CSRF


async def test_sign_out_needs_the_csrf_token_and_then_ends_the_session(clock: FrozenClock) -> None:
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock)
        async with client_for(app) as client:
            await _signed_in(client, oidc)
            token = csrf_of(await (await client.get("/ui/", headers=HTML)).text())

            for data, headers in [
                ({}, {}),
                ({"csrf": "not-the-token"}, {}),
                ({"csrf": token}, {"Origin": "https://evil.example"}),
            ]:
                refused = await client.post(
                    "/ui/sign-out", data=data, headers={**HTML, **headers}, allow_redirects=False
                )
                assert refused.status == 403
                assert (await client.get("/ui/", headers=HTML)).status == 200, "still signed in"

            # another session's token does not do either
            async with client_for(app) as other:
                await _signed_in(other, oidc)
                theirs = csrf_of(await (await other.get("/ui/", headers=HTML)).text())
            assert theirs != token
            refused = await client.post(
                "/ui/sign-out", data={"csrf": theirs}, allow_redirects=False
            )
            assert refused.status == 403

            out = await client.post(
                "/ui/sign-out", data={"csrf": token},
                headers={"Origin": "http://console.test"}, allow_redirects=False,
            )  # fmt: skip
            assert out.status == 303
            assert out.headers["Location"] == "/ui/sign-in"
            assert _cookie(out, SESSION_COOKIE).value == ""
            after = await client.get("/ui/", headers=HTML, allow_redirects=False)
            assert after.status == 302


# ------------------------------------------------------------------- proxy header


async def test_proxy_header_from_a_trusted_peer_maps_the_email_to_the_slack_user(
    clock: FrozenClock,
) -> None:
    registry = CollectorRegistry()
    async with FakeSlack() as slack:
        directory = SlackDirectory("xoxb-test", slack.base_url)
        app = mount(
            proxy_config(), sample(clock.now()), clock, registry=registry, directory=directory
        )
        headers = {**HTML, "X-Forwarded-Email": "jane@example.com", "X-Forwarded-User": "jane"}
        async with client_for(app) as client:
            page = await client.get("/ui/", headers=headers)
            assert page.status == 200
            html = await page.text()
            assert "Jane Doe" in html and 'title="U0JANE0001"' in html
            session = _cookie(page, SESSION_COOKIE)
            assert (
                session["httponly"] and session["samesite"] == "Lax" and session["path"] == "/ui/"
            )
            assert (await client.get("/ui/pages", headers=headers)).status == 200
        async with client_for(app) as fresh:  # a new browser: looked up from the cache
            assert (await fresh.get("/ui/", headers=headers)).status == 200
        lookups = slack.calls_to("users.lookupByEmail")
        assert len(lookups) == 1
        assert lookups[0].args["email"] == "jane@example.com"
    labels = {"mode": "proxy", "result": "ok"}
    assert _sample(registry, "router_console_sign_ins_total", labels) == 2


@pytest.mark.parametrize(
    "trusted", [["10.0.0.0/8"], ["192.0.2.0/24", "2001:db8::/32"], ["127.0.0.2/32"]]
)
async def test_proxy_header_from_an_untrusted_peer_is_ignored(
    trusted: list[str], clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = mount(proxy_config(trusted), sample(clock.now()), clock, directory=None)
    spoof = {
        "X-Forwarded-Email": "jane@example.com",
        "X-Forwarded-User": "jane",
        "X-Forwarded-For": trusted[0].split("/")[0],  # never read
        "Forwarded": f"for={trusted[0].split('/')[0]}",
        "X-Real-IP": trusted[0].split("/")[0],
    }
    async with client_for(app) as client:
        with caplog.at_level(logging.WARNING):
            response = await client.get("/ui/", headers=spoof, allow_redirects=False)
        assert response.status == 401
        assert "Checkout API" not in await response.text()
    assert "sign-in headers from 127.0.0.1 ignored" in caplog.text


async def test_proxy_mode_asks_the_proxy_every_time(clock: FrozenClock) -> None:
    directory = StaticDirectory({"jane@example.com": DirectoryUser("U0JANE0001", "Jane Doe")})
    app = mount(proxy_config(), sample(clock.now()), clock, directory=directory)
    async with client_for(app) as client:
        signed = await client.get("/ui/", headers={"X-Forwarded-Email": "jane@example.com"})
        assert signed.status == 200
        # the session cookie alone (a request around the proxy) gets nothing
        bare = await client.get("/ui/", allow_redirects=False)
        assert bare.status == 401


async def test_proxy_header_naming_someone_else_replaces_the_session(clock: FrozenClock) -> None:
    directory = StaticDirectory(
        {
            "jane@example.com": DirectoryUser("U0JANE0001", "Jane Doe"),
            "mei@example.com": DirectoryUser("U0MEI00004", "Mei Chen"),
        }
    )
    app = mount(proxy_config(), sample(clock.now()), clock, directory=directory)
    async with client_for(app) as client:
        jane = await client.get(
            "/ui/incidents/40", headers={"X-Forwarded-Email": "jane@example.com"}
        )
        assert jane.status == 403  # INC-40 is confidential; Jane is not its responder
        mei = await client.get("/ui/incidents/40", headers={"X-Forwarded-Email": "mei@example.com"})
        assert mei.status == 200
        assert "Suspicious admin logins" in await mei.text()


async def test_proxy_email_of_no_workspace_member_is_403(clock: FrozenClock) -> None:
    registry = CollectorRegistry()
    async with FakeSlack() as slack:
        app = mount(
            proxy_config(), sample(clock.now()), clock,
            registry=registry, directory=SlackDirectory("xoxb-test", slack.base_url),
        )  # fmt: skip
        async with client_for(app) as client:
            response = await client.get("/ui/", headers={"X-Forwarded-Email": "who@else.example"})
            assert response.status == 403
            assert "belongs to no member of the Slack workspace" in await response.text()
    labels = {"mode": "proxy", "result": "not_in_workspace"}
    assert _sample(registry, "router_console_sign_ins_total", labels) == 1


async def test_proxy_when_slack_cannot_be_asked_is_503(clock: FrozenClock) -> None:
    async with FakeSlack() as slack:
        slack.fail_next("users.lookupByEmail", status=500, error="internal_error")
        app = mount(
            proxy_config(), sample(clock.now()), clock,
            directory=SlackDirectory("xoxb-wrong-token", slack.base_url),
        )  # fmt: skip
        async with client_for(app) as client:
            response = await client.get("/ui/", headers={"X-Forwarded-Email": "jane@example.com"})
            assert response.status == 503


async def test_proxy_without_a_directory_takes_the_user_header_as_the_id(
    clock: FrozenClock,
) -> None:
    app = mount(proxy_config(), sample(clock.now()), clock, directory=None)
    async with client_for(app) as client:
        both = {"X-Forwarded-Email": "jane@example.com", "X-Forwarded-User": "U0JANE0001"}
        html = await (await client.get("/ui/", headers=both)).text()
        assert 'title="U0JANE0001">U0JANE0001</span>' in html
    async with client_for(app) as client:
        email_only = {"X-Forwarded-Email": "jane@example.com"}
        html = await (await client.get("/ui/", headers=email_only)).text()
        assert 'title="jane@example.com">jane@example.com</span>' in html


async def test_proxy_with_other_header_names(clock: FrozenClock) -> None:
    config = proxy_config(proxy_header="X-Auth-Request-User", email_header="X-Auth-Request-Email")
    app = mount(config, sample(clock.now()), clock, directory=None)
    async with client_for(app) as client:
        ignored = await client.get("/ui/", headers={"X-Forwarded-Email": "jane@example.com"})
        assert ignored.status == 401
        ok = await client.get("/ui/", headers={"X-Auth-Request-Email": "jane@example.com"})
        assert ok.status == 200


async def test_proxy_sign_out_ends_the_proxy_session_too(clock: FrozenClock) -> None:
    app = mount(proxy_config(), sample(clock.now()), clock, directory=None)
    headers = {"X-Forwarded-Email": "jane@example.com"}
    async with client_for(app) as client:
        token = csrf_of(await (await client.get("/ui/", headers=headers)).text())
        out = await client.post(
            "/ui/sign-out", data={"csrf": token}, headers=headers, allow_redirects=False
        )
        assert out.status == 303
        assert out.headers["Location"] == "/oauth2/sign_out"
        assert _cookie(out, SESSION_COOKIE).value == ""


# --------------------------------------------------------- who may see what, logs


async def test_confidential_incident_403_for_a_stranger_and_redacted_in_the_list(
    clock: FrozenClock,
) -> None:
    registry = CollectorRegistry()
    app = mount(proxy_config(), sample(clock.now()), clock, registry=registry, directory=None)
    stranger = {"X-Forwarded-Email": "U0JOHN0002"}  # no directory: the header is the id
    async with client_for(app) as client:
        page = await client.get("/ui/incidents/40", headers=stranger)
        assert page.status == 403
        body = await page.text()
        assert "INC-40 is confidential" in body
        assert "Suspicious admin logins" not in body
        listing = await (await client.get("/ui/?status=all&age=all", headers=stranger)).text()
        assert "INC-40" in listing and "Suspicious admin logins" not in listing
        assert 'href="/ui/incidents/40"' not in listing
        assert "Checkout API p99 latency over 2 s" in listing  # not confidential: shown
    labels = {"page": "incident", "code": "403"}
    assert _sample(registry, "router_console_requests_total", labels) == 1


@pytest.mark.parametrize(
    ("viewer", "group", "status"),
    [("U0MEI00004", [], 200), ("U0JOHN0002", ["U0JOHN0002"], 200), ("U0JOHN0002", [], 403)],
    ids=["its-responder", "responder-group", "stranger"],
)
async def test_who_may_see_a_confidential_incident(
    viewer: str, group: list[str], status: int, clock: FrozenClock
) -> None:
    app = mount(proxy_config(), sample(clock.now()), clock, responders=group, directory=None)
    async with client_for(app) as client:
        response = await client.get("/ui/incidents/40", headers={"X-Forwarded-Email": viewer})
        assert response.status == status


async def test_every_answer_carries_the_security_headers(clock: FrozenClock) -> None:
    app = mount(proxy_config(), sample(clock.now()), clock, directory=None)
    headers = {"X-Forwarded-Email": "jane@example.com"}
    async with client_for(app) as client:
        for path, status in [("/ui/", 200), ("/ui/incidents/999", 404), ("/ui/nowhere", 404)]:
            response = await client.get(path, headers=headers)
            assert response.status == status
            for name, value in SECURITY_HEADERS.items():
                assert response.headers[name] == value
            assert response.headers["Cache-Control"] == "no-store"
        unsigned = await client.get("/ui/", allow_redirects=False)
        assert (
            unsigned.headers["Content-Security-Policy"]
            == SECURITY_HEADERS["Content-Security-Policy"]
        )


async def test_no_incident_text_in_the_logs(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeSlackOIDC() as oidc:
        app = _slack_app(oidc, clock)
        with caplog.at_level(logging.DEBUG):
            async with client_for(app) as client:
                await _signed_in(client, oidc)
                for path in PATHS:
                    await client.get(path, headers=HTML)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("router"))
    assert "U0JANE0001 signed in with Slack" in ours
    assert "U0JANE0001 may not view INC-40 (confidential)" in ours  # ids, not titles
    for text in SECRET_TEXT:
        assert text not in caplog.text
    assert "jane@example.com" not in ours


@pytest.mark.parametrize(
    ("peer", "trusted", "believed"),
    [
        (("127.0.0.1", 5000), ["127.0.0.1/32"], True),
        (("::ffff:127.0.0.1", 5000, 0, 0), ["127.0.0.1/32"], True),  # IPv4 over IPv6
        (("10.4.5.6", 5000), ["10.0.0.0/8"], True),
        (("10.4.5.6", 5000), ["10.4.5.7/32"], False),
        (("fd00::5", 5000, 0, 0), ["fd00::/8"], True),
        (("fd00::5", 5000, 0, 0), ["10.0.0.0/8"], False),
        ("/run/router.sock", ["127.0.0.1/32"], False),  # a Unix socket has no address
        (None, ["127.0.0.1/32"], False),
    ],
)
def test_trust_is_the_tcp_peer_in_a_trusted_network(
    peer: Any, trusted: list[str], believed: bool
) -> None:
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from router.adapters.web.proxy import ProxySignIn

    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        peer if name == "peername" else default
    )
    request = make_mocked_request(
        "GET", "/ui/", headers={"X-Forwarded-Email": "a@b.example", "X-Forwarded-For": "10.4.5.7"},
        transport=transport,
    )  # fmt: skip
    signer = ProxySignIn(proxy_config(trusted).auth, None)
    assert signer.trusted(request) is believed
    assert (signer.claim(request) is not None) is believed


async def test_proxy_without_a_directory_follows_the_user_header(clock: FrozenClock) -> None:
    app = mount(proxy_config(), sample(clock.now()), clock, directory=None)
    async with client_for(app) as client:
        mei = {"X-Forwarded-User": "U0MEI00004", "X-Forwarded-Email": "shared@example.com"}
        assert (await client.get("/ui/incidents/40", headers=mei)).status == 200
        # same e-mail, another user: not the old session's person
        john = {"X-Forwarded-User": "U0JOHN0002", "X-Forwarded-Email": "shared@example.com"}
        assert (await client.get("/ui/incidents/40", headers=john)).status == 403
