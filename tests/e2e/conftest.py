"""End-to-end fixtures: the router and Alertmanager as real processes on loopback.

The router runs exactly as deployed (``python -m router --config FILE serve``) on a
temporary SQLite file; Alertmanager is the real ``prometheus-alertmanager`` binary
with clustering disabled and short group timers. Tests talk to both over HTTP and
read the router's store directly with ``sqlite3``.

``start_router(config=..., env=...)`` starts a router with extra configuration (merged
into the base file) and extra environment (secrets); the paging tests use it to point
the router at a ``fake_slack`` / ``fake_pagerduty`` running on the test's event loop.
Those fakes answer only while the test awaits, so such tests are async, poll with
``await fake.wait_for(...)`` and use ``start_router_async``, which stops the router while
the loop still serves the fakes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import skip_unless_ci
from tests.fakes.pagerduty_api import FakePagerDuty
from tests.fakes.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-test-token-7f3a"
STARTUP_TIMEOUT = 20.0

# Variables that would change the router's config or secrets behind the test's back.
_SECRET_NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "GITHUB_TOKEN",
    "PAGERDUTY_WEBHOOK_SECRET",
    "PAGERDUTY_ROUTING_KEY",
    "ALERTMANAGER_TOKEN",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output)"
    return text[-limit:] or "(empty)"


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, name: str, log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"{name} exited with code {process.returncode} before it was ready;"
                f" its output:\n{_tail(log)}"
            )
        try:
            status, body = http_get(url, timeout=1.0)
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200:
                return
            last = f"{status} {body[:200]}"
        time.sleep(0.1)
    _stop(process)
    pytest.fail(f"{name} not ready after {timeout:.0f}s ({last}); its output:\n{_tail(log)}")


def _launch(
    started: list[subprocess.Popen[bytes]],
    argv: list[str],
    log_path: Path,
    *,
    cwd: Path,
    ready_url: str,
    name: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (no stdin, its output to ``log_path``), add it to ``started`` (the
    fixture stops those at teardown) and wait until ``ready_url`` answers 200."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    started.append(process)
    _wait_ready(process, ready_url, name, log_path, STARTUP_TIMEOUT)
    return process


@dataclass
class RouterProcess:
    url: str
    db_path: Path
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/alertmanager"

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample on /metrics, keyed by (name, sorted labels)."""
        status, text = http_get(f"{self.url}/metrics")
        assert status == 200, text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value; 0 when the series does not exist yet."""
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def rows(self, where: str = "1=1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of the router's ``alerts`` table, read straight from the SQLite file."""
        conn = sqlite3.connect(self.db_path, timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            cursor = conn.execute(f"SELECT * FROM alerts WHERE {where} ORDER BY id", params)
            rows = [dict(row) for row in cursor.fetchall()]
        finally:
            conn.close()
        for row in rows:
            row["labels"] = json.loads(row["labels"])
            row["annotations"] = json.loads(row["annotations"])
        return rows

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Any read-only query against the router's SQLite file (pages, jobs, incidents)."""
        conn = sqlite3.connect(self.db_path, timeout=5.0)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()

    def output(self) -> str:
        return _tail(self.log_path)


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ROUTER__")
        and k != "ROUTER_CONFIG"
        and k.removesuffix("_FILE") not in _SECRET_NAMES
    }


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in; nested mappings merge, anything else replaces."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


StartRouter = Callable[..., RouterProcess]


@pytest.fixture
def start_router(tmp_path: Path) -> Iterator[StartRouter]:
    """Start routers as real subprocesses: ``start(config=None, env=None)``.

    Each gets a free loopback port and its own SQLite file. ``config`` is merged into
    the base configuration; ``env`` is added to a clean environment (for secrets such
    as SLACK_BOT_TOKEN). All are stopped (SIGTERM, then SIGKILL) at teardown.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(
        config: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> RouterProcess:
        home = tmp_path / ("router" if not started else f"router-{len(started)}")
        home.mkdir()
        port = free_port()
        db_path = home / "router.db"
        base = {
            "server": {"host": "127.0.0.1", "port": port, "shutdown_grace_seconds": 2},
            "store": {"url": f"sqlite:///{db_path}"},
            "alertmanager": {"auth": "bearer"},
        }
        document = deep_merge(base, config or {})
        config_path = home / "router.yaml"
        config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        full_env = (
            _clean_env() | {"ALERTMANAGER_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"} | dict(env or {})
        )
        log_path = home / "router.log"
        url = f"http://127.0.0.1:{port}"
        process = _launch(
            started,
            [sys.executable, "-m", "router", "--config", str(config_path), "serve"],
            log_path,
            cwd=ROOT,
            ready_url=f"{url}/readyz",
            name="router",
            env=full_env,
        )
        return RouterProcess(url, db_path, TOKEN, process, log_path)

    try:
        yield start
    finally:
        for process in started:
            _stop(process)


@pytest.fixture
async def start_router_async(start_router: StartRouter) -> AsyncIterator[StartRouter]:
    """``start_router`` for async tests whose fakes are served by the test's event loop.

    Stops its routers at teardown *while the loop still runs*: a router drains its
    outbox on SIGTERM, and a fake that cannot answer then (the loop paused for a sync
    teardown) would hold the router until its client timeouts.
    """
    started: list[RouterProcess] = []

    def start(
        config: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> RouterProcess:
        process = start_router(config=config, env=env)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            await asyncio.to_thread(_stop, process.process)


@pytest.fixture
def router(start_router: StartRouter) -> RouterProcess:
    """The router as a real subprocess on a free loopback port and a temp SQLite file."""
    return start_router()


# Slack identities the paging tests use: eng-primary is a user FakeSlack knows.
SLACK_TOKEN = "xoxb-e2e-token"
SLACK_SIGNING_SECRET = "e2e-signing-secret-91c2"
PRIMARY, SECONDARY, RESPONDER, STRANGER = "U0E2EPRIM1", "U0E2ESEC02", "U0E2ERESP3", "U0E2ESTR04"
INCIDENTS, OPERATORS = "C0E2EINCID", "C0E2EOPERS"
SLACK_USERS = {
    uid: {"name": uid.lower(), "real_name": uid, "email": f"{uid.lower()}@example.com", "tz": "UTC"}
    for uid in (PRIMARY, SECONDARY, RESPONDER, STRANGER)
}


def oncall_config(primary: str = PRIMARY, secondary: str = SECONDARY) -> dict[str, Any]:
    """An ``oncall:`` section whose eng-primary (and eng-secondary) is one person."""
    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    return {
        "rotations": {
            "eng-primary": rotation | {"members": [primary]},
            "eng-secondary": rotation | {"members": [secondary]},
        },
        "responders": [RESPONDER],
    }


def paging_config(slack: FakeSlack, **paging: Any) -> dict[str, Any]:
    """Extra router config: on-call, Slack at ``slack``, the incident channel."""
    return {
        "slack": {
            "api_url": slack.base_url,
            "incident_channel": INCIDENTS,
            "operator_channel": OPERATORS,
        },
        "paging": {"ack_timeout_seconds": 600} | paging,
        "oncall": oncall_config(),
    }


def slack_env() -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET}


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """FakeSlack on loopback, served by the test's event loop (so: async tests only)."""
    async with FakeSlack(SLACK_TOKEN, channels=(INCIDENTS, OPERATORS), users=SLACK_USERS) as slack:
        yield slack


@pytest.fixture
async def fake_pagerduty() -> AsyncIterator[FakePagerDuty]:
    """FakePagerDuty's Events API v2 on loopback, served by the test's event loop."""
    async with FakePagerDuty() as pagerduty:
        yield pagerduty


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (shutil.which(name, path="/usr/bin:/usr/local/bin"))
        if found:
            return found
    return None


def _launch_prometheus_family(
    started: list[subprocess.Popen[bytes]],
    home: Path,
    name: str,
    binary: str,
    config: Mapping[str, Any],
    storage_flag: str,
    *args: str,
) -> tuple[str, subprocess.Popen[bytes], Path, Path]:
    """Start a Prometheus-style server (Prometheus, Alertmanager) in ``home`` and wait
    until ``/-/ready`` answers: ``config`` in ``<name>.yml``, its data in ``data/``
    (``storage_flag``), a free loopback port, output in ``<name>.log``, then ``args``.

    Returns its URL, the process, the log's path and the configuration's path.
    """
    (home / "data").mkdir(parents=True)
    config_path = home / f"{name}.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log_path = home / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    process = _launch(
        started,
        [
            binary,
            f"--config.file={config_path}",
            f"{storage_flag}={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *args,
        ],
        log_path,
        cwd=home,
        ready_url=f"{url}/-/ready",
        name=name,
    )
    return url, process, log_path, config_path


@dataclass
class AlertmanagerProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    amtool: str
    amtool_calls: list[list[str]] = field(default_factory=list)

    def amtool_run(self, *args: str) -> str:
        command = [self.amtool, f"--alertmanager.url={self.url}", *args]
        self.amtool_calls.append(command)
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, (
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout

    def output(self) -> str:
        return _tail(self.log_path)


StartAlertmanager = Callable[[str, str], AlertmanagerProcess]


@pytest.fixture
def start_alertmanager(tmp_path: Path) -> Iterator[StartAlertmanager]:
    """Start the real Alertmanager with one webhook receiver: ``start(url, token)``."""
    binary = _binary("prometheus-alertmanager", "alertmanager")
    amtool = _binary("amtool")
    if binary is None or amtool is None:
        skip_unless_ci(
            "needs the real prometheus-alertmanager and amtool binaries on PATH"
            " (apt-get install prometheus-alertmanager); CI installs them"
        )
    started: list[subprocess.Popen[bytes]] = []

    def start(webhook_url: str, token: str) -> AlertmanagerProcess:
        config = {
            "global": {"resolve_timeout": "5m"},
            "route": {
                "receiver": "router",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "router",
                    "webhook_configs": [
                        {
                            "url": webhook_url,
                            "send_resolved": True,
                            "http_config": {
                                "authorization": {"type": "Bearer", "credentials": token}
                            },
                        }
                    ],
                }
            ],
        }
        home = tmp_path / f"alertmanager-{len(started)}"
        url, process, log_path, _ = _launch_prometheus_family(
            started,
            home,
            "alertmanager",
            str(binary),
            config,
            "--storage.path",
            "--cluster.listen-address=",
            "--log.level=debug",
        )
        return AlertmanagerProcess(url, process, log_path, amtool)

    try:
        yield start
    finally:
        for process in started:
            _stop(process)


@pytest.fixture
def alertmanager(
    start_alertmanager: StartAlertmanager, router: RouterProcess
) -> AlertmanagerProcess:
    """Alertmanager sending to the ``router`` fixture with the right token."""
    return start_alertmanager(router.webhook_url, router.token)


# -- Prometheus ---------------------------------------------------------------------


@dataclass
class PrometheusProcess:
    """The real Prometheus server, scraping one job; read it through its HTTP API."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    config_path: Path

    def api(self, path: str, **params: str) -> Any:
        """``GET /api/v1/<path>``'s ``data``; fails the test on a non-success answer."""
        query = f"?{urlencode(params)}" if params else ""
        status, body = http_get(f"{self.url}/api/v1/{path}{query}", timeout=5.0)
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if status != 200 or not isinstance(document, dict) or document.get("status") != "success":
            pytest.fail(f"prometheus /api/v1/{path}{query} answered {status}: {body[:500]}")
        return document["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (``[{"metric": {...}, "value": [t, "v"]}]``)."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The value of a query that selects one series; None while it selects none."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, f"{promql} selected {len(result)} series: {result}"
        return float(result[0]["value"][1])

    def targets(self, job: str | None = None) -> list[dict[str, Any]]:
        """``/api/v1/targets``' active targets, optionally only those of ``job``."""
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return [t for t in active if job is None or t["labels"].get("job") == job]

    def output(self) -> str:
        return _tail(self.log_path)


StartPrometheus = Callable[..., PrometheusProcess]


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Start the real Prometheus scraping ``host:port`` targets on loopback.

    ``start(targets, job="incident-router", scrape_interval="1s")``; its TSDB lives in
    the test's temp directory, and it is stopped (SIGTERM, then SIGKILL) at teardown.
    """
    binary = _binary("prometheus")
    if binary is None:
        skip_unless_ci(
            "needs the real prometheus binary on PATH (apt-get install prometheus); CI installs it"
        )
    started: list[subprocess.Popen[bytes]] = []

    def start(
        targets: list[str], job: str = "incident-router", scrape_interval: str = "1s"
    ) -> PrometheusProcess:
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": "/metrics",
                    "scrape_interval": scrape_interval,
                    "scrape_timeout": scrape_interval,
                    "static_configs": [{"targets": list(targets)}],
                }
            ],
        }
        home = tmp_path / f"prometheus-{len(started)}"
        url, process, log_path, config_path = _launch_prometheus_family(
            started, home, "prometheus", str(binary), config, "--storage.tsdb.path"
        )
        return PrometheusProcess(url, process, log_path, config_path)

    try:
        yield start
    finally:
        for process in started:
            _stop(process)


# -- PostgreSQL: one schema per test, for routers that share a database ---------------


@dataclass
class PostgresSchema:
    """A fresh schema on the test PostgreSQL server; ``url`` is a store URL for it."""

    name: str
    url: str

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query in this schema (``%s`` placeholders)."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
            return list(conn.execute(sql, params).fetchall())

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement in its own transaction; returns the rows it touched."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql, params).rowcount


@pytest.fixture
def postgres_schema() -> Iterator[PostgresSchema]:
    """A schema of its own on ROUTER_TEST_POSTGRES_URL, dropped after the test.

    Routers given ``store: {url: schema.url}`` all share it (their ``search_path`` is
    the schema), like replicas on one database.
    """
    import uuid

    import psycopg

    from tests.conftest import postgres_url

    base = postgres_url()
    try:
        psycopg.connect(base, connect_timeout=2).close()
    except psycopg.Error:
        skip_unless_ci(f"no PostgreSQL at {base}")
    name = "router_e2e_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    separator = "&" if "?" in base else "?"
    try:
        yield PostgresSchema(name, f"{base}{separator}options=-csearch_path%3D{name}")
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def worker_id(router: RouterProcess) -> str:
    """The router's outbox worker id (``claimed_by`` on the jobs it holds)."""
    return f"{socket.gethostname()}:{router.process.pid}"


async def poll(
    predicate: Callable[[], Any],
    timeout: float,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    what: str,
    interval: float = 0.05,
) -> Any:
    """``wait_until`` for async tests: keeps the loop (and the fakes on it) serving."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")


# -- Alertmanager webhooks, posted straight to the router ------------------------------


def firing_alert(labels: Mapping[str, str], fingerprint: str) -> dict[str, Any]:
    """One firing alert as an Alertmanager webhook (version 4) carries it."""
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "checkout returns 500"},
        "startsAt": "2026-03-02T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def alertmanager_webhook(
    name: str, alerts: list[dict[str, Any]], common_labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An Alertmanager webhook (version 4) for alert group ``name`` carrying ``alerts``.

    ``common_labels`` defaults to ``alertname=name, severity=critical``.
    """
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "router",
        "groupLabels": {"alertname": name},
        "commonLabels": common_labels or {"alertname": name, "severity": "critical"},
        "commonAnnotations": {"summary": "checkout returns 500"},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def alert_document(name: str, fingerprint: str = "0123456789abcdef") -> dict[str, Any]:
    """A webhook for group ``name`` with one critical alert on instance ``api-1``."""
    labels = {"alertname": name, "severity": "critical", "instance": "api-1"}
    return alertmanager_webhook(name, [firing_alert(labels, fingerprint)])


def post_webhook(router: RouterProcess, body: bytes, token: str = TOKEN) -> tuple[int, str]:
    """POST ``body`` to the router's Alertmanager webhook: ``(status, response text)``."""
    request = urllib.request.Request(
        router.webhook_url,
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# -- page DMs at FakeSlack --------------------------------------------------------------


def page_dms(slack: FakeSlack, name: str, user: str = PRIMARY) -> list[dict[str, Any]]:
    """DMs to ``user`` that page for group ``name`` (they carry a Declare button)."""
    return [
        m
        for m in slack.dms_to(user)
        if name in m["text"] and "page.declare" in json.dumps(m["blocks"])
    ]


def declare_value(message: dict[str, Any]) -> str:
    """The page key on the message's Declare button."""
    for block in message.get("blocks") or []:
        for element in block.get("elements", []):
            if element.get("action_id") == "page.declare":
                return str(element["value"])
    raise AssertionError(f"no Declare button in {message}")


# -- signed Slack button presses --------------------------------------------------------


def press_body(
    user: str,
    action_id: str,
    value: str,
    slack: FakeSlack,
    message_ts: str,
    action_ts: str | None = None,
) -> bytes:
    """The form body Slack posts when ``user`` presses a button (``block_actions``).

    The same ``action_ts`` is what Slack resends on a retry; a new click has a new one.
    """
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": slack.team_id},
        "team": {"id": slack.team_id, "domain": "acme"},
        "container": {"type": "message", "message_ts": message_ts, "is_ephemeral": False},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "response_url": slack.response_url_for(f"resp-{user}-{value}"),
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "page_actions",
                "value": value,
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def slack_signed_headers(body: bytes, secret: str = SLACK_SIGNING_SECRET) -> dict[str, str]:
    """Headers Slack sends with ``body``: signature, timestamp, form content type."""
    from router.adapters.slack.signing import sign

    headers = sign(secret, int(time.time()), body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return headers
