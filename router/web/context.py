"""What handlers need, behind one typed app key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from router.clock import Clock
from router.config import RouterConfig, Secrets
from router.intake import Intake
from router.metrics import Metrics
from router.store import Store


@dataclass
class Services:
    config: RouterConfig
    secrets: Secrets
    store: Store
    metrics: Metrics
    clock: Clock
    intake: Intake
    draining: bool = False  # set on SIGTERM: readiness goes false


SERVICES = web.AppKey("services", Services)
