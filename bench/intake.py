"""Intake benchmark: the router against a bare aiohttp server, plus a crash check.

``python -m bench.intake [--requests N] [--concurrency C] [--quick]``

Prints figures; asserts nothing about speed. Both targets run as subprocesses on
loopback and are driven the same way, in the same run, by one in-process load
generator (aiohttp, one connection pool), so the router/bare ratio is fair even
though the generator shares the machine's cores with the server it measures.

Every request is an Alertmanager v4 webhook with a distinct groupKey and distinct
fingerprints, so every alert is new and must become one row. The process exits
non-zero if the store does not hold exactly the alerts it acknowledged: after a
normal run, and after the router is killed with SIGKILL in the middle of a load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import (
    WEBHOOK,
    WEBHOOK_HEADERS,
    BenchError,
    Server,
    alertmanager_webhook,
    clean_env,
    fingerprint,
    free_port,
    http_get,
    percentile,
    query,
    router_server,
)

# Runs the router exactly as ``python -m router`` does, and in addition writes the
# SQLite engine's commit count (``SqliteStore.batches``) to stderr when the store
# closes at shutdown. The count is not exposed over HTTP.
_ROUTER_WITH_COMMIT_COUNT = """
import sys
from router.store import sqlite as _sqlite

_close = _sqlite.SqliteStore.close

async def _close_and_report(self):
    await _close(self)
    print(f"BENCH_SQLITE_COMMITS {self.batches}", file=sys.stderr, flush=True)

_sqlite.SqliteStore.close = _close_and_report
from router.cli import main
sys.exit(main(sys.argv[1:]))
"""


# -- processes ---------------------------------------------------------------


def sqlite_router(home: Path, db_path: Path, *, count_commits: bool) -> Server:
    launcher = ["-c", _ROUTER_WITH_COMMIT_COUNT] if count_commits else ["-m", "router"]
    return router_server(home, f"sqlite:///{db_path}", launcher=launcher)


def bare_server(home: Path) -> Server:
    port = free_port()
    return Server(
        name="bare",
        argv=[sys.executable, "-m", "bench.bare_server", str(port)],
        env=clean_env(),
        log_path=home / f"bare-{port}.log",
        port=port,
    )


# -- payloads ----------------------------------------------------------------

AlertKey = tuple[str, str]  # (groupKey, fingerprint)


@dataclass
class Request:
    body: bytes
    keys: list[AlertKey]


def make_requests(run: str, count: int, alerts_per_request: int) -> list[Request]:
    """Alertmanager v4 webhooks; groupKey and fingerprints unique per (run, i, j)."""
    requests = []
    for i in range(count):
        document = alertmanager_webhook(
            f"Bench_{run}_{i}",
            "warning",
            "latency above 1s",
            [fingerprint(f"{run}/{i}/{j}") for j in range(alerts_per_request)],
            starts_at="2024-05-01T10:00:00.123456789Z",
            generator_url="http://prometheus:9090/graph?g0.expr=up",
        )
        body = (json.dumps(document) + "\n").encode()
        keys = [(document["groupKey"], a["fingerprint"]) for a in document["alerts"]]
        requests.append(Request(body, keys))
    return requests


# -- load --------------------------------------------------------------------


@dataclass
class LoadResult:
    sent: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx only
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    acknowledged: list[AlertKey] = field(default_factory=list)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    killed_at: float | None = None  # seconds into the load
    answered_before_kill: int = 0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)


async def run_load(
    url: str,
    requests: list[Request],
    concurrency: int,
    kill_pid: int | None = None,
    kill_after: float = 1.0,
) -> LoadResult:
    """Send every request over ``concurrency`` connections; optionally SIGKILL mid-way.

    With ``kill_pid`` the process is killed ``kill_after`` seconds in, or when half
    the requests are answered if that comes first, so the kill always lands mid-load.
    """
    result = LoadResult()
    headers = WEBHOOK_HEADERS | {"User-Agent": "Alertmanager/0.25.0"}
    pending: Iterator[Request] = iter(requests)
    answered = 0
    half_answered = asyncio.Event()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal answered
        for request in pending:  # one shared iterator: each request is sent once
            result.sent += 1
            started = time.perf_counter()
            try:
                async with session.post(url, data=request.body) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.errors[type(exc).__name__] += 1
                continue
            finally:
                answered += 1
                if answered >= len(requests) // 2:
                    half_answered.set()
            result.statuses[status] += 1
            if 200 <= status < 300:
                result.latencies.append(time.perf_counter() - started)
                result.acknowledged.extend(request.keys)

    async def killer(begin: float) -> None:
        assert kill_pid is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(half_answered.wait(), timeout=kill_after)
        os.kill(kill_pid, signal.SIGKILL)
        result.killed_at = time.perf_counter() - begin
        result.answered_before_kill = answered

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        cpu_before = time.process_time()
        begin = time.perf_counter()
        kill_task = asyncio.create_task(killer(begin)) if kill_pid is not None else None
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        result.elapsed = time.perf_counter() - begin
        result.client_cpu = time.process_time() - cpu_before
        if kill_task is not None:
            await kill_task
    return result


# -- store -------------------------------------------------------------------


def stored_keys(db_path: Path) -> list[AlertKey]:
    return [(row[0], row[1]) for row in query(db_path, "SELECT group_key, fingerprint FROM alerts")]


def metric_value(url: str, line_prefix: str) -> float | None:
    status, text = http_get(f"{url}/metrics")
    if status != 200:
        return None
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def commits_from_log(server: Server) -> int | None:
    for line in server.log_tail(limit=100_000).splitlines():
        if line.startswith("BENCH_SQLITE_COMMITS "):
            return int(line.split()[1])
    return None


# -- phases ------------------------------------------------------------------


@dataclass
class Row:
    target: str
    alerts_per_request: int
    result: LoadResult
    server_cpu: float


@dataclass
class StoreCheck:
    alerts_per_request: int
    sent: int
    acknowledged: int
    rows: int
    commits: int | None
    units: float | None

    @property
    def ok(self) -> bool:
        return self.rows == self.sent == self.acknowledged


def measure(
    server: Server,
    run: str,
    alerts_per_request: int,
    count: int,
    warmup: int,
    concurrency: int,
) -> tuple[LoadResult, LoadResult, float]:
    url = server.url + WEBHOOK
    warm_requests = make_requests(f"{run}w", warmup, alerts_per_request)
    requests = make_requests(f"{run}m", count, alerts_per_request)
    warm = asyncio.run(run_load(url, warm_requests, concurrency))
    cpu_before = server.cpu_seconds()
    result = asyncio.run(run_load(url, requests, concurrency))
    return warm, result, server.cpu_seconds() - cpu_before


def throughput(
    home: Path, sizes: list[tuple[int, int, int]], concurrency: int
) -> tuple[list[Row], list[StoreCheck]]:
    rows: list[Row] = []
    checks: list[StoreCheck] = []
    for alerts_per_request, count, warmup in sizes:
        bare = bare_server(home)
        bare.start()
        try:
            _, result, cpu = measure(
                bare, f"b{alerts_per_request}", alerts_per_request, count, warmup, concurrency
            )
        finally:
            bare.stop()
        rows.append(Row("bare aiohttp", alerts_per_request, result, cpu))

        db_path = home / f"throughput-{alerts_per_request}.db"
        router = sqlite_router(home, db_path, count_commits=True)
        router.start()
        try:
            warm, result, cpu = measure(
                router, f"r{alerts_per_request}", alerts_per_request, count, warmup, concurrency
            )
            units = metric_value(router.url, "router_store_transaction_duration_seconds_count")
        finally:
            router.stop()
        rows.append(Row("router", alerts_per_request, result, cpu))
        checks.append(
            StoreCheck(
                alerts_per_request=alerts_per_request,
                sent=(warmup + count) * alerts_per_request,
                acknowledged=len(warm.acknowledged) + len(result.acknowledged),
                rows=len(stored_keys(db_path)),
                commits=commits_from_log(router),
                units=units,
            )
        )
    return rows, checks


@dataclass
class CrashCheck:
    requests: int
    result: LoadResult
    acknowledged: int
    found: int
    missing: int
    rows: int


def crash_check(home: Path, count: int, concurrency: int, kill_after: float) -> CrashCheck:
    db_path = home / "crash.db"
    router = sqlite_router(home, db_path, count_commits=False)
    router.start()
    try:
        requests = make_requests("crash", count, 1)
        result = asyncio.run(
            run_load(router.url + WEBHOOK, requests, concurrency, router.pid, kill_after)
        )
        assert router.process is not None
        router.process.wait(timeout=10)
    finally:
        router.stop()
    # Restart on the same file: the router must open it (WAL recovery) and be ready.
    again = sqlite_router(home, db_path, count_commits=False)
    again.start()
    try:
        stored = set(stored_keys(db_path))
    finally:
        again.stop()
    acknowledged = set(result.acknowledged)
    return CrashCheck(
        requests=count,
        result=result,
        acknowledged=len(acknowledged),
        found=len(acknowledged & stored),
        missing=len(acknowledged - stored),
        rows=len(stored),
    )


# -- report ------------------------------------------------------------------


def print_table(rows: list[Row], concurrency: int) -> None:
    print(f"\nthroughput ({concurrency} connections, loopback, every alert new)")
    header = (
        f"{'target':<14}{'alerts/req':>11}{'requests':>10}{'non-2xx':>9}{'req/s':>10}"
        f"{'alerts/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'srv CPU ms/req':>16}{'gen CPU ms/req':>16}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.result
        rate = r.ok / r.elapsed if r.elapsed else 0.0
        bad = r.sent - r.ok
        print(
            f"{row.target:<14}{row.alerts_per_request:>11}{r.sent:>10}{bad:>9}{rate:>10.0f}"
            f"{rate * row.alerts_per_request:>10.0f}{r.percentile(0.5) * 1000:>9.2f}"
            f"{r.percentile(0.99) * 1000:>9.2f}{row.server_cpu / max(r.sent, 1) * 1000:>16.3f}"
            f"{r.client_cpu / max(r.sent, 1) * 1000:>16.3f}"
        )
    print()
    by_size: dict[int, dict[str, LoadResult]] = {}
    for row in rows:
        by_size.setdefault(row.alerts_per_request, {})[row.target] = row.result
    for size, results in by_size.items():
        router, bare = results["router"], results["bare aiohttp"]
        router_rate = router.ok / router.elapsed if router.elapsed else 0.0
        bare_rate = bare.ok / bare.elapsed if bare.elapsed else 0.0
        ratio = router_rate / bare_rate if bare_rate else float("nan")
        print(f"ratio router/bare req/s at {size} alert(s)/request: {ratio:.2f}")
    for row in rows:
        if row.result.errors or set(row.result.statuses) - {200}:
            print(
                f"  {row.target} {row.alerts_per_request}/req: statuses"
                f" {dict(row.result.statuses)} errors {dict(row.result.errors)}"
            )


def print_checks(checks: list[StoreCheck]) -> None:
    print("\nstore after the throughput runs (warmup included)")
    for c in checks:
        commits = "n/a" if c.commits is None else str(c.commits)
        units = "n/a" if c.units is None else f"{c.units:.0f}"
        per_commit = f", {c.units / c.commits:.1f} units/commit" if c.commits and c.units else ""
        verdict = "ok" if c.ok else "MISMATCH"
        print(
            f"  {c.alerts_per_request:>2} alert(s)/request: {c.sent} alerts sent,"
            f" {c.acknowledged} acknowledged, {c.rows} rows [{verdict}];"
            f" sqlite commits {commits} for {units} intake units"
            f"{per_commit}"
        )


def print_crash(crash: CrashCheck, concurrency: int) -> None:
    r = crash.result
    killed = "never" if r.killed_at is None else f"{r.killed_at:.2f}s"
    print(
        f"\ncrash check: {crash.requests} requests x 1 alert, {concurrency} connections,"
        f" SIGKILL at {killed} after {r.answered_before_kill} answers;"
        f" {r.ok} acknowledged (2xx), {r.sent - r.ok} failed {dict(r.errors)},"
        f" {crash.rows} rows after restart"
    )
    print(
        f"crash check: {crash.acknowledged} acknowledged, {crash.found} found,"
        f" {crash.missing} missing"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument(
        "--requests",
        type=int,
        help="requests at 1 alert each (default 3000; a third as many at 50 alerts)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument(
        "--crash-requests", type=int, help="requests in the crash check (default 2000)"
    )
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    args = parser.parse_args(argv)

    small = args.requests or (300 if args.quick else 3000)
    large = max(1, small // 3)
    warmup_small, warmup_large = (30, 10) if args.quick else (300, 50)
    crash_requests = args.crash_requests or (500 if args.quick else 2000)
    concurrency = max(1, args.concurrency)
    sizes = [(1, small, warmup_small), (50, large, warmup_large)]

    print(
        f"bench.intake: python {sys.version.split()[0]}, aiohttp {aiohttp.__version__},"
        f" sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs;"
        f" load generator in this process"
    )
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        home = Path(tmp)
        try:
            rows, checks = throughput(home, sizes, concurrency)
            print_table(rows, concurrency)
            print_checks(checks)
            crash = crash_check(home, crash_requests, min(16, concurrency), kill_after=1.0)
            print_crash(crash, min(16, concurrency))
        except BenchError as exc:
            print(f"bench.intake: {exc}", file=sys.stderr)
            return 2
    failed = [c for c in checks if not c.ok]
    if failed:
        print("FAIL: the store does not hold exactly the alerts sent", file=sys.stderr)
    if crash.missing:
        print(f"FAIL: {crash.missing} acknowledged alerts lost in the crash", file=sys.stderr)
    return 1 if failed or crash.missing else 0


if __name__ == "__main__":
    sys.exit(main())
