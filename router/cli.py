"""``router serve | check-config | oncall | explain``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from router.config import ConfigError, RouterConfig, Secrets, check_startable, load_config


def _load(args: argparse.Namespace) -> RouterConfig:
    return load_config(args.config or os.environ.get("ROUTER_CONFIG"))


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    secrets = Secrets.from_env()
    effective = config.model_dump(mode="json")
    print("# effective configuration (file + ROUTER__ overrides + defaults)")
    print(yaml.safe_dump(effective, sort_keys=False).rstrip())
    print("# secrets (from the environment; values never shown)")
    print(yaml.safe_dump(secrets.masked(), sort_keys=False).rstrip())
    problems = check_startable(config, secrets)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    print("config ok" if not problems else "config ok, but serve would refuse to start")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from router.web.app import create_app

    config = _load(args)
    secrets = Secrets.from_env()
    problems = check_startable(config, secrets)
    if problems:
        for problem in problems:
            print(f"router: {problem}", file=sys.stderr)
        return 2
    app = create_app(config, secrets)
    web.run_app(
        app,
        host=config.server.host,
        port=config.server.port,
        shutdown_timeout=config.server.shutdown_grace_seconds,
        access_log=None,  # paths and codes are in metrics; keep the log for events
        print=lambda text: logging.getLogger("router").info(
            "listening on %s:%s", config.server.host, config.server.port
        ),
    )
    return 0


def cmd_oncall(args: argparse.Namespace) -> int:
    from router.oncall import Schedule, format_oncall

    config = _load(args)
    if config.oncall is None:
        raise ConfigError("oncall: no on-call schedule is configured")
    at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    print(format_oncall(Schedule(config.oncall), at))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from router.severity import suggest
    from router.sources import PayloadError, alertmanager
    from router.triage import triage

    config = _load(args)
    try:
        alerts = alertmanager.parse(json.loads(Path(args.file).read_text()))
    except (OSError, json.JSONDecodeError) as exc:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="router", description=__doc__)
    parser.add_argument("--config", help="YAML config file (default: $ROUTER_CONFIG)")
    parser.add_argument("--log-level", default=os.environ.get("ROUTER_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the webhook service")
    sub.add_parser("check-config", help="validate and print the effective config")
    oncall = sub.add_parser("oncall", help="who is on call now and the next handoffs")
    oncall.add_argument("--at", help="ISO time instead of now")
    explain = sub.add_parser("explain", help="severity suggestion for an Alertmanager payload")
    explain.add_argument("file")
    # accept --config after the subcommand too, as people type it
    for sp in sub.choices.values():
        sp.add_argument("--config", dest="config", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    commands = {
        "serve": cmd_serve,
        "check-config": cmd_check_config,
        "oncall": cmd_oncall,
        "explain": cmd_explain,
    }
    try:
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"router: config error:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
