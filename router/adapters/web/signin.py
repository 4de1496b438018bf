"""Sign in with Slack: OpenID Connect's authorization-code flow, against Slack.

1. The browser goes to ``<oidc_url>/openid/connect/authorize`` with ``response_type=code``,
   ``scope=openid profile email``, ``client_id``, ``redirect_uri``, ``state`` and
   ``nonce``; the person consents there.
2. Slack sends the browser back to ``redirect_uri`` with ``code`` and ``state``.
3. The code is exchanged with the Web API method ``openid.connect.token`` (slack_sdk's
   ``openid_connect_token``: client id and secret as HTTP Basic, the rest form-encoded).
4. Its ``id_token`` is a JWT signed RS256 with a key from ``<oidc_url>/openid/connect/keys``.
   Checked here: the signature, ``iss`` (https://slack.com), ``aud`` (our client id),
   ``exp`` and ``iat`` against the injected clock, the ``nonce`` we sent, and the
   workspace (``https://slack.com/team_id``). The person is
   ``https://slack.com/user_id``: the same id the on-call rotations hold.

Failures are :class:`SignInRefused` with a short reason from a fixed set (a metric
label), never the token or the person's details.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.web.config import SlackSignInConfig
from router.app.clock import Clock

log = logging.getLogger(__name__)

ISSUER = "https://slack.com"
TEAM_CLAIM = "https://slack.com/team_id"
USER_CLAIM = "https://slack.com/user_id"
SCOPE = "openid profile email"
KEYS_TTL = 24 * 3600.0  # Slack rotates its keys rarely; an unknown kid refetches sooner
KEYS_REFETCH_AFTER = 60.0  # at most one refetch a minute for an unknown kid
LEEWAY = timedelta(seconds=60)  # clock skew between us and Slack

# Slack's answers to openid.connect.token that mean our configuration is wrong, not
# that the person did something: logged as errors so an operator sees them.
_CONFIG_ERRORS = {"invalid_client_id", "bad_client_secret", "bad_redirect_uri"}


class SignInRefused(Exception):
    """The sign-in did not prove who the person is; ``reason`` says why, in a word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Identity:
    user: str
    team: str
    name: str
    email: str | None


class SlackSignIn:
    def __init__(
        self,
        config: SlackSignInConfig,
        client_secret: str,
        *,
        api_url: str,
        redirect_uri: str,
        clock: Clock,
        http: aiohttp.ClientSession,
    ) -> None:
        self.config = config
        self.redirect_uri = redirect_uri
        self._client_secret = client_secret
        self._clock = clock
        self._http = http
        self._web = AsyncWebClient(base_url=api_url, session=http, timeout=10)
        self._keys: dict[str, Any] = {}
        self._keys_at = float("-inf")  # monotonic time of the last fetch
        self.keys_refetch_after = KEYS_REFETCH_AFTER

    def authorize_url(self, state: str, nonce: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "scope": SCOPE,
                "client_id": self.config.client_id,
                "redirect_uri": self.redirect_uri,
                "state": state,
                "nonce": nonce,
                "team": self.config.team_id,  # preselects the workspace
            }
        )
        return f"{self.config.oidc_url.rstrip('/')}/openid/connect/authorize?{query}"

    async def identify(self, code: str, nonce: str) -> Identity:
        """Exchange the code and verify its ID token; raises :class:`SignInRefused`."""
        id_token = await self._exchange(code)
        claims = await self._verify(id_token)
        now = self._clock.now().timestamp()
        leeway = LEEWAY.total_seconds()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or exp + leeway <= now:
            raise SignInRefused("expired")
        if not isinstance(iat, int | float) or iat - leeway > now:
            raise SignInRefused("not_yet_valid")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(
            token_nonce.encode(), nonce.encode()
        ):
            raise SignInRefused("nonce_mismatch")
        if claims.get(TEAM_CLAIM) != self.config.team_id:
            raise SignInRefused("wrong_workspace")
        user = claims.get(USER_CLAIM)
        if not isinstance(user, str) or not user:
            raise SignInRefused("no_user")
        email = claims.get("email")
        name = claims.get("name")
        return Identity(
            user=user,
            team=self.config.team_id,
            name=name if isinstance(name, str) and name else user,
            email=email if isinstance(email, str) and email else None,
        )

    async def _exchange(self, code: str) -> str:
        try:
            response = await self._web.openid_connect_token(
                client_id=self.config.client_id,
                client_secret=self._client_secret,
                code=code,
                redirect_uri=self.redirect_uri,
                grant_type="authorization_code",
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or f"http_{exc.response.status_code}")
            if error in _CONFIG_ERRORS:
                log.error("Sign in with Slack: openid.connect.token answered %s", error)
            known = error in _CONFIG_ERRORS or error == "invalid_code"
            raise SignInRefused(error if known else "slack_error") from None
        except (aiohttp.ClientError, TimeoutError):
            raise SignInRefused("slack_unreachable") from None
        id_token = response.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("no_id_token")
        return id_token

    async def _verify(self, id_token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.InvalidTokenError:
            raise SignInRefused("malformed_token") from None
        if header.get("alg") != "RS256":
            raise SignInRefused("bad_algorithm")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self.config.client_id,
                issuer=ISSUER,
                # exp and iat are checked against the injected clock, not time.time()
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "aud", "exp", "iat"],
                },
            )
        except jwt.InvalidAudienceError:
            raise SignInRefused("wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise SignInRefused("wrong_issuer") from None
        except jwt.InvalidSignatureError:
            raise SignInRefused("bad_signature") from None
        except jwt.InvalidTokenError:
            raise SignInRefused("malformed_token") from None
        return claims

    async def _key(self, kid: str) -> Any:
        age = time.monotonic() - self._keys_at
        if (kid not in self._keys and age > self.keys_refetch_after) or age > KEYS_TTL:
            await self._fetch_keys()
        key = self._keys.get(kid)
        if key is None:
            raise SignInRefused("unknown_key")
        return key

    async def _fetch_keys(self) -> None:
        url = f"{self.config.oidc_url.rstrip('/')}/openid/connect/keys"
        try:
            async with self._http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    raise SignInRefused("keys_unavailable")
                body = await resp.json(content_type=None)
            keys = jwt.PyJWKSet.from_dict(body)
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWKSetError):
            raise SignInRefused("keys_unavailable") from None
        self._keys = {k.key_id: k.key for k in keys.keys if k.key_id}
        self._keys_at = time.monotonic()
