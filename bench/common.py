"""What the benchmarks share: router processes, webhook payloads, the store, percentiles.

Every router runs as a subprocess on loopback (``Server``), started with a clean
environment and a YAML configuration written to the run's temporary directory
(``router_server``), paging as users run it: the example configuration's rotations,
severity rules and storm control (``example_paging``), Slack and PagerDuty at
stand-ins (``bench.standins``). ``BENCH_ROUTER_SRC=/path/to/checkout`` measures the
router of another checkout (a before/after comparison) with this benchmark.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The router under test: this checkout, or another one (to compare before and after).
ROUTER_SRC = Path(os.environ.get("BENCH_ROUTER_SRC") or ROOT).resolve()
EXAMPLE_CONFIG = ROUTER_SRC / "config" / "router.example.yaml"
TOKEN = "bench-token-5d1c"
WEBHOOK = "/webhooks/alertmanager"
# What Alertmanager sends with every webhook (the bench's bearer token).
WEBHOOK_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
STARTUP_TIMEOUT = 20.0
SETTLE_TIMEOUT = 60.0  # seconds the outbox may take to drain
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


# -- processes ---------------------------------------------------------------


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


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    cwd: Path = ROOT  # a router of another checkout runs there (its package first)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                status, body = http_get(f"{self.url}/readyz", timeout=1.0)
            except OSError as exc:
                last = str(exc)
            else:
                if status == 200:
                    return
                last = f"{status} {body[:200]}"
            time.sleep(0.1)
        self.stop()
        raise BenchError(
            f"{self.name} not ready after {STARTUP_TIMEOUT}s ({last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far (all its threads)."""
        fields_ = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields_[11]) + int(fields_[12])) / CLK_TCK

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory so far (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "(no output)"


def clean_env() -> dict[str, str]:
    secrets = {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "GITHUB_TOKEN"}
    secrets |= {"PAGERDUTY_WEBHOOK_SECRET", "PAGERDUTY_ROUTING_KEY", "ALERTMANAGER_TOKEN"}
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ROUTER__")
        and k != "ROUTER_CONFIG"
        and k.removesuffix("_FILE") not in secrets
    }


def router_server(
    home: Path,
    store_url: str,
    *,
    tag: str | None = None,
    extra: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    launcher: Sequence[str] = ("-m", "router"),
) -> Server:
    """A router (not started yet) on a free port with its store at ``store_url``.

    ``extra`` adds top-level sections to the configuration, ``env`` variables (secrets)
    to the clean environment; ``tag`` goes into the name and the file names.
    """
    port = free_port()
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "shutdown_grace_seconds": 2},
        "store": {"url": store_url},
        "alertmanager": {"auth": "bearer"},
    }
    config |= extra or {}
    stem = f"router-{port}" if tag is None else f"router-{tag}-{port}"
    config_path = home / f"{stem}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    source = {"PYTHONPATH": str(ROUTER_SRC)} if ROUTER_SRC != ROOT else {}
    return Server(
        name="router" if tag is None else f"router ({tag})",
        argv=[sys.executable, *launcher, "--config", str(config_path), "serve"],
        env=clean_env() | {"ALERTMANAGER_TOKEN": TOKEN} | source | dict(env or {}),
        log_path=home / f"{stem}.log",
        port=port,
        cwd=ROUTER_SRC,
    )


# -- paging as users run it ----------------------------------------------------------


def example_paging(slack_url: str, events_url: str, **paging: Any) -> dict[str, Any]:
    """The example configuration's paging: its rotations and responders, severity rules,
    triage and storm control (``paging``, e.g. storm_limit 5), with Slack and PagerDuty
    at the stand-ins. ``paging`` overrides keys of its paging section."""
    document = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    config = {key: document[key] for key in ("oncall", "severity", "triage", "paging")}
    config["paging"] = config["paging"] | paging
    config["slack"] = {"api_url": slack_url,
                       "incident_channel": document["slack"]["incident_channel"]}  # fmt: skip
    config["pagerduty"] = {"events_url": events_url}
    return config


def example_people() -> tuple[list[str], list[str]]:
    """(Slack user ids, channel ids) the example configuration names."""
    document = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    oncall = document["oncall"]
    users = set(oncall.get("responders", []))
    for rotation in oncall["rotations"].values():
        users.update(rotation["members"])
        users.update(o["user"] for o in rotation.get("overrides", []))
    return sorted(users), [document["slack"]["incident_channel"]]


def eng_primary_now() -> str:
    """Who the example configuration pages first right now."""
    from datetime import UTC, datetime

    from router.core.oncall import OncallConfig, Schedule

    oncall = OncallConfig.model_validate(yaml.safe_load(EXAMPLE_CONFIG.read_text())["oncall"])
    user = Schedule(oncall).who_is_on("eng-primary", datetime.now(UTC))
    if user is None:
        raise BenchError("nobody is eng-primary in the example configuration right now")
    return user


# -- payloads ----------------------------------------------------------------


def fingerprint(text: str) -> str:
    """An alert fingerprint (16 hex digits) derived from ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alertmanager_webhook(
    name: str,
    severity: str,
    problem: str,
    fingerprints: list[str],
    *,
    starts_at: str = "2026-03-02T10:00:00Z",
    generator_url: str = "http://prometheus:9090/graph",
) -> dict[str, Any]:
    """An Alertmanager v4 webhook document: group ``name``, one firing alert per
    fingerprint, the j-th on ``host-<j>.bench:9100`` with summary "``problem`` on host-j"."""
    common = {"alertname": name, "job": "bench", "severity": severity}
    alerts = [
        {
            "status": "firing",
            "labels": common | {"instance": f"host-{j}.bench:9100"},
            "annotations": {"summary": f"{problem} on host-{j}"},
            "startsAt": starts_at,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": generator_url,
            "fingerprint": fingerprint,
        }
        for j, fingerprint in enumerate(fingerprints)
    ]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "bench",
        "groupLabels": {"alertname": name},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


# -- store -------------------------------------------------------------------

# Side effects still to run (timers are due much later than any run lasts).
BUSY_JOBS = "SELECT count(*) FROM jobs WHERE kind != 'timer' AND status IN ('pending', 'running')"
# Accepted deliveries not applied yet (a router without an inbox has none).
WAITING = "SELECT count(*) FROM inbox WHERE status = 'pending'"


def waiting_deliveries(db_path: Path) -> int:
    try:
        [(count,)] = query(db_path, WAITING)
    except sqlite3.OperationalError:  # no inbox table: everything was applied inline
        return 0
    return int(count)


def query(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the SQLite file ``db_path``."""
    conn = sqlite3.connect(db_path, timeout=10.0)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def settle(
    rows: Callable[[str], Awaitable[list[tuple[Any, ...]]]], within: float = SETTLE_TIMEOUT
) -> bool:
    """Wait until every accepted delivery is applied and no side effect is pending or
    running (timers are due much later).

    ``rows(sql)`` runs a query on the router's store. True once both have been quiet
    for half a second; False when still busy after ``within`` seconds.
    """
    deadline = time.monotonic() + within
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        [(busy,)] = await rows(BUSY_JOBS)
        try:
            [(waiting,)] = await rows(WAITING)
        except sqlite3.OperationalError:
            waiting = 0
        if busy == 0 and waiting == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 0.5:
                return True
        else:
            quiet_since = None
        await asyncio.sleep(0.1)
    return False


# -- report ------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread_ms(values: list[float]) -> str:
    """p50, p90, p99 and max of ``values`` (seconds) in ms: four columns 9 wide."""
    ms = [v * 1000 for v in values]
    return (
        f"{percentile(ms, 0.5):>9.1f}{percentile(ms, 0.9):>9.1f}"
        f"{percentile(ms, 0.99):>9.1f}{max(ms, default=float('nan')):>9.1f}"
    )
