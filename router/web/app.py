"""The one application factory, used by ``router serve`` and by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from router.clock import Clock, SystemClock
from router.config import RouterConfig, Secrets
from router.intake import Intake
from router.metrics import Metrics
from router.store import Store, open_store
from router.web import health, webhooks
from router.web.context import SERVICES, Services
from router.web.errors import make_middleware


def create_app(
    config: RouterConfig,
    secrets: Secrets,
    *,
    store: Store | None = None,
    metrics: Metrics | None = None,
    clock: Clock | None = None,
) -> web.Application:
    metrics = metrics or Metrics()
    clock = clock or SystemClock()
    store = store or open_store(config.store.url)
    intake = Intake(store, metrics, clock, config.triage)
    services = Services(config, secrets, store, metrics, clock, intake)

    app = web.Application(
        middlewares=[make_middleware(metrics)],
        # aiohttp's own cap, a little above ours so our JSON 413 answers first
        client_max_size=config.server.max_body_bytes + 1,
    )
    app[SERVICES] = services
    app.router.add_post("/webhooks/alertmanager", webhooks.alertmanager_webhook)
    app.router.add_post("/webhooks/pagerduty", webhooks.pagerduty_webhook)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.cleanup_ctx.append(_store_ctx)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[SERVICES].store
    await store.open()
    yield
    await store.close()
