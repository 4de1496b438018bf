"""``router serve | check-config | oncall | explain``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from router.config import (
    ConfigError,
    RouterConfig,
    Secrets,
    check_startable,
    config_warnings,
    load_config,
)
from router.logs import limit_repeats


def _load(args: argparse.Namespace) -> RouterConfig:
    return load_config(args.config or os.environ.get("ROUTER_CONFIG"))


def mask_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    secrets = Secrets.from_env()
    effective = config.model_dump(mode="json")
    effective["store"]["url"] = mask_url(effective["store"]["url"])
    print("# effective configuration (file + ROUTER__ overrides + defaults)")
    print(yaml.safe_dump(effective, sort_keys=False).rstrip())
    print("# secrets (from the environment; values never shown)")
    masked = secrets.masked()
    if config.web is not None:
        from router.adapters.web.config import ConsoleSecrets

        masked |= ConsoleSecrets.from_env().masked()
    print(yaml.safe_dump(masked, sort_keys=False).rstrip())
    problems = check_startable(config, secrets)
    warnings = config_warnings(config)
    if secrets.SLACK_BOT_TOKEN:
        warnings += _slack_scope_warnings(config, secrets.SLACK_BOT_TOKEN)
    for problem in problems + warnings:
        print(f"warning: {problem}", file=sys.stderr)
    if problems:
        print("config ok, but serve would refuse to start")
    elif warnings:
        print(f"config ok, with {len(warnings)} warning(s) above")
    else:
        print("config ok")
    return 0


def _slack_scope_warnings(config: RouterConfig, token: str) -> list[str]:
    """Ask Slack which scopes the bot token holds (auth.test) and name the missing ones."""
    from slack_sdk.web.async_client import AsyncWebClient

    from router.adapters.slack import scopes
    from router.app.effects import PermanentFailure, RetryLater

    used = scopes.features(
        channels=config.incident.channel.mode == "channel", private=config.incident.channel.private
    )

    async def check() -> str | None:
        return await scopes.check_token(
            AsyncWebClient(token=token, base_url=config.slack.api_url, timeout=10), used
        )

    try:
        problem = asyncio.run(check())
    except (RetryLater, PermanentFailure) as exc:
        return [f"could not check the Slack token's scopes: {exc.reason}"]
    return [problem] if problem else []


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args)
    secrets = Secrets.from_env()
    problems = check_startable(config, secrets)
    if problems:
        for problem in problems:
            print(f"router: {problem}", file=sys.stderr)
        return 2
    # While a part is down the same warning would come per webhook and per retry.
    repeats = limit_repeats()
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(config, secrets))
    except RuntimeError as exc:  # a start-up check refused (e.g. a public tracking repo)
        print(f"router: {exc}", file=sys.stderr)
        return 2
    finally:
        for repeat in repeats:
            repeat.flush()
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (a dependency, except on Windows): its loop costs
    less per request than asyncio's, and a webhook is mostly loop work. Set
    ``ROUTER_EVENT_LOOP=asyncio`` to run on asyncio's own."""
    if os.environ.get("ROUTER_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def serve(config: RouterConfig, secrets: Secrets) -> None:
    """Serve until SIGTERM or SIGINT, then shut down in the order a load balancer needs:
    readiness goes false, (after ``server.drain_seconds``) the listener closes and new
    connections are refused, in-flight requests finish (up to
    ``server.shutdown_grace_seconds``), the outbox worker gives its claimed jobs back,
    and the store closes."""
    from aiohttp import web

    from router.adapters.http.context import SERVICES
    from router.adapters.http.protocol import Runner
    from router.bootstrap import create_app

    log = logging.getLogger("router")
    app = create_app(config, secrets)
    runner = Runner(
        app,
        handle_signals=False,
        access_log=None,  # paths and codes are in metrics; keep the log for events
        shutdown_timeout=config.server.shutdown_grace_seconds,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port)
    await site.start()
    _quiet_garbage_collector()
    for warning in config_warnings(config):
        log.warning("%s", warning)
    loop_name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    log.info("listening on %s:%s (%s loop)", config.server.host, config.server.port, loop_name)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down: readiness is false now")
    app[SERVICES].draining = True
    await asyncio.sleep(config.server.drain_seconds)
    await runner.cleanup()
    log.info("stopped")


def _quiet_garbage_collector() -> None:
    """Keep the cyclic garbage collector out of the webhooks' tail latency.

    Everything built at start-up (modules, config, app) lives as long as the process,
    yet every older-generation collection walked it all again. Under load (wrk, 32
    connections) p99 was 45 to 60 ms with it and about 20 ms once frozen. ``gc.freeze``
    moves it out of the collector's sight. Cycles made later are still collected."""
    gc.collect()
    gc.freeze()


def cmd_oncall(args: argparse.Namespace) -> int:
    from router.core.oncall import Schedule, format_oncall

    config = _load(args)
    if config.oncall is None:
        raise ConfigError("oncall: no on-call schedule is configured")
    at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if config.oncall.provider == "pagerduty":
        print(asyncio.run(_provider_oncall(config, Secrets.from_env(), at)))
        return 0
    print(format_oncall(Schedule(config.oncall), at))
    return 0


async def _provider_oncall(config: RouterConfig, secrets: Secrets, at: datetime) -> str:
    """Ask the provider once about the window from ``at`` (as ``serve`` asks from now),
    and say where each answer came from (PagerDuty, or the config's rotations when it
    did not answer)."""
    from router.app.clock import FrozenClock
    from router.bootstrap import build_directory, build_oncall
    from router.core.oncall_snapshot import format_view
    from router.metrics import Metrics

    if not secrets.PAGERDUTY_API_TOKEN:
        raise ConfigError("oncall.provider is pagerduty but PAGERDUTY_API_TOKEN is not set")
    provider = build_oncall(
        config, secrets, Metrics(), FrozenClock(at), build_directory(config, secrets)
    )
    assert provider is not None
    try:
        await provider.refresh()
        return format_view(provider.current(), at)
    finally:
        await provider.close()


def cmd_explain(args: argparse.Namespace) -> int:
    from router.adapters.alertmanager import webhook as alertmanager
    from router.adapters.payload import PayloadError
    from router.core.severity import suggest
    from router.core.triage import triage

    config = _load(args)
    try:
        alerts = alertmanager.parse_file(Path(args.file).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {args.file}: {exc}") from exc
    except PayloadError as exc:
        raise ConfigError(f"{args.file}: {exc.field or 'payload'}: {exc.message}") from exc
    alerts = triage(alerts, config.triage)
    pageable = [a for a in alerts if a.pageable]
    for alert in alerts:
        if not alert.pageable:
            print(f"not paged: {alert.name} ({alert.fingerprint}) follows normal remediation")
    if not pageable:
        print("nothing to page")
        return 0
    print(suggest(pageable, config.severity).explain())
    return 0


_SELECTS = ("page.dismiss_reason", "incident.severity")


def _form_view(callback_id: str, meta: dict[str, object]) -> dict[str, object]:
    """The form ``callback_id`` as the console showed it, for filling in: its fields
    come from the form's builder, its ``private_metadata`` from ``--meta``."""
    from router.core import modals
    from router.core.incident import Flag, Incident, IncidentStatus
    from router.core.severity import POLICY_CLAUSES, Severity, Suggestion

    number = meta.get("incident")
    number = number if isinstance(number, int) else 0
    # Only the fields' shapes matter: the router reads the submission's metadata.
    stub = Incident(
        number=number,
        title="",
        status=IncidentStatus.ACTIVE,
        commander="console",
        severity=Severity.LOW,
        severity_reason="",
        suggestion=Suggestion(severity=Severity.LOW, clause=POLICY_CLAUSES[Severity.LOW]),
        declared_at=datetime.now(UTC),
        declared_by="console",
        announce_job="",
        flags=[Flag.CUSTOMERS] if meta.get("customers") else [],
    )
    builders = {
        modals.CALLBACK_DECLARE: lambda: modals.declare_view(channel_id=None),
        modals.CALLBACK_DISMISS: lambda: modals.dismiss_view(page_key="", title="", level=None),
        modals.CALLBACK_RESOLVE: lambda: modals.resolve_view(stub),
        modals.CALLBACK_UPDATE: lambda: modals.status_update_view(stub),
    }
    if callback_id not in builders:
        raise ConfigError(f"--submit: no form {callback_id!r}; forms: {', '.join(builders)}")
    view = builders[callback_id]()
    view["private_metadata"] = json.dumps(meta)
    return view


def _submission(args: argparse.Namespace) -> dict[str, object]:
    """``--submit CALLBACK --meta JSON --field name=value ...`` as Slack's view_submission."""
    import time

    from router.core import modals

    try:
        meta = json.loads(args.meta or '{"v": 1}')
    except ValueError as exc:
        raise ConfigError(
            f"--meta must be the form's JSON, as the console printed it: {exc}"
        ) from None
    if not isinstance(meta, dict):
        raise ConfigError("--meta must be a JSON object")
    values: dict[str, str | list[str]] = {}
    for field in args.field or []:
        name, sep, value = field.partition("=")
        if not sep:
            raise ConfigError(f"--field {field!r}: write name=value")
        if name in values:  # a checkbox field given twice: several options
            before = values[name]
            values[name] = [*([before] if isinstance(before, str) else before), value]
        else:
            values[name] = [value] if name in ("confidential", "postmortem") else value
    view = _form_view(args.submit, meta)
    try:
        return modals.simulate_submission(
            view, user=args.user, values=values, view_id=f"V0CONSOLE{time.time_ns()}", strict=False
        )
    except ValueError as exc:
        raise ConfigError(f"--submit {args.submit}: {exc}") from exc


def cmd_press(args: argparse.Namespace) -> int:
    """Press a page's button without Slack: signs a block_actions payload and posts it;
    with ``--submit``, submits a form (view_submission) with ``--field`` values."""
    import time

    secret = Secrets.from_env().SLACK_SIGNING_SECRET
    if not secret:
        raise ConfigError("SLACK_SIGNING_SECRET must be set (the router uses it to verify)")
    if args.submit:
        return _post_signed(args, secret, _submission(args), f"submitted {args.submit}")
    if not args.action_id or args.value is None:
        raise ConfigError("router press: give <action_id> <value>, or --submit <form>")
    action: dict[str, object] = {"action_id": args.action_id, "action_ts": f"{time.time():.6f}"}
    if args.action_id in _SELECTS:  # a select option such as "Not an incident, because..."
        action |= {"type": "static_select", "selected_option": {"value": args.value}}
    else:
        action |= {"type": "button", "value": args.value}
    payload = {"type": "block_actions", "user": {"id": args.user}, "actions": [action],
               "container": {"type": "message", "message_ts": "console"},
               "trigger_id": f"console.{time.time_ns()}"}  # fmt: skip
    return _post_signed(args, secret, payload, f"pressed {args.action_id} as {args.user}")


def _post_signed(args: argparse.Namespace, secret: str, payload: object, done: str) -> int:
    """Post ``payload`` to /slack/interactions signed as Slack signs it; print the answer."""
    import time
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    from router.adapters.slack.signing import sign

    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = sign(secret, int(time.time()), body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(args.url.rstrip("/") + "/slack/interactions", body, headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        print(f"router press: HTTP {exc.code}: {exc.read().decode()}", file=sys.stderr)
        return 1
    if answer.get("response_action") == "errors":  # the form stays open: what to fix
        for field, message in answer.get("errors", {}).items():
            print(f"--field {field}: {message}")
        return 1
    for refusal in answer.get("refused", []):
        print(f"refused: {refusal}")
    for reply in answer.get("replies", []):
        print(reply)
    ok = answer.get("ok", True)  # an empty answer: the form was taken and closes
    if ok:
        print(done)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="router", description=__doc__)
    parser.add_argument("--config", help="YAML config file (default: $ROUTER_CONFIG)")
    parser.add_argument("--log-level", default=os.environ.get("ROUTER_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the webhook service")
    sub.add_parser("check-config", help="validate and print the effective config")
    oncall = sub.add_parser("oncall", help="who is on call now and the next handoffs")
    oncall.add_argument("--at", help="ISO time instead of now")
    explain = sub.add_parser(
        "explain", help="severity suggestion for an Alertmanager or Grafana payload"
    )
    explain.add_argument("file")
    press = sub.add_parser(
        "press", help="press a button or submit a form without Slack (console mode)"
    )
    press.add_argument("action_id", nargs="?", help="e.g. page.declare")
    press.add_argument("value", nargs="?", help="the button's value (the page key)")
    press.add_argument("--submit", metavar="FORM", help="submit a form, e.g. incident.declare")
    press.add_argument("--meta", help="the form's private_metadata, as the console printed it")
    press.add_argument("--field", action="append", metavar="NAME=VALUE", help="a form field")
    press.add_argument("--user", required=True, help="Slack user id pressing it")
    press.add_argument("--url", default=os.environ.get("ROUTER_URL", "http://127.0.0.1:8080"))
    # accept --config after the subcommand too, as people type it
    for sp in sub.choices.values():
        sp.add_argument("--config", dest="config", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # slack_sdk logs request bodies (incident text) at DEBUG: confidential, keep it out.
    logging.getLogger("slack_sdk").setLevel(max(logging.INFO, logging.root.level))
    commands = {
        "serve": cmd_serve,
        "check-config": cmd_check_config,
        "oncall": cmd_oncall,
        "explain": cmd_explain,
        "press": cmd_press,
    }
    try:
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"router: config error:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
