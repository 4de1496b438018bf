"""The wiring: the one application factory, used by ``router serve`` and by the tests.

The order of things at start: open the store, then start the outbox worker and the
inbox processor; at stop, readiness goes false first, in-flight requests finish, the
inbox processor applies what is waiting (up to the shutdown grace), the worker
releases its claims, then the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

from router.adapters.alertmanager import webhook as alertmanager
from router.adapters.grafana import webhook as grafana
from router.adapters.http import health, webhooks
from router.adapters.http.budget import BodyBudget
from router.adapters.http.context import SERVICES, Services
from router.adapters.http.errors import make_middleware
from router.adapters.slack import inbound_commands as commands
from router.adapters.slack import inbound_interactions as interactions
from router.adapters.slack import scopes as slack_scopes
from router.adapters.slack import signing
from router.adapters.slack.opener import ConsoleViews, SlackViews, ViewOpener
from router.adapters.slack.socket_mode import SocketModeMetrics, SocketModeReceiver
from router.adapters.store import Store, StoreError, open_store
from router.adapters.web.config import ConsoleSecrets
from router.app.clock import Clock, SystemClock
from router.app.effects import Adapter, PermanentFailure, RetryLater
from router.app.inbox import InboxProcessor
from router.app.intake import Intake
from router.app.outbox import OutboxWorker
from router.app.ports import BodyParser
from router.config import RouterConfig, Secrets
from router.core.oncall import Schedule
from router.core.oncall_snapshot import CurrentOncall, OnCallSchedule, RefreshingOncall
from router.core.policy import Outcome, Policy
from router.core.public_notice import PublicPage
from router.metrics import Metrics

if TYPE_CHECKING:
    from router.adapters.slack.directory import SlackDirectory

log = logging.getLogger(__name__)

WORKER = web.AppKey("worker", OutboxWorker)
SOCKET = web.AppKey("socket_mode", SocketModeReceiver)
INBOX = web.AppKey("inbox", InboxProcessor)
ONCALL = web.AppKey("oncall", RefreshingOncall)
FIRST_ONCALL_WAIT = 15.0  # seconds the start waits for the on-call provider's answer
# How the inbox processor reads each webhook's stored bodies (checked when received).
INBOX_PARSERS: dict[str, BodyParser] = {
    "alertmanager": alertmanager.parse_raw,  # Grafana's version "1" too, sent there
    "grafana": grafana.parse_raw,
}


def build_policy(
    config: RouterConfig, secrets: Secrets, schedule: OnCallSchedule | None = None
) -> Policy | None:
    """``schedule``: who answers on-call questions (default: the config's rotations)."""
    if config.oncall is None:
        return None
    return Policy(
        schedule=schedule or Schedule(config.oncall),
        paging=config.paging,
        severity=config.severity,
        responders=frozenset(config.oncall.responders),
        incident_channel=config.slack.incident_channel,
        operator_channel=config.slack.operator_channel,
        pagerduty=bool(secrets.PAGERDUTY_ROUTING_KEY),
        github=bool(config.github.repo and secrets.GITHUB_TOKEN),
        incident=config.incident,
        doc=bool(config.incident.doc and secrets.GOOGLE_APPLICATION_CREDENTIALS),
        statuspage=_public_page(config, secrets),
        console_url=_console_url(config),
        channels=config.incident.channel if config.incident.channel.mode == "channel" else None,
    )


def _console_url(config: RouterConfig) -> str | None:
    """Where Slack messages link to the console (``web.public_url``), if anywhere."""
    if config.web is None or config.web.public_url is None:
        return None
    return config.web.public_url + "/ui"


def _public_page(config: RouterConfig, secrets: Secrets) -> PublicPage | None:
    page = config.statuspage
    if page is None or not secrets.STATUSPAGE_API_KEY:
        return None
    return PublicPage(incident_name=page.incident_name, resolution_text=page.resolution_text)


def build_directory(config: RouterConfig, secrets: Secrets) -> SlackDirectory | None:
    """Slack's directory (e-mail <-> Slack id), for the on-call provider and the doc."""
    if not secrets.SLACK_BOT_TOKEN:
        return None
    from slack_sdk.web.async_client import AsyncWebClient

    from router.adapters.slack.directory import SlackDirectory

    return SlackDirectory(AsyncWebClient(secrets.SLACK_BOT_TOKEN, base_url=config.slack.api_url))


def build_oncall(
    config: RouterConfig,
    secrets: Secrets,
    metrics: Metrics,
    clock: Clock,
    directory: SlackDirectory | None,
) -> RefreshingOncall | None:
    """The PagerDuty on-call provider with ``oncall.provider: pagerduty``, else None."""
    oncall = config.oncall
    if oncall is None or oncall.provider != "pagerduty" or oncall.pagerduty is None:
        return None
    from router.adapters.pagerduty.oncall import OncallMetrics, PagerDutyOncall

    async def slack_id(email: str) -> str | None:
        return await directory.slack_id_for_email(email) if directory is not None else None

    return PagerDutyOncall(
        oncall.pagerduty,
        secrets.PAGERDUTY_API_TOKEN or "",
        slack_id,
        fallback=Schedule(oncall) if oncall.rotations else None,
        clock=clock,
        metrics=OncallMetrics(metrics.registry),
    )


def build_adapters(
    config: RouterConfig, secrets: Secrets, directory: SlackDirectory | None = None
) -> list[Adapter]:
    """Real adapters where a credential is set; the console stand-in for Slack if not."""
    adapters: list[Adapter] = []
    if secrets.SLACK_BOT_TOKEN:
        from router.adapters.slack.client import SlackAdapter

        adapters.append(SlackAdapter(secrets.SLACK_BOT_TOKEN, config.slack.api_url))
    else:
        from router.adapters.slack.console import ConsoleAdapter

        log.warning("SLACK_BOT_TOKEN is not set: Slack messages are printed to stdout instead")
        adapters.append(ConsoleAdapter(sys.stdout))
    if config.github.repo and secrets.GITHUB_TOKEN:
        from router.adapters.github.issues import GitHubAdapter

        adapters.append(
            GitHubAdapter(
                config.github.api_url,
                secrets.GITHUB_TOKEN,
                config.github.repo,
                allow_public_repo=config.github.allow_public_repo,
            )
        )
    if secrets.PAGERDUTY_ROUTING_KEY:
        from router.adapters.pagerduty.events import PagerDutyAdapter

        adapters.append(
            PagerDutyAdapter(config.pagerduty.events_url, secrets.PAGERDUTY_ROUTING_KEY)
        )
    doc = config.incident.doc
    if doc is not None and secrets.GOOGLE_APPLICATION_CREDENTIALS:
        from router.adapters.google.docs import (
            CredentialsError,
            DocAdapter,
            GoogleDocs,
            load_credentials,
        )

        try:
            credentials = load_credentials(secrets.GOOGLE_APPLICATION_CREDENTIALS, doc.token_uri)
        except CredentialsError as exc:  # serve refuses to start, naming the file
            raise RuntimeError(str(exc)) from None

        async def email_of(user: str) -> str | None:
            return await directory.email_for_user(user) if directory is not None else None

        async def name_of(user: str) -> str | None:
            return await directory.name_for_user(user) if directory is not None else None

        adapters.append(DocAdapter(GoogleDocs(doc, credentials), email_of, name_of))
    if config.statuspage is not None and secrets.STATUSPAGE_API_KEY:
        from router.adapters.statuspage.notice import StatuspageAdapter

        adapters.append(StatuspageAdapter(config.statuspage, secrets.STATUSPAGE_API_KEY))
    return adapters


def build_views(config: RouterConfig, secrets: Secrets) -> ViewOpener:
    """Forms open in Slack with the bot token, else they are printed with the console."""
    if secrets.SLACK_BOT_TOKEN:
        return SlackViews(secrets.SLACK_BOT_TOKEN, config.slack.api_url)
    return ConsoleViews(sys.stdout)


def create_app(
    config: RouterConfig,
    secrets: Secrets,
    *,
    store: Store | None = None,
    metrics: Metrics | None = None,
    clock: Clock | None = None,
    adapters: Sequence[Adapter] | None = None,
    run_worker: bool = True,
    run_inbox: bool = True,
    worker_id: str | None = None,
    poll_seconds: float = 1.0,
    console_secrets: ConsoleSecrets | None = None,
) -> web.Application:
    metrics = metrics or Metrics()
    clock = clock or SystemClock()
    store = store or open_store(config.store.url)
    directory = build_directory(config, secrets)
    oncall = build_oncall(config, secrets, metrics, clock, directory)
    schedule = CurrentOncall(oncall.current) if oncall is not None else None
    policy = build_policy(config, secrets, schedule)
    intake = Intake(store, metrics, clock, config.triage, policy)
    verifier = (
        signing.verifier(secrets.SLACK_SIGNING_SECRET, clock)
        if secrets.SLACK_SIGNING_SECRET
        else None
    )
    services = Services(config, secrets, store, metrics, clock, intake, policy, verifier,
                        views=build_views(config, secrets),
                        body_budget=BodyBudget(config.server.max_inflight_body_bytes))  # fmt: skip
    worker = OutboxWorker(
        store,
        list(adapters) if adapters is not None else build_adapters(config, secrets, directory),
        metrics,
        clock,
        policy,
        worker_id,
        poll_seconds=poll_seconds,
        operator_channel=config.slack.operator_channel,
        on_outcome=services.observe,
    )
    services.kick = worker.kick
    inbox = InboxProcessor(
        store, intake, metrics, clock, parsers=INBOX_PARSERS, poll_seconds=poll_seconds,
        operator_channel=config.slack.operator_channel,
    )  # fmt: skip
    intake.on_enqueued = inbox.kick

    def committed(outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            services.observe(outcome)
        worker.kick()

    intake.on_committed = committed

    app = web.Application(
        middlewares=[make_middleware(metrics)],
        # aiohttp's own cap, a little above ours so our JSON 413 answers first
        client_max_size=config.server.max_body_bytes + 1,
    )
    app[SERVICES] = services
    app[WORKER] = worker
    app[INBOX] = inbox
    app.router.add_post("/webhooks/alertmanager", webhooks.alertmanager_webhook)
    app.router.add_post("/webhooks/grafana", webhooks.grafana_webhook)
    app.router.add_post("/webhooks/pagerduty", webhooks.pagerduty_webhook)
    for endpoint in ("/webhooks/alertmanager", "/webhooks/pagerduty"):
        # From zero at start, so an alert rule sees the very first 413 as an increase
        # (Alertmanager never retries one: that group would reach nobody).
        metrics.rejections.labels(endpoint, "body_too_large")
    app.router.add_post("/slack/interactions", interactions.slack_interactions)
    app.router.add_post("/slack/commands", commands.slack_commands)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/openapi.json", health.openapi)
    if config.web is not None:
        from router.adapters.web.mount import mount_console

        mount_console(app, config, secrets, store=store, registry=metrics.registry,
                      clock=clock, console_secrets=console_secrets)  # fmt: skip
    app.cleanup_ctx.append(_store_ctx)
    if oncall is not None:
        app[ONCALL] = oncall
        app.cleanup_ctx.append(_oncall_ctx)
    if run_worker:
        app.cleanup_ctx.append(_worker_ctx)
    if config.slack.socket_mode and secrets.SLACK_APP_TOKEN:
        app[SOCKET] = socket_receiver(services, metrics)
        app.cleanup_ctx.append(_socket_ctx)
    if run_inbox:
        app.cleanup_ctx.append(_inbox_ctx)  # cleaned up first: its jobs reach the store
    app.on_shutdown.append(_drain)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[SERVICES].store
    await store.open()
    yield
    await store.close()


async def _oncall_ctx(app: web.Application) -> AsyncIterator[None]:
    """The on-call provider refreshes on its own clock; pages ask its last answer.

    The first answer is awaited (at most ``FIRST_ONCALL_WAIT`` seconds) before the app
    serves, so the first page goes to the person the provider names; if it does not
    come in time the config's rotations answer until it does."""
    provider = app[ONCALL]
    try:
        await asyncio.wait_for(provider.refresh(), timeout=FIRST_ONCALL_WAIT)
    except TimeoutError:
        log.warning("on-call provider: no answer within %.0fs at start", FIRST_ONCALL_WAIT)
    task = asyncio.create_task(provider.run(refreshed=True), name="oncall-refresh")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await provider.close()


async def _worker_ctx(app: web.Application) -> AsyncIterator[None]:
    worker = app[WORKER]
    for adapter in worker.adapters:
        check = getattr(adapter, "check_repository", None)
        if check is not None:
            # Confidential by default: refuse to start on a public tracking repo.
            problem = await check()
            if problem is not None and "public" in problem:
                raise RuntimeError(problem)
            if problem is not None:
                log.error("github: %s (tracking issues will fail until fixed)", problem)
    config = app[SERVICES].config
    used = slack_scopes.features(
        channels=config.incident.channel.mode == "channel", private=config.incident.channel.private
    )
    for adapter in worker.adapters:
        check_scopes = getattr(adapter, "check_scopes", None)
        if check_scopes is None:
            continue
        # Say which scope is missing before a job fails for it (Slack's missing_scope).
        try:
            problem = await check_scopes(used)
        except (RetryLater, PermanentFailure) as exc:
            log.warning("slack: could not read the token's scopes: %s", exc.reason)
            continue
        if problem is not None:
            log.error("slack: %s", problem)
    task = asyncio.create_task(worker.run(), name="outbox-worker")
    yield
    worker.stop()
    with contextlib.suppress(asyncio.CancelledError):
        try:
            # a job in flight gets the same grace as an in-flight request
            grace = app[SERVICES].config.server.shutdown_grace_seconds
            await asyncio.wait_for(task, timeout=grace)
        except TimeoutError:
            # Cancelled mid-job (a side effect that hangs): give the claims back anyway,
            # so another replica runs them now rather than when the lease runs out.
            log.error("outbox worker did not stop in time; its jobs were cancelled")
            await worker.release()
    for adapter in worker.adapters:
        close = getattr(adapter, "close", None)
        if close is not None:
            await close()


def socket_receiver(services: Services, metrics: Metrics) -> SocketModeReceiver:
    """Socket Mode: Slack's presses, commands and submissions over a WebSocket the router
    opens, handed to the same handlers as the signed HTTP endpoints."""
    from router.adapters.slack.socket import inbound_handler

    assert services.secrets.SLACK_APP_TOKEN is not None
    return SocketModeReceiver(
        services.secrets.SLACK_APP_TOKEN,
        inbound_handler(services),
        metrics=SocketModeMetrics(metrics.registry),
        api_url=services.config.slack.api_url,
    )


async def _socket_ctx(app: web.Application) -> AsyncIterator[None]:
    receiver = app[SOCKET]
    await receiver.start()
    yield
    await receiver.stop()


async def _inbox_ctx(app: web.Application) -> AsyncIterator[None]:
    inbox = app[INBOX]
    task = asyncio.create_task(inbox.run(), name="inbox-processor")
    yield
    inbox.stop()
    grace = app[SERVICES].config.server.shutdown_grace_seconds
    with contextlib.suppress(asyncio.CancelledError):
        try:
            await asyncio.wait_for(task, timeout=grace)
            # What is still waiting is applied now, within the grace; the rest waits
            # durably for the next start (or another replica's processor).
            await asyncio.wait_for(inbox.drain(), timeout=grace)
        except TimeoutError:
            log.warning("inbox: shutdown grace over; the rest is applied at the next start")
        except StoreError as exc:
            log.error("inbox: store unavailable at shutdown; applied at the next start: %s", exc)


async def _drain(app: web.Application) -> None:
    # Readiness goes false first, so a load balancer stops sending before we stop.
    app[SERVICES].draining = True
