"""The web console mounted at /ui/ on a bare aiohttp app, as the router will mount it,
for the console's handler and browser tests."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from router.adapters.web import (
    ConsoleMetrics,
    ConsoleSecrets,
    ResponderAccess,
    UserDirectory,
    WebConfig,
    create_console,
)
from router.adapters.web.views import ConsoleSource
from router.app.clock import Clock

SECRET = b"console-test-secret-0123456789ab"
HTML = {"Accept": "text/html,application/xhtml+xml"}


def proxy_config(trusted: Iterable[str] = ("127.0.0.1/32",), **auth: Any) -> WebConfig:
    return WebConfig.model_validate(
        {"auth": {"mode": "proxy", "trusted_proxies": list(trusted), **auth}}
    )


def slack_config(oidc_url: str, public_url: str = "http://console.test", **slack: Any) -> WebConfig:
    return WebConfig.model_validate(
        {
            "public_url": public_url,
            "auth": {
                "mode": "slack",
                "slack": {
                    "client_id": "1234567890.0987654321",
                    "team_id": "T0FAKETEAM",
                    "oidc_url": oidc_url,
                    **slack,
                },
            },
        }
    )


def mount(
    config: WebConfig,
    source: ConsoleSource,
    clock: Clock,
    *,
    registry: CollectorRegistry | None = None,
    responders: Iterable[str] = (),
    directory: UserDirectory | None = None,
    slack_api_url: str = "https://slack.invalid/api/",
    client_secret: str | None = "fake-client-secret",
) -> web.Application:
    app = web.Application()
    console = create_console(
        config,
        source=source,
        access=ResponderAccess(responders),
        secrets=ConsoleSecrets(SECRET, False, client_secret),
        metrics=ConsoleMetrics(registry or CollectorRegistry()),
        clock=clock,
        slack_api_url=slack_api_url,
        directory=directory,
    )
    app.add_subapp("/ui/", console)
    return app


@contextlib.asynccontextmanager
async def client_for(app: web.Application) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(app)) as client:
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)
