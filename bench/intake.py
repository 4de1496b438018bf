"""Intake benchmark: the router against a bare aiohttp server, plus a crash check.

``python -m bench.intake [--requests N] [--seconds S] [--concurrency C] [--quick]``

Prints figures; asserts nothing about speed. Both targets run as subprocesses on
loopback and are driven the same way, in the same run, by two load generators:

- **wrk** (``apt install wrk``; skipped when missing), with one thread and the
  script ``bench/webhook.lua``. It is written in C and needs little CPU, so the
  server under test gets most of the machine. This is the figure to quote: the bare
  server's own cost sets its pace, not the generator's.
- **in-process** (aiohttp, one connection pool). It needs more CPU per request than
  the bare server does, so on a small machine it caps the bare server before the
  server is busy, and it flatters the ratio. It is kept because it knows which
  request got which answer, which the store checks need.

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
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import (
    ROOT,
    TOKEN,
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
    print(f"BENCH_SQLITE_COMMITS {self.batches} {self.syncs}", file=sys.stderr, flush=True)

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


def wrk_template(home: Path, run: str, alerts_per_request: int) -> Path:
    """The webhook for ``bench/webhook.lua``: it puts a new id in place of each @@ID@@.

    Ids are digits, so the fingerprints stay hexadecimal like Alertmanager's."""
    document = alertmanager_webhook(
        f"Bench_{run}_@@ID@@",
        "warning",
        "latency above 1s",
        [f"{run}@@ID@@{j:04x}" for j in range(alerts_per_request)],
        starts_at="2024-05-01T10:00:00.123456789Z",
        generator_url="http://prometheus:9090/graph?g0.expr=up",
    )
    path = home / f"wrk-{run}.json"
    path.write_text(json.dumps(document) + "\n")
    return path


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


@dataclass
class Measured:
    """One load run, whichever generator drove it."""

    requests: int  # answered
    non_2xx: int  # answered with another status, or failed
    elapsed: float  # seconds
    p50: float  # seconds, 2xx only
    p99: float
    client_cpu: float  # seconds of the generator's CPU

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @classmethod
    def of(cls, result: LoadResult) -> Measured:
        return cls(
            requests=result.sent,
            non_2xx=result.sent - result.ok,
            elapsed=result.elapsed,
            p50=result.percentile(0.5),
            p99=result.percentile(0.99),
            client_cpu=result.client_cpu,
        )


def run_wrk(url: str, template: Path, seconds: float, concurrency: int) -> Measured:
    """One wrk run of ``seconds``; its Lua script prints one BENCH_WRK line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            str(ROOT / "bench" / "webhook.lua"),
            url,
        ],
        env=os.environ | {"BENCH_TEMPLATE": str(template), "BENCH_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("BENCH_WRK ")]
    if completed.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr[-500:]}")
    fields = {k: int(v) for k, v in (kv.split("=") for kv in lines[0].split()[1:])}
    return Measured(
        requests=fields["requests"],
        non_2xx=fields["non2xx"] + fields["errors"],
        elapsed=fields["duration_us"] / 1e6,
        p50=fields["p50_us"] / 1e6,
        p99=fields["p99_us"] / 1e6,
        client_cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )


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


def commits_from_log(server: Server) -> tuple[int, int] | None:
    """(commits, fsyncs) the SQLite engine made, as it reported them at shutdown."""
    for line in server.log_tail(limit=100_000).splitlines():
        if line.startswith("BENCH_SQLITE_COMMITS "):
            _, commits, fsyncs = line.split()
            return int(commits), int(fsyncs)
    return None


# -- phases ------------------------------------------------------------------


@dataclass
class Row:
    target: str
    alerts_per_request: int
    result: Measured
    server_cpu: float
    peak_rss_mb: float  # the server's peak resident memory when the run ended


@dataclass
class StoreCheck:
    generator: str
    alerts_per_request: int
    sent: int
    acknowledged: int
    rows: int
    commits: tuple[int, int] | None  # commits, fsyncs
    units: float | None
    in_flight: int = 0  # wrk stops mid-request: these may be stored, unanswered

    @property
    def ok(self) -> bool:
        if self.in_flight:
            return self.acknowledged <= self.rows <= self.acknowledged + self.in_flight
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
            rss = bare.peak_rss_mb()
        finally:
            bare.stop()
        rows.append(Row("bare aiohttp", alerts_per_request, Measured.of(result), cpu, rss))

        db_path = home / f"throughput-{alerts_per_request}.db"
        router = sqlite_router(home, db_path, count_commits=True)
        router.start()
        try:
            warm, result, cpu = measure(
                router, f"r{alerts_per_request}", alerts_per_request, count, warmup, concurrency
            )
            units = metric_value(router.url, "router_store_transaction_duration_seconds_count")
            rss = router.peak_rss_mb()
        finally:
            router.stop()
        rows.append(Row("router", alerts_per_request, Measured.of(result), cpu, rss))
        checks.append(
            StoreCheck(
                generator="in-process",
                alerts_per_request=alerts_per_request,
                sent=(warmup + count) * alerts_per_request,
                acknowledged=len(warm.acknowledged) + len(result.acknowledged),
                rows=len(stored_keys(db_path)),
                commits=commits_from_log(router),
                units=units,
            )
        )
    return rows, checks


def throughput_wrk(
    home: Path, sizes: list[tuple[int, float]], concurrency: int, rounds: int
) -> tuple[list[Row], list[StoreCheck]]:
    """Both servers up at once, measured in turns: bare, router, bare, router...

    This machine's speed drifts by tens of percent from minute to minute; a ratio
    taken within one round of a few seconds is steadier than one taken between two
    runs a minute apart. The median round is the figure to quote."""
    rows: list[Row] = []
    checks: list[StoreCheck] = []
    for size, seconds in sizes:
        db_path = home / f"wrk-{size}.db"
        bare = bare_server(home)
        router = sqlite_router(home, db_path, count_commits=True)
        with contextlib.ExitStack() as stack:
            for server in (bare, router):
                server.start()
                stack.callback(server.stop)
            for server, tag in ((bare, "b"), (router, "r")):
                warm = run_wrk(
                    server.url + WEBHOOK, wrk_template(home, f"w{tag}{size}w", size), 2, 8
                )
            runs = [warm]  # the router's: every alert they sent must be in the store
            for n in range(1, rounds + 1):
                for server, target in ((bare, "bare aiohttp"), (router, "router")):
                    template = wrk_template(home, f"w{target[0]}{size}r{n}", size)
                    cpu = server.cpu_seconds()
                    result = run_wrk(server.url + WEBHOOK, template, seconds, concurrency)
                    cpu = server.cpu_seconds() - cpu
                    rows.append(Row(f"{target} #{n}", size, result, cpu, server.peak_rss_mb()))
                    if server is router:
                        runs.append(result)
            units = metric_value(router.url, "router_store_transaction_duration_seconds_count")
        checks.append(
            StoreCheck(
                generator="wrk",
                alerts_per_request=size,
                sent=sum(run.requests for run in runs) * size,
                acknowledged=sum(run.ok for run in runs) * size,
                rows=len(stored_keys(db_path)),
                commits=commits_from_log(router),
                units=units,
                # each run may end with every connection's request stored, unanswered
                in_flight=len(runs) * concurrency * size,
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


def print_table(rows: list[Row], concurrency: int, generator: str, ratios: bool = True) -> None:
    print(f"\nthroughput, {generator} ({concurrency} connections, loopback, every alert new)")
    header = (
        f"{'target':<14}{'alerts/req':>11}{'requests':>10}{'non-2xx':>9}{'req/s':>10}"
        f"{'alerts/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'srv CPU ms/req':>16}{'gen CPU ms/req':>16}"
        f"{'srv peak RSS MiB':>18}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.result
        print(
            f"{row.target:<14}{row.alerts_per_request:>11}{r.requests:>10}{r.non_2xx:>9}"
            f"{r.rate:>10.0f}{r.rate * row.alerts_per_request:>10.0f}{r.p50 * 1000:>9.2f}"
            f"{r.p99 * 1000:>9.2f}{row.server_cpu / max(r.requests, 1) * 1000:>16.3f}"
            f"{r.client_cpu / max(r.requests, 1) * 1000:>16.3f}{row.peak_rss_mb:>18.1f}"
        )
    print()
    if not ratios:
        return
    by_size: dict[int, dict[str, Measured]] = {}
    for row in rows:
        by_size.setdefault(row.alerts_per_request, {})[row.target] = row.result
    for size, results in by_size.items():
        router, bare = results["router"], results["bare aiohttp"]
        ratio = router.rate / bare.rate if bare.rate else float("nan")
        print(f"ratio router/bare req/s at {size} alert(s)/request ({generator}): {ratio:.2f}")


def print_rounds(rows: list[Row], concurrency: int) -> None:
    """The wrk table, then each round's ratio and the median round."""
    print_table(rows, concurrency, "wrk, in rounds", ratios=False)
    for size in sorted({row.alerts_per_request for row in rows}):
        rate = {row.target: row.result.rate for row in rows if row.alerts_per_request == size}
        ratios = [
            rate[f"router #{n}"] / rate[f"bare aiohttp #{n}"]
            for n in range(1, len(rate) // 2 + 1)
            if rate[f"bare aiohttp #{n}"]
        ]
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"ratio router/bare req/s at {size} alert(s)/request (wrk):"
            f" median {statistics.median(ratios):.2f} (rounds: {each})"
        )


def print_checks(checks: list[StoreCheck]) -> None:
    print("\nstore after the throughput runs (warmup included)")
    for c in checks:
        verdict = "ok" if c.ok else "MISMATCH"
        store = ""
        if c.commits is not None and c.units:
            commits, fsyncs = c.commits
            store = (
                f"; {c.units:.0f} intake units in {commits} sqlite commits"
                f" ({c.units / max(commits, 1):.1f} a commit) and {fsyncs} fsyncs"
                f" ({c.units / max(fsyncs, 1):.1f} a fsync)"
            )
        print(
            f"  {c.generator:<10} {c.alerts_per_request:>2} alert(s)/request: {c.sent} alerts"
            f" sent, {c.acknowledged} acknowledged, {c.rows} rows [{verdict}]{store}"
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
    parser.add_argument(
        "--seconds", type=float, help="seconds of each wrk run (default 5; 2 with --quick)"
    )
    parser.add_argument("--rounds", type=int, help="wrk rounds (default 3; 1 with --quick)")
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
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    rounds = max(1, args.rounds or (1 if args.quick else 3))
    wrk = shutil.which("wrk")

    print(
        f"bench.intake: python {sys.version.split()[0]}, aiohttp {aiohttp.__version__},"
        f" sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs;"
        f" generators: {'wrk, ' if wrk else ''}in-process"
    )
    if not wrk:
        print("bench.intake: wrk is not installed (apt install wrk); its runs are skipped")
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        home = Path(tmp)
        try:
            checks = []
            if wrk:
                rows, wrk_checks = throughput_wrk(
                    home, [(size, seconds) for size, _, _ in sizes], concurrency, rounds
                )
                print_rounds(rows, concurrency)
                checks += wrk_checks
            rows, python_checks = throughput(home, sizes, concurrency)
            print_table(rows, concurrency, "in-process generator")
            checks += python_checks
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
