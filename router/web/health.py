"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from router.store import StoreError
from router.web.context import SERVICES


async def healthz(request: web.Request) -> web.Response:
    # Liveness only: the process answers. A sick store must not get the pod killed.
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if services.draining:
        return web.json_response({"status": "draining"}, status=503)
    try:
        await asyncio.wait_for(services.store.ping(), timeout=2.0)
    except (StoreError, TimeoutError) as exc:
        return web.json_response({"status": "store_unavailable", "message": str(exc)}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[SERVICES].metrics.registry
    # CONTENT_TYPE_LATEST carries a charset, which aiohttp refuses in content_type=.
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
