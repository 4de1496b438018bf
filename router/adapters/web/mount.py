"""The console wired to the running router: its store, its registry, its people.

``create_app`` calls :func:`mount_console` when the configuration has a ``web``
section. The console then reads the router's own store (``StoreSource``), counts on
the router's registry (``/metrics``), knows the responder group from
``oncall.responders``, and, in proxy mode with a Slack bot token, maps the e-mail the
proxy vouches for to the Slack user (``users.lookupByEmail``, cached), so a person is
the same responder in the console as in Slack.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from router.adapters.store import Store
from router.adapters.web.access import ResponderAccess
from router.adapters.web.app import create_console
from router.adapters.web.config import ConsoleSecrets, WebConfig
from router.adapters.web.directory import PeopleNames, SlackDirectory, UserDirectory
from router.adapters.web.metrics import ConsoleMetrics
from router.adapters.web.source import SlackLinks, StoreSource
from router.app.clock import Clock
from router.config import RouterConfig, Secrets

PREFIX = "/ui/"


def mount_console(
    app: web.Application,
    config: RouterConfig,
    secrets: Secrets,
    *,
    store: Store,
    registry: CollectorRegistry,
    clock: Clock,
    console_secrets: ConsoleSecrets | None = None,
    directory: UserDirectory | None = None,
) -> web.Application:
    """Add the console at ``/ui/`` to ``app`` (and ``/ui`` sending there); returns it."""
    web_config: WebConfig | None = config.web
    assert web_config is not None, "mount_console needs a web section"
    # With a bot token, Slack says who an e-mail is (proxy mode) and what people are
    # called; without one, people are shown by their ids.
    slack = SlackDirectory(secrets.SLACK_BOT_TOKEN, config.slack.api_url) if (
        secrets.SLACK_BOT_TOKEN
    ) else None  # fmt: skip
    if directory is None and web_config.auth.mode == "proxy":
        directory = slack
    names: PeopleNames | None = slack
    team = web_config.auth.slack.team_id if web_config.auth.slack else None
    responders = config.oncall.responders if config.oncall is not None else []
    console = create_console(
        web_config,
        source=StoreSource(store, config.incident, SlackLinks(team_id=team), clock, names=names),
        access=ResponderAccess(responders),
        secrets=console_secrets or ConsoleSecrets.from_env(),
        metrics=ConsoleMetrics(registry),
        clock=clock,
        slack_api_url=config.slack.api_url,
        directory=directory,
    )
    # Before the sub-application, whose prefix would match "/ui" too.
    app.router.add_get(PREFIX.rstrip("/"), _to_console)
    app.add_subapp(PREFIX, console)
    return console


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(PREFIX)
