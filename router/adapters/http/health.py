"""Liveness, readiness, the Prometheus scrape endpoint and the OpenAPI description."""

from __future__ import annotations

import asyncio
import functools
from importlib import resources

import yaml
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic_core import to_json

from router.adapters.http.context import SERVICES
from router.adapters.store import StoreError


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


@functools.cache
def _openapi_document() -> bytes:
    # Written by hand in YAML (comments, readable diffs), served as JSON.
    text = resources.files("router.adapters.http").joinpath("openapi.yaml").read_text()
    return to_json(yaml.safe_load(text))


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this interface (``router/adapters/http/openapi.yaml``)."""
    return web.Response(body=_openapi_document(), content_type="application/json")
