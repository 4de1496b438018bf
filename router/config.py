"""Configuration: one strict YAML file, env overrides, secrets from the environment.

Strict means an unknown key is an error naming its path; a typo must never silently
turn a setting off. Any key can be overridden with ``ROUTER__SECTION__KEY=value``
(the value is read as a YAML scalar, so ``8081`` is a number). Secrets are never in
the file: they come from the environment variables the README lists (``Secrets``),
or from ``NAME_FILE`` paths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from router.adapters.google.config import DocConfig
from router.adapters.pagerduty.config import (
    OncallProvider,
    PagerDutyOncallConfig,
    provider_problems,
)
from router.adapters.statuspage.config import StatuspageConfig
from router.adapters.web.config import ConsoleSecrets, WebConfig
from router.adapters.web.config import check_startable as console_startable
from router.core.oncall import ENG_PRIMARY, OncallConfig, RotationConfig
from router.core.policy_config import (
    IncidentConfig,
    PagingConfig,
)
from router.core.severity import DEFAULT_RULES, SeverityConfig
from router.core.strict import Strict, describe_errors
from router.core.triage import TriageConfig

ENV_PREFIX = "ROUTER__"
# Secrets that are file paths: even their length says nothing worth showing.
_PATHS = frozenset({"GOOGLE_APPLICATION_CREDENTIALS"})


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


class ServerConfig(Strict):
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    # 16 MiB: an Alertmanager group of 5,000 alerts is about 3 MB (max_alerts: 0 sends
    # every alert of the group in one body, and Alertmanager never retries a 413), so
    # this takes groups of about 25,000. Bigger ones: set max_alerts on the receiver.
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="larger bodies get 413")
    # Bytes of bodies read, checked and stored at once; past it a request waits up to
    # 2 s, then gets 503 (retried). Bounds the memory many big groups at once can take.
    max_inflight_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    shutdown_grace_seconds: float = Field(10.0, ge=0, description="in-flight requests")
    # Seconds between readiness going false and the listener closing on SIGTERM, so a
    # load balancer stops sending first (0 where a preStop hook already waits).
    drain_seconds: float = Field(0.0, ge=0)


class StoreConfig(Strict):
    url: str = "sqlite:///data/router.db"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value


class AlertmanagerConfig(Strict):
    # bearer: "Authorization: Bearer $ALERTMANAGER_TOKEN"; basic: user + the token
    # as password; none: only for a laptop, refused unless said explicitly.
    auth: Literal["bearer", "basic", "none"] = "bearer"
    basic_username: str = "alertmanager"


class SlackConfig(Strict):
    api_url: str = "https://slack.com/api/"
    incident_channel: str | None = Field(None, description="#incident-response channel id")
    operator_channel: str | None = Field(None, description="where failed side effects go")
    # Button presses, modal submissions and /incident arrive over a WebSocket the
    # router opens (SLACK_APP_TOKEN, xapp-...) instead of signed POSTs: for a router the
    # internet cannot reach. The HTTP endpoints keep working beside it.
    socket_mode: bool = False


class GithubConfig(Strict):
    api_url: str = "https://api.github.com"
    repo: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$")
    allow_public_repo: bool = False


class PagerdutyConfig(Strict):
    events_url: str = "https://events.pagerduty.com/v2/enqueue"


class IncidentSection(IncidentConfig):
    """The ``incident:`` section: the commander's duties (``router.core.policy_config``)
    and the collaborative doc, which only the Google adapter reads."""

    # The collaborative doc (a Google Doc copied from a template) made with the tracking
    # issue and on `/incident doc`; null: no doc. The key is GOOGLE_APPLICATION_CREDENTIALS.
    doc: DocConfig | None = None


class OncallSection(OncallConfig):
    """The ``oncall:`` section: who answers ``who_is_on`` (``provider``), the rotations
    and the responder group.

    ``provider: config`` (the default): the rotations answer; they must define
    eng-primary. ``provider: pagerduty``: PagerDuty's schedules answer (``pagerduty:``,
    the token is PAGERDUTY_API_TOKEN); rotations are optional and answer only until
    PagerDuty has answered once.
    """

    provider: OncallProvider = "config"
    pagerduty: PagerDutyOncallConfig | None = None
    rotations: dict[str, RotationConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> OncallSection:
        found = [p for name, r in self.rotations.items() for p in r.problems(name)]
        if self.provider == "config" and ENG_PRIMARY not in self.rotations:
            found.insert(0, f"oncall.rotations must define {ENG_PRIMARY!r}: it is paged first")
        found += provider_problems(self.provider, self.pagerduty, self.rotations)
        if found:
            raise ValueError("; ".join(found))
        return self


class RouterConfig(Strict):
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()
    slack: SlackConfig = SlackConfig()
    github: GithubConfig = GithubConfig()
    pagerduty: PagerdutyConfig = PagerdutyConfig()
    paging: PagingConfig = PagingConfig()
    triage: TriageConfig = TriageConfig()
    oncall: OncallSection | None = None
    # Public notices on Atlassian Statuspage (the key is STATUSPAGE_API_KEY); null: none.
    statuspage: StatuspageConfig | None = None
    # Without a severity section the policy table's own rules apply (router.core.severity).
    severity: SeverityConfig = DEFAULT_RULES
    incident: IncidentSection = IncidentSection()
    # The web console at /ui/ (router.adapters.web.config); absent: no console.
    web: WebConfig | None = None

    @model_validator(mode="after")
    def _cross_references(self) -> RouterConfig:
        if self.slack.incident_channel and self.slack.incident_channel.startswith("#"):
            raise ValueError(
                "slack.incident_channel must be a channel id like C0123456789, not a name"
            )
        return self


@dataclass(frozen=True, repr=False)
class Secrets:
    """Secrets from the environment. ``repr`` and ``masked`` never show a value."""

    SLACK_BOT_TOKEN: str | None = None
    SLACK_SIGNING_SECRET: str | None = None
    GITHUB_TOKEN: str | None = None
    PAGERDUTY_WEBHOOK_SECRET: str | None = None
    PAGERDUTY_ROUTING_KEY: str | None = None
    ALERTMANAGER_TOKEN: str | None = None
    STATUSPAGE_API_KEY: str | None = None
    PAGERDUTY_API_TOKEN: str | None = None  # the REST API (on-call), not the routing key
    # A path to the service account key file, not the key: shown only as set or not.
    GOOGLE_APPLICATION_CREDENTIALS: str | None = None
    SLACK_APP_TOKEN: str | None = None  # xapp-...: Socket Mode (slack.socket_mode)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if environ is None else environ
        values: dict[str, str | None] = {}
        for f in fields(cls):
            value = env.get(f.name) or None
            path = env.get(f.name + "_FILE")
            if value is None and path:
                try:
                    value = Path(path).read_text().strip() or None
                except OSError as exc:
                    message = f"{f.name}_FILE: cannot read {path}: {exc.strerror}"
                    raise ConfigError(message) from exc
            values[f.name] = value
        return cls(**values)

    def masked(self) -> dict[str, str]:
        def shown(name: str, value: str | None) -> str:
            if not value:
                return "not set"
            return "set" if name in _PATHS else f"set ({len(value)} chars)"

        return {f.name: shown(f.name, getattr(self, f.name)) for f in fields(self)}

    def __repr__(self) -> str:
        return f"Secrets({self.masked()})"


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[list[str], Any]]:
    out = []
    for name, raw in sorted(environ.items()):
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
            out.append((path, yaml.safe_load(raw) if raw else raw))
    return out


def _apply(document: dict[str, Any], path: list[str], value: Any) -> None:
    node = document
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"env override {'.'.join(path)}: {key} is not a section")
        node = child
    node[path[-1]] = value


def describe_validation_error(exc: ValidationError) -> str:
    return describe_errors(exc)


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> RouterConfig:
    """Read the YAML file (or nothing), apply env overrides, validate strictly."""
    env = os.environ if environ is None else environ
    document: Any = {}
    if path is not None:
        try:
            document = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise ConfigError(f"config {path} must be a mapping of sections")
    for key_path, value in _env_overrides(env):
        _apply(document, key_path, value)
    try:
        return RouterConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from exc


def check_startable(config: RouterConfig, secrets: Secrets) -> list[str]:
    """Problems that make ``serve`` refuse to start (the file alone can be valid)."""
    problems = []
    if config.alertmanager.auth != "none" and not secrets.ALERTMANAGER_TOKEN:
        problems.append(
            "ALERTMANAGER_TOKEN is not set: Alertmanager webhooks would all be refused "
            "(set it, or alertmanager.auth: none for a local trial)"
        )
    if (
        secrets.SLACK_BOT_TOKEN
        and not secrets.SLACK_SIGNING_SECRET
        and not config.slack.socket_mode
    ):
        problems.append("SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not")
    if config.statuspage is not None and not secrets.STATUSPAGE_API_KEY:
        problems.append("statuspage is configured but STATUSPAGE_API_KEY is not set")
    if config.incident.doc is not None and not secrets.GOOGLE_APPLICATION_CREDENTIALS:
        problems.append(
            "incident.doc is configured but GOOGLE_APPLICATION_CREDENTIALS (the path of"
            " the service account key file) is not set"
        )
    if (
        config.oncall is not None
        and config.oncall.provider == "pagerduty"
        and not secrets.PAGERDUTY_API_TOKEN
    ):
        problems.append("oncall.provider is pagerduty but PAGERDUTY_API_TOKEN is not set")
    if config.web is not None:
        problems += console_startable(config.web, ConsoleSecrets.from_env(quiet=True))
    if config.slack.socket_mode:
        if not secrets.SLACK_APP_TOKEN:
            problems.append(
                "slack.socket_mode is true but SLACK_APP_TOKEN is not set (an app-level "
                "token, xapp-..., with connections:write)"
            )
        elif not secrets.SLACK_APP_TOKEN.startswith("xapp-"):
            problems.append(
                "SLACK_APP_TOKEN must be an app-level token (xapp-...) with "
                "connections:write; a bot token (xoxb-...) cannot open Socket Mode"
            )
    return problems


def config_warnings(config: RouterConfig) -> list[str]:
    """What a valid config does that its operator probably does not mean
    (``check-config`` prints them, ``serve`` logs them at start)."""
    warnings = []
    if config.oncall is None:
        warnings.append(
            "oncall: no on-call schedule is configured: alerts are recorded, but nobody "
            "is paged and /incident commands do nothing (add an oncall section, as in "
            "config/router.example.yaml)"
        )
    if config.web is not None and config.web.auth.mode == "proxy":
        # Whoever can connect from a trusted address can claim to be anyone.
        wide = [str(n) for n in config.web.auth.trusted_proxies if n.num_addresses > 2**24]
        if wide:
            warnings.append(
                f"web.auth.trusted_proxies: {', '.join(wide)} is wider than a /8: anyone "
                "connecting from there can sign in to the console as anyone (list only "
                "the sign-in proxy's addresses)"
            )
    return warnings
