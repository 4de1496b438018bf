"""The ``web`` section: where the console is served and how responders sign in.

Two ways in, chosen with ``auth.mode``:

* ``slack``: Sign in with Slack (OpenID Connect). Needs ``public_url`` (Slack sends the
  browser back to ``<public_url>/ui/sign-in/slack/callback``), ``auth.slack.client_id``
  and ``team_id``, and the app's client secret in ``SLACK_CLIENT_SECRET``.
* ``proxy``: a sign-in proxy in front (oauth2-proxy, an identity-aware load balancer)
  says who the person is in a header. The header is believed only when the connection
  comes from an address in ``auth.trusted_proxies``: the peer of the TCP connection,
  never ``X-Forwarded-For``, which anyone can write.

Secrets are never in the file: ``SLACK_CLIENT_SECRET`` and ``ROUTER_SESSION_SECRET``
come from the environment or from ``NAME_FILE`` paths, like the router's others.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from router.core.strict import Strict

log = logging.getLogger(__name__)

# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class SlackSignInConfig(Strict):
    """The Slack app that signs people in (its OAuth & Permissions page)."""

    client_id: str = Field(description="the app's Client ID (Basic Information)")
    team_id: str = Field(description="the workspace's id, T…")
    # Where /openid/connect/authorize and /openid/connect/keys live. The token exchange
    # goes to slack.api_url like every other Web API method; tests point both elsewhere.
    oidc_url: str = "https://slack.com"

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        if not re.fullmatch(r"\d+\.\d+", value):
            raise ValueError("must be the app's Client ID, like 1234567890.0987654321")
        return value

    @field_validator("team_id")
    @classmethod
    def _team_id(cls, value: str) -> str:
        if not re.fullmatch(r"[TE][A-Z0-9]{2,}", value):
            raise ValueError("must be a workspace id like T0123ABCD, not its name")
        return value

    @field_validator("oidc_url")
    @classmethod
    def _oidc_url(cls, value: str) -> str:
        return _http_url(value)


class WebAuthConfig(Strict):
    mode: Literal["slack", "proxy"]
    # oauth2-proxy passes X-Forwarded-User and X-Forwarded-Email upstream; behind nginx
    # auth_request with --set-xauthrequest they are X-Auth-Request-User / -Email.
    proxy_header: str = "X-Forwarded-User"
    email_header: str = "X-Forwarded-Email"
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # Sign-out in proxy mode ends the console's session, then sends the browser here so
    # the proxy's own session ends too (oauth2-proxy's default path).
    proxy_sign_out_url: str | None = "/oauth2/sign_out"
    session_hours: float = Field(12, gt=0, le=720)
    slack: SlackSignInConfig | None = None

    @field_validator("proxy_header", "email_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER_NAME.match(value):
            raise ValueError(f"{value!r} is not an HTTP header name")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        networks = []
        for item in value:
            try:
                networks.append(ip_network(str(item), strict=True))
            except ValueError as exc:
                raise ValueError(
                    f"{item!r} is not a network in CIDR notation (like 10.0.0.0/8 or "
                    "127.0.0.1/32): " + str(exc)
                ) from exc
        return tuple(networks)

    @model_validator(mode="after")
    def _mode_needs(self) -> WebAuthConfig:
        if self.mode == "slack" and self.slack is None:
            raise ValueError("slack (client_id, team_id) is required with mode: slack")
        if self.mode == "proxy" and not self.trusted_proxies:
            raise ValueError(
                "trusted_proxies is required with mode: proxy (the addresses the "
                "sign-in proxy connects from, e.g. [127.0.0.1/32] for a sidecar)"
            )
        return self


class WebConfig(Strict):
    # The router's address as people's browsers reach it (scheme and host, no path):
    # the console is at <public_url>/ui/, and Slack messages link there when it is set.
    public_url: str | None = None
    auth: WebAuthConfig

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = _http_url(value)
        if urlsplit(value).path not in ("", "/"):
            raise ValueError("must be scheme and host only (the console adds /ui/)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _slack_needs_public_url(self) -> WebConfig:
        if self.auth.mode == "slack" and self.public_url is None:
            raise ValueError(
                "public_url is required with auth.mode: slack (Slack sends the browser "
                "back to <public_url>/ui/sign-in/slack/callback)"
            )
        return self

    @property
    def secure_cookies(self) -> bool:
        """Cookies are marked Secure when the console is served over https."""
        return self.public_url is not None and self.public_url.startswith("https://")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value


@dataclass(frozen=True, repr=False)
class ConsoleSecrets:
    """The console's secrets. ``repr`` never shows a value."""

    session_secret: bytes
    session_secret_generated: bool
    slack_client_secret: str | None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, quiet: bool = False
    ) -> ConsoleSecrets:
        env = os.environ if environ is None else environ
        session = _secret(env, "ROUTER_SESSION_SECRET")
        if session is None and not quiet:
            # Sessions then end at each restart and differ between replicas: fine for a
            # laptop, not for a deployment, hence the warning.
            log.warning(
                "ROUTER_SESSION_SECRET is not set: console sessions are signed with a key "
                "made at start; they end when the router restarts and are not shared "
                "between replicas"
            )
        return cls(
            session_secret=session.encode() if session else secrets.token_bytes(32),
            session_secret_generated=session is None,
            slack_client_secret=_secret(env, "SLACK_CLIENT_SECRET"),
        )

    def masked(self) -> dict[str, str]:
        return {
            "ROUTER_SESSION_SECRET": "generated at start"
            if self.session_secret_generated
            else f"set ({len(self.session_secret)} chars)",
            "SLACK_CLIENT_SECRET": f"set ({len(self.slack_client_secret)} chars)"
            if self.slack_client_secret
            else "not set",
        }

    def __repr__(self) -> str:
        return f"ConsoleSecrets({self.masked()})"


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name) or None
    path = env.get(name + "_FILE")
    if value is None and path:
        from router.config import ConfigError  # router.config imports this module

        try:
            value = Path(path).read_text().strip() or None
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from exc
    return value


def check_startable(config: WebConfig, console_secrets: ConsoleSecrets) -> list[str]:
    """Problems that make ``serve`` refuse to start the console."""
    problems = []
    if config.auth.mode == "slack" and not console_secrets.slack_client_secret:
        problems.append(
            "SLACK_CLIENT_SECRET is not set: Sign in with Slack cannot exchange its codes "
            "(the app's Client Secret, Basic Information page)"
        )
    if len(console_secrets.session_secret) < 16:
        problems.append("ROUTER_SESSION_SECRET is too short: use at least 16 characters")
    return problems
