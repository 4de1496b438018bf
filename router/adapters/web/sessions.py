"""Signed cookies: the console's session, the sign-in's state, and CSRF tokens.

A value is ``<base64url JSON>.<base64url HMAC-SHA256>``. Each use has its own key,
derived from the one secret, so a token made for one purpose (the state of a sign-in
in progress) is never accepted as another (a session). Nothing in a cookie is secret
(a Slack user id, a name, an e-mail) but none of it can be changed without the key.
The expiry is inside the signed part and checked against the injected clock, so a
cookie kept past its ``Max-Age`` is refused too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from router.adapters.web.access import Viewer
from router.app.clock import Clock

SESSION_COOKIE = "router_console"
SIGN_IN_COOKIE = "router_console_sign_in"
SIGN_IN_LIFETIME = timedelta(minutes=10)  # from the redirect to Slack to the callback


@dataclass(frozen=True)
class Session:
    viewer: Viewer
    id: str  # random per sign-in: the CSRF token is bound to it
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class SignInState:
    """A Sign in with Slack in progress, between the redirect and the callback."""

    state: str
    nonce: str
    next: str  # where to go after signing in (a path inside the console)
    expires_at: datetime


class Signer:
    def __init__(self, secret: bytes, clock: Clock) -> None:
        if not secret:
            raise ValueError("the session secret is empty")
        self._secret = secret
        self._clock = clock

    def _key(self, purpose: str) -> bytes:
        label = b"router-console/" + purpose.encode()
        return hmac.new(self._secret, label, hashlib.sha256).digest()

    def sign(self, purpose: str, data: dict[str, Any]) -> str:
        body = _b64(json.dumps(data, separators=(",", ":"), sort_keys=True).encode())
        mac = hmac.new(self._key(purpose), body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def unsign(self, purpose: str, value: str) -> dict[str, Any] | None:
        """The data, or None if the value was not made by us for this purpose."""
        body, _, mac = value.partition(".")
        if not body or not mac:
            return None
        expected = hmac.new(self._key(purpose), body.encode(), hashlib.sha256).digest()
        try:
            given = _unb64(mac)
            if not hmac.compare_digest(expected, given):
                return None
            data = json.loads(_unb64(body))
        except (binascii.Error, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # -- sessions

    def new_session(self, viewer: Viewer, lifetime: timedelta) -> tuple[str, Session]:
        now = self._clock.now()
        session = Session(viewer, secrets.token_urlsafe(16), now, now + lifetime)
        return self.sign("session", _session_data(session)), session

    def session(self, value: str | None) -> Session | None:
        """The session in a cookie, or None if absent, altered or expired."""
        if not value:
            return None
        data = self.unsign("session", value)
        if data is None:
            return None
        try:
            via: Literal["slack", "proxy"] = "slack" if data["via"] == "slack" else "proxy"
            viewer = Viewer(str(data["u"]), str(data["n"]), data.get("e"), via)
            session = Session(
                viewer, str(data["sid"]), _from_epoch(data["iat"]), _from_epoch(data["exp"])
            )
        except (KeyError, TypeError, ValueError):
            return None
        return session if self._clock.now() < session.expires_at else None

    def csrf_token(self, session: Session) -> str:
        mac = hmac.new(self._key("csrf"), session.id.encode(), hashlib.sha256).digest()
        return _b64(mac)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        if not token or not token.isascii():
            return False
        return hmac.compare_digest(self.csrf_token(session), token)

    # -- sign-in state

    def new_sign_in(self, next_path: str) -> tuple[str, SignInState]:
        state = SignInState(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            next=next_path,
            expires_at=self._clock.now() + SIGN_IN_LIFETIME,
        )
        data = {
            "state": state.state,
            "nonce": state.nonce,
            "next": state.next,
            "exp": state.expires_at.timestamp(),
        }
        return self.sign("sign-in", data), state

    def sign_in(self, value: str | None) -> SignInState | None:
        if not value:
            return None
        data = self.unsign("sign-in", value)
        if data is None:
            return None
        try:
            state = SignInState(
                str(data["state"]), str(data["nonce"]), str(data["next"]), _from_epoch(data["exp"])
            )
        except (KeyError, TypeError, ValueError):
            return None
        return state if self._clock.now() < state.expires_at else None


def _session_data(session: Session) -> dict[str, Any]:
    v = session.viewer
    return {
        "u": v.user,
        "n": v.name,
        "e": v.email,
        "via": v.via,
        "sid": session.id,
        "iat": session.issued_at.timestamp(),
        "exp": session.expires_at.timestamp(),
    }


def _from_epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
