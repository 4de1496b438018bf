"""A loopback stand-in for Sign in with Slack (Slack's OpenID Connect provider).

Built to Slack's documentation (docs.slack.dev: "Sign in with Slack", the method
reference of ``openid.connect.token``, ``/.well-known/openid-configuration``) so the
console's real client code (slack_sdk's ``AsyncWebClient.openid_connect_token`` and
PyJWT) can be pointed at it::

    async with FakeSlackOIDC(client_id="123.456", client_secret="s3cret") as oidc:
        # the console's oidc_url = oidc.origin, its slack.api_url = oidc.api_url
        ...

It runs alone on loopback, or inside another fake: ``routes(app)`` adds its three
routes to any aiohttp application (add them before a catch-all ``/api/{method}``).

- ``GET /openid/connect/authorize`` stands for the person consenting in Slack: it
  checks ``response_type=code``, ``scope`` (``openid`` and only ``openid profile
  email``), the ``client_id``, a ``redirect_uri`` the app registered, ``state`` and
  ``nonce``, then redirects (302) to ``redirect_uri?code=…&state=…``, or
  ``?error=access_denied&state=…`` when ``deny_next`` is set. Bad requests get a 400
  page, as Slack shows an error page instead of redirecting.
- ``POST /api/openid.connect.token`` is strict: form-encoded only (Slack's own codes
  ``invalid_form_data``, ``invalid_post_type``, ``missing_post_type``), client
  authentication by HTTP Basic (what slack_sdk sends) or ``client_id`` and
  ``client_secret`` form fields (``client_secret_basic``/``client_secret_post``), a
  ``code`` used once only and within ten minutes, ``redirect_uri`` equal to the one
  authorized, ``grant_type`` ``authorization_code`` if given. Failures are HTTP 200
  with ``{"ok": false, "error": ...}``: ``invalid_client_id``, ``bad_client_secret``,
  ``invalid_code``, ``bad_redirect_uri``, ``invalid_grant_type``. Success is Slack's
  shape: ``{"ok": true, "access_token": "xoxp-…", "token_type": "Bearer",
  "id_token": "<JWT>"}``.
- ``GET /openid/connect/keys`` is the JWKS: RS256 public keys with ``kid``.

The ID token carries Slack's claims (``iss`` https://slack.com, ``sub``, ``aud`` the
client id, ``exp``, ``iat``, ``auth_time``, ``nonce``, ``at_hash``,
``https://slack.com/user_id``, ``https://slack.com/team_id``, ``email``,
``email_verified``, ``name``, ``given_name``, ``family_name``, ``locale``, team name and
domain). ``claims_override`` changes claims of the next tokens (a wrong audience, an
expired token); ``sign_with_stranger_key`` signs them with a key not in the JWKS but
under the ``kid`` of one that is (a forgery).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.loopback import LoopbackServer

__all__ = ["OIDC_USERS", "FakeSlackOIDC", "TokenCall"]

ISSUER = "https://slack.com"
CODE_LIFETIME = 600

#: People who can consent, as {user id: claims}; the first one consents by default.
OIDC_USERS: dict[str, dict[str, str]] = {
    "U0JANE0001": {"name": "Jane Doe", "email": "jane@example.com", "locale": "en-US"},
    "U0JOHN0002": {"name": "John Roe", "email": "john@example.com", "locale": "en-US"},
}


@dataclass
class TokenCall:
    """One request to ``openid.connect.token`` as the fake saw it, and its answer."""

    content_type: str | None
    form: dict[str, str]
    basic_auth: tuple[str, str] | None
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    user: str
    issued: float


class FakeSlackOIDC(LoopbackServer):
    def __init__(
        self,
        *,
        client_id: str = "1234567890.0987654321",
        client_secret: str = "fake-client-secret",
        team_id: str = "T0FAKETEAM",
        team_name: str = "Fake Team",
        redirect_uris: Iterable[str] | None = None,
        users: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.team_id = team_id
        self.team_name = team_name
        # None: any redirect URI is registered (the console's port is random in tests)
        self.redirect_uris = None if redirect_uris is None else set(redirect_uris)
        self.users = {uid: dict(c) for uid, c in (users or OIDC_USERS).items()}
        self.consenting_user = next(iter(self.users))
        self.deny_next = False
        self.claims_override: dict[str, Any] = {}
        self.sign_with_stranger_key = False
        self.authorizations: list[dict[str, str]] = []
        self.token_calls: list[TokenCall] = []
        self.key_fetches = 0
        self._grants: dict[str, _Grant] = {}
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = [_new_key()]
        self._stranger = _new_key()

    # ------------------------------------------------------------------ routes

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/openid/connect/authorize", self._authorize)
        app.router.add_post("/api/openid.connect.token", self._token)
        app.router.add_route("*", "/api/openid.connect.token", self._token_wrong_method)
        app.router.add_get("/openid/connect/keys", self._jwks)

    @property
    def api_url(self) -> str:
        """The Web API base URL for slack_sdk (``base_url``)."""
        return self.origin + "/api/"

    def rotate_keys(self) -> None:
        """Sign from now on with a new key (the JWKS lists both, newest first)."""
        self._keys.insert(0, _new_key())

    def summary(self) -> str:
        return (
            f"authorizations={len(self.authorizations)} token_calls="
            f"{[c.response.get('error', 'ok') for c in self.token_calls]} "
            f"key_fetches={self.key_fetches}"
        )

    # ---------------------------------------------------------------- handlers

    async def _authorize(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.authorizations.append(q)
        problem = self._authorize_problem(q)
        if problem is not None:
            return web.Response(status=400, text=f"Slack: {problem}", content_type="text/html")
        redirect_uri = q["redirect_uri"]
        if self.deny_next:
            self.deny_next = False
            target = _with_query(redirect_uri, error="access_denied", state=q["state"])
            return web.Response(status=302, headers={"Location": target})
        code = f"{int(time.time())}.{secrets.token_hex(20)}"
        self._grants[code] = _Grant(
            q["client_id"], redirect_uri, q["nonce"], self.consenting_user, time.time()
        )
        target = _with_query(redirect_uri, code=code, state=q["state"])
        return web.Response(status=302, headers={"Location": target})

    def _authorize_problem(self, q: dict[str, str]) -> str | None:
        known = {"response_type", "scope", "client_id", "redirect_uri", "state", "nonce", "team"}
        if unknown := set(q) - known:
            return f"unknown parameters {sorted(unknown)}"
        if q.get("response_type") != "code":
            return "response_type must be code"
        scopes = set((q.get("scope") or "").split())
        if "openid" not in scopes or not scopes <= {"openid", "profile", "email"}:
            return "invalid_scope"
        if q.get("client_id") != self.client_id:
            return "invalid_client_id"
        redirect_uri = q.get("redirect_uri") or ""
        if not redirect_uri.startswith(("http://", "https://")):
            return "bad_redirect_uri"
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            return "bad_redirect_uri"
        if not q.get("state") or not q.get("nonce"):
            return "state and nonce are required"
        if q.get("team") not in (None, self.team_id):
            return "team_not_found"
        return None

    async def _token_wrong_method(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error": "http_method_not_allowed"}, status=405)

    async def _token(self, request: web.Request) -> web.Response:
        raw = await request.read()
        call = TokenCall(request.content_type if raw else None, {}, _basic(request))
        self.token_calls.append(call)
        call.response = self._token_answer(request, raw, call)
        return web.json_response(call.response)

    def _token_answer(self, request: web.Request, raw: bytes, call: TokenCall) -> dict[str, Any]:
        if raw and "Content-Type" not in request.headers:
            return _error("missing_post_type")
        if raw and request.content_type != "application/x-www-form-urlencoded":
            return _error("invalid_post_type")
        try:
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw)))
        except (UnicodeDecodeError, ValueError):
            return _error("invalid_form_data")
        call.form = form
        client_id, client_secret = call.basic_auth or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        if client_id != self.client_id:
            return _error("invalid_client_id")
        if not secrets.compare_digest(client_secret, self.client_secret):
            return _error("bad_client_secret")
        if form.get("grant_type", "authorization_code") != "authorization_code":
            return _error("invalid_grant_type")
        code = form.get("code", "")
        grant = self._grants.pop(code, None)  # popped: a code works once
        if grant is None or time.time() - grant.issued > CODE_LIFETIME:
            return _error("invalid_code")
        if grant.client_id != client_id:
            return _error("invalid_code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _error("bad_redirect_uri")
        access_token = "xoxp-" + secrets.token_hex(16)
        return {
            "ok": True,
            "access_token": access_token,
            "token_type": "Bearer",
            "id_token": self._id_token(grant, access_token),
        }

    async def _jwks(self, request: web.Request) -> web.Response:
        self.key_fetches += 1
        return web.json_response({"keys": [_public_jwk(kid, key) for kid, key in self._keys]})

    # ------------------------------------------------------------------- token

    def _id_token(self, grant: _Grant, access_token: str) -> str:
        now = int(time.time())
        person = self.users[grant.user]
        name = person.get("name", grant.user)
        given, _, family = name.partition(" ")
        digest = hashlib.sha256(access_token.encode()).digest()
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": grant.user,
            "aud": grant.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "nonce": grant.nonce,
            "at_hash": base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode(),
            "https://slack.com/team_id": self.team_id,
            "https://slack.com/user_id": grant.user,
            "email": person.get("email"),
            "email_verified": True,
            "date_email_verified": now - 86400,
            "locale": person.get("locale", "en-US"),
            "name": name,
            "given_name": given,
            "family_name": family,
            "https://slack.com/team_name": self.team_name,
            "https://slack.com/team_domain": self.team_name.lower().replace(" ", "-"),
        }
        claims.update(self.claims_override)
        kid, key = self._keys[0]
        if self.sign_with_stranger_key:  # a forgery: the published kid, another key
            key = self._stranger[1]
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _new_key() -> tuple[str, rsa.RSAPrivateKey]:
    return secrets.token_hex(8), rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"e": jwk["e"], "n": jwk["n"], "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig"}


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def _error(code: str) -> dict[str, Any]:
    return {"ok": False, "error": code}


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
