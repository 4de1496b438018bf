"""What handlers need, behind one typed app key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from router.adapters.http.budget import BodyBudget
from router.adapters.slack.opener import ViewOpener
from router.adapters.store import Store
from router.app.clock import Clock
from router.app.intake import Intake
from router.config import RouterConfig, Secrets
from router.core.policy import Outcome, Policy
from router.metrics import Metrics


@dataclass
class Services:
    config: RouterConfig
    secrets: Secrets
    store: Store
    metrics: Metrics
    clock: Clock
    intake: Intake
    policy: Policy | None = None  # None: no on-call schedule, so intake only
    slack_verifier: SignatureVerifier | None = None
    views: ViewOpener | None = None  # opens Slack forms (modals); None: none can open
    body_budget: BodyBudget = field(default_factory=lambda: BodyBudget(64 * 1024 * 1024))
    kick: Callable[[], None] = field(default=lambda: None)  # wake the outbox worker
    draining: bool = False  # set on shutdown: readiness goes false

    def observe(self, outcome: Outcome, decision_seconds: float | None = None) -> None:
        self.metrics.record_outcome(outcome, decision_seconds)


SERVICES = web.AppKey("services", Services)
