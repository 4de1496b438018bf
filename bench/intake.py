"""Intake benchmark: the router, paging as users run it, against a bare aiohttp server.

``python -m bench.intake [--seconds S] [--rounds N] [--per-group N] [--quick]``

Prints figures; asserts nothing about speed. Every router runs the example
configuration's rotations, severity rules and storm control (storm_limit 5), with
Slack and PagerDuty stand-ins answering (``bench.standins``; PAGERDUTY_ROUTING_KEY
is set, so pages trigger PagerDuty too), on its event loop of choice (uvloop). The
bare server is plain aiohttp on asyncio and only decodes the JSON. Both run as
subprocesses on loopback, measured in the same run, in turns:

(a) distinct groups: wrk, one alert per request, every request a new group (so the
    first five page eng-primary, the rest fold into the storm digest); five rounds
    of bare, router, and the median round. Acceptance (req/s, p99 of the 200) and
    processing: after each router run the benchmark waits until the inbox is empty
    and the outbox idle ("drain"), and prints alerts applied per second over load and
    drain, the inbox lag (acceptance -> applied) and the server's CPU per request,
    load and drain.
(b) growing groups: wrk, one-alert webhooks into 10 groups until each holds
    ``--per-group`` alerts (5,000), in phases of 500 alerts a group, bare then
    router each phase; the router drains after each phase. ``--sets`` (5) sets of
    10 groups grow side by side, and each phase's p99 is the median over the sets:
    one set's phase is a few tenths of a second, whose p99 one checkpoint landing in
    it or not moves by half (over three sets the ratio of the last phase to the
    first still went from 0.8 to 1.5 between two runs of the same code). Per phase:
    p99, and the CPU per delivery (accepting and applying): flat if a delivery's cost
    does not grow with its group.
(c) fifty alerts per request, distinct groups (wrk, one round).
(d) in-process generator: it knows which request got which answer, so the store is
    checked row by row (every acknowledged alert stored once, after the drain).
(e) a big group: one 5,000-alert Alertmanager body (about 3 MB), with the router's
    peak resident memory before and after.
(f) crash check: SIGKILL in the middle of a load, restart on the same file; after
    the inbox drains, every acknowledged alert must be in the store.

Commits and fsyncs per request come from the SQLite engine's own counts, printed at
shutdown. The process exits non-zero when the store does not hold exactly what was
acknowledged, or the crash lost an acknowledged alert.
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
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    ROOT,
    ROUTER_SRC,
    TOKEN,
    WEBHOOK,
    WEBHOOK_HEADERS,
    BenchError,
    Server,
    alertmanager_webhook,
    clean_env,
    example_paging,
    example_people,
    fingerprint,
    free_port,
    http_get,
    percentile,
    query,
    router_server,
    waiting_deliveries,
)
from bench.standins import StandIns

# Runs the router exactly as ``python -m router`` does, and in addition writes the
# SQLite engine's commit and fsync counts to stderr when the store closes at shutdown.
# The counts are not exposed over HTTP.
_ROUTER_WITH_COMMIT_COUNT = """
import sys
try:
    from router.adapters.store import sqlite as _sqlite
except ImportError:  # a checkout from before the layered layout (BENCH_ROUTER_SRC)
    from router.store import sqlite as _sqlite

_close = _sqlite.SqliteStore.close

async def _close_and_report(self):
    await _close(self)
    print(f"BENCH_SQLITE_COMMITS {self.batches} {self.syncs}", file=sys.stderr, flush=True)

_sqlite.SqliteStore.close = _close_and_report
from router.cli import main
sys.exit(main(sys.argv[1:]))
"""
DRAIN_TIMEOUT = 600.0  # seconds the router may take to apply a run's backlog


# -- processes ---------------------------------------------------------------


def paging_router(home: Path, db_path: Path, standins: StandIns | None, tag: str) -> Server:
    """A router on ``db_path`` paging as the example configuration does (without
    ``standins``: no on-call, intake only)."""
    if standins is None:
        return router_server(home, f"sqlite:///{db_path}", tag=tag,
                             launcher=["-c", _ROUTER_WITH_COMMIT_COUNT])  # fmt: skip
    config = example_paging(standins.slack.base_url, standins.pagerduty.events_url)
    return router_server(
        home, f"sqlite:///{db_path}", tag=tag, extra=config, env=standins.env,
        launcher=["-c", _ROUTER_WITH_COMMIT_COUNT],
    )  # fmt: skip


def bare_server(home: Path) -> Server:
    port = free_port()
    return Server(
        name="bare",
        argv=[sys.executable, "-m", "bench.bare_server", str(port)],
        env=clean_env(),
        log_path=home / f"bare-{port}.log",
        port=port,
    )


def commits_from_log(server: Server) -> tuple[int, int] | None:
    """(commits, fsyncs) the SQLite engine made, as it reported them at shutdown."""
    for line in server.log_tail(limit=1_000_000).splitlines():
        if line.startswith("BENCH_SQLITE_COMMITS "):
            _, commits, fsyncs = line.split()
            return int(commits), int(fsyncs)
    return None


def drain(server: Server, db_path: Path, timeout: float = DRAIN_TIMEOUT) -> float:
    """Seconds until every accepted delivery is applied and the outbox is idle."""
    begin = time.perf_counter()
    deadline = begin + timeout
    quiet_since: float | None = None
    while time.perf_counter() < deadline:
        [(busy,)] = query(
            db_path,
            "SELECT count(*) FROM jobs WHERE kind != 'timer' AND status IN ('pending', 'running')"
            " AND due_at <= strftime('%s', 'now') + 5",
        )
        if busy == 0 and waiting_deliveries(db_path) == 0:
            quiet_since = quiet_since or time.perf_counter()
            if time.perf_counter() - quiet_since >= 0.3:
                return quiet_since - begin
        else:
            quiet_since = None
        time.sleep(0.05)
    raise BenchError(f"{server.name} did not drain in {timeout:.0f}s")


# -- metrics -------------------------------------------------------------------------


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the router's /metrics, by (name, labels)."""
    status, text = http_get(f"{server.url}/metrics", timeout=10)
    if status != 200:
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def lag_quantiles(before: Samples, after: Samples) -> tuple[float, float]:
    """p50 and p99 of the inbox lag between two scrapes (bucket upper bounds, s)."""
    buckets = sorted(
        (float(dict(labels)["le"]), value - before.get((name, labels), 0.0))
        for (name, labels), value in after.items()
        if name == "router_inbox_lag_seconds_bucket"
    )
    total = buckets[-1][1] if buckets else 0.0
    found = []
    for q in (0.5, 0.99):
        bound = next((le for le, count in buckets if count >= q * total), float("nan"))
        found.append(bound if total else float("nan"))
    return found[0], found[1]


# -- payloads ----------------------------------------------------------------

AlertKey = tuple[str, str]  # (groupKey, fingerprint)


@dataclass
class Request:
    body: bytes
    keys: list[AlertKey]


def wrk_template(home: Path, run: str, alerts_per_request: int) -> Path:
    """The webhook for ``bench/webhook.lua``: a new id in place of each @@ID@@, the
    request's group in place of @@GROUP@@."""
    document = alertmanager_webhook(
        f"Bench_{run}_@@GROUP@@",
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


def big_group_body(alerts: int) -> bytes:
    """One group of ``alerts`` pod alerts, as Alertmanager sends a big group."""
    common = {"alertname": "CheckoutLatencyHigh", "severity": "critical", "job": "kubernetes-pods",
              "namespace": "checkout", "cluster": "prod-eu-west-1"}  # fmt: skip
    items = []
    for i in range(alerts):
        pod = f"checkout-api-7d9f8b6c5-{i:05d}"
        items.append(
            {
                "status": "firing",
                "labels": common
                | {"instance": f"10.2.{i // 250}.{i % 250}:9100", "pod": pod, "container": "api"},
                "annotations": {
                    "summary": f"p99 latency above 1s on {pod}",
                    "description": f"p99 latency of {pod} has been above 1s for 10 minutes",
                    "runbook_url": "https://runbooks.example.com/checkout#latency",
                },
                "startsAt": "2024-05-01T10:00:00.123456789Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=histogram_quantile",
                "fingerprint": fingerprint(f"big/{i}"),
            }
        )
    document = {
        "version": "4", "groupKey": '{}:{alertname="CheckoutLatencyHigh"}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "incident-router",
        "groupLabels": {"alertname": "CheckoutLatencyHigh"}, "commonLabels": common,
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": items,
    }  # fmt: skip
    return (json.dumps(document) + "\n").encode()


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


def measure(
    server: Server, run: str, alerts_per_request: int, count: int, warmup: int, concurrency: int
) -> tuple[LoadResult, LoadResult, float]:
    """Warm up, then send ``count`` requests (in-process); (warmup, load, server CPU s)."""
    url = server.url + WEBHOOK
    warm = asyncio.run(run_load(url, make_requests(f"{run}w", warmup, alerts_per_request),
                                concurrency))  # fmt: skip
    cpu_before = server.cpu_seconds()
    result = asyncio.run(
        run_load(url, make_requests(f"{run}m", count, alerts_per_request), concurrency)
    )
    return warm, result, server.cpu_seconds() - cpu_before


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


def run_wrk(
    url: str,
    template: Path,
    seconds: float,
    concurrency: int,
    *,
    groups: int = 0,
    requests: int = 0,
    offset: int = 0,
) -> Measured:
    """One wrk run of ``seconds`` (or until ``requests`` answers); its Lua script prints
    one BENCH_WRK line. ``groups``: that many groups, growing, instead of one each."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    flag = template.with_suffix(f".{offset}.done")
    flag.unlink(missing_ok=True)
    env = os.environ | {"BENCH_TEMPLATE": str(template), "BENCH_TOKEN": TOKEN,
                        "BENCH_GROUPS": str(groups), "BENCH_REQUESTS": str(requests),
                        "BENCH_OFFSET": str(offset), "BENCH_FLAG": str(flag)}  # fmt: skip
    process = subprocess.Popen(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
         "-s", str(ROOT / "bench" / "webhook.lua"), url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if requests:
        while process.poll() is None and not flag.exists():
            time.sleep(0.001)
        process.send_signal(signal.SIGINT)  # wrk stops and prints its summary
    stdout, stderr = process.communicate(timeout=seconds + 60)
    completed = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
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


# -- the store -----------------------------------------------------------------------


def stored_keys(db_path: Path) -> list[AlertKey]:
    return [(row[0], row[1]) for row in query(db_path, "SELECT group_key, fingerprint FROM alerts")]


@dataclass
class Efficiency:
    """What a router process's SQLite engine did for the requests it answered."""

    shape: str
    requests: int
    commits: int
    fsyncs: int


def efficiency(shape: str, server: Server, requests: int) -> Efficiency | None:
    found = commits_from_log(server)
    return Efficiency(shape, requests, *found) if found else None


# -- (a) and (c): distinct groups ----------------------------------------------------


@dataclass
class Row:
    target: str
    alerts_per_request: int
    result: Measured
    server_cpu: float  # seconds, during the load
    peak_rss_mb: float
    drain: float | None = None  # seconds after the load until applied and sent
    drain_cpu: float = 0.0  # server CPU seconds while draining
    lag: tuple[float, float] = (float("nan"), float("nan"))  # p50, p99 seconds

    @property
    def applied_rate(self) -> float:
        """Alerts applied per second over load and drain."""
        seconds = self.result.elapsed + (self.drain or 0.0)
        return self.result.ok * self.alerts_per_request / seconds if seconds else 0.0


def distinct_groups(
    home: Path, standins: StandIns, size: int, seconds: float, concurrency: int, rounds: int
) -> tuple[list[Row], Efficiency | None]:
    """Bare and router in turns; the router drains after each of its runs."""
    rows: list[Row] = []
    db_path = home / f"distinct-{size}.db"
    bare = bare_server(home)
    router = paging_router(home, db_path, standins, f"distinct{size}")
    answered = 0
    with contextlib.ExitStack() as stack:
        for server in (bare, router):
            server.start()
            stack.callback(server.stop)
        for server, tag in ((bare, "b"), (router, "r")):
            warm = run_wrk(server.url + WEBHOOK, wrk_template(home, f"w{tag}{size}w", size), 2, 8)
            if server is router:
                answered += warm.requests
                drain(router, db_path)
        for n in range(1, rounds + 1):
            template = wrk_template(home, f"wb{size}r{n}", size)
            cpu = bare.cpu_seconds()
            result = run_wrk(bare.url + WEBHOOK, template, seconds, concurrency)
            rows.append(Row(f"bare aiohttp #{n}", size, result, bare.cpu_seconds() - cpu,
                            bare.peak_rss_mb()))  # fmt: skip
            template = wrk_template(home, f"wr{size}r{n}", size)
            before, cpu = scrape(router), router.cpu_seconds()
            result = run_wrk(router.url + WEBHOOK, template, seconds, concurrency)
            loaded = router.cpu_seconds()
            drained = drain(router, db_path)
            after = scrape(router)
            answered += result.requests
            rows.append(
                Row(f"router #{n}", size, result, loaded - cpu, router.peak_rss_mb(), drained,
                    router.cpu_seconds() - loaded, lag_quantiles(before, after))
            )  # fmt: skip
    return rows, efficiency(f"distinct groups, {size} alert(s)/request", router, answered)


# -- (b) growing groups --------------------------------------------------------------


@dataclass
class Phase:
    number: int
    group_set: int  # which set of groups (each set grows on its own)
    per_group: int  # alerts each group holds at the end of the phase (about)
    bare: Measured
    router: Measured
    drain: float
    router_cpu: float  # server CPU seconds, load and drain
    edits: int  # chat.update calls the stand-in answered in the phase


def growing_groups(
    home: Path, standins: StandIns, per_group: int, concurrency: int, sets: int,
    groups: int = 10,
) -> tuple[list[Phase], Efficiency | None, dict[str, int]]:  # fmt: skip
    """``sets`` sets of ``groups`` groups grow side by side, phase by phase: each phase
    of one set is a few tenths of a second of wrk, so its p99 is the 50th-worst
    answer, which one checkpoint landing in the phase or not can double. Each phase's
    p99 is the median over the sets."""
    step = 500
    phases: list[Phase] = []
    db_path = home / "growing.db"
    bare = bare_server(home)
    router = paging_router(home, db_path, standins, "growing")
    answered = 0
    with contextlib.ExitStack() as stack:
        for server in (bare, router):
            server.start()
            stack.callback(server.stop)
        templates = [wrk_template(home, f"grow{n}", 1) for n in range(sets)]
        for number, done in enumerate(range(step, per_group + 1, step), start=1):
            offset = number * 10_000_000  # ids of each phase apart from the others'
            for group_set, template in enumerate(templates):
                url = bare.url + WEBHOOK
                measured_bare = run_wrk(url, template, 300, concurrency, groups=groups,
                                        requests=step * groups, offset=offset)  # fmt: skip
                edits = standins.call(lambda: len(standins.slack.calls_to("chat.update")))
                cpu = router.cpu_seconds()
                url = router.url + WEBHOOK
                measured = run_wrk(url, template, 300, concurrency, groups=groups,
                                   requests=step * groups, offset=offset)  # fmt: skip
                drained = drain(router, db_path)
                answered += measured.requests
                edits = standins.call(lambda: len(standins.slack.calls_to("chat.update"))) - edits
                phases.append(Phase(number, group_set, done, measured_bare, measured, drained,
                                    router.cpu_seconds() - cpu, edits))  # fmt: skip
        sizes = dict(query(db_path, "SELECT group_key, count(*) FROM alerts GROUP BY group_key"))
    return phases, efficiency("growing groups, 1 alert/request", router, answered), sizes


# -- (d) in-process generator, store checked -------------------------------------------


@dataclass
class StoreCheck:
    alerts_per_request: int
    sent: int
    acknowledged: int
    rows: int
    drain: float

    @property
    def ok(self) -> bool:
        return self.rows == self.sent == self.acknowledged


def in_process(
    home: Path, standins: StandIns, sizes: list[tuple[int, int, int]], concurrency: int
) -> tuple[list[Row], list[StoreCheck]]:
    rows: list[Row] = []
    checks: list[StoreCheck] = []
    for alerts_per_request, count, warmup in sizes:
        bare = bare_server(home)
        bare.start()
        try:
            _, result, cpu = measure(bare, f"b{alerts_per_request}", alerts_per_request, count,
                                     warmup, concurrency)  # fmt: skip
            rss = bare.peak_rss_mb()
        finally:
            bare.stop()
        rows.append(Row("bare aiohttp", alerts_per_request, Measured.of(result), cpu, rss))
        db_path = home / f"inprocess-{alerts_per_request}.db"
        router = paging_router(home, db_path, standins, f"inprocess{alerts_per_request}")
        router.start()
        try:
            warm, result, cpu = measure(router, f"r{alerts_per_request}", alerts_per_request,
                                        count, warmup, concurrency)  # fmt: skip
            drained = drain(router, db_path)
            rss = router.peak_rss_mb()
        finally:
            router.stop()
        rows.append(Row("router", alerts_per_request, Measured.of(result), cpu, rss, drained))
        checks.append(
            StoreCheck(
                alerts_per_request=alerts_per_request,
                sent=(warmup + count) * alerts_per_request,
                acknowledged=len(warm.acknowledged) + len(result.acknowledged),
                rows=len(stored_keys(db_path)),
                drain=drained,
            )
        )
    return rows, checks


# -- (e) a big group -------------------------------------------------------------------


@dataclass
class BigGroup:
    alerts: int
    bytes: int
    status: int
    answer_seconds: float
    applied_seconds: float
    rss_before_mb: float
    rss_after_mb: float
    stored: int


def big_group(home: Path, standins: StandIns, alerts: int) -> BigGroup:
    body = big_group_body(alerts)
    db_path = home / "big.db"
    router = paging_router(home, db_path, standins, "big")
    router.start()
    try:
        before = router.peak_rss_mb()
        request = urllib.request.Request(router.url + WEBHOOK, body, WEBHOOK_HEADERS)
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        answered = time.perf_counter() - started
        applied = drain(router, db_path)
        after = router.peak_rss_mb()
    finally:
        router.stop()
    [(stored,)] = query(db_path, "SELECT count(*) FROM alerts")
    return BigGroup(alerts, len(body), status, answered, applied, before, after, stored)


# -- (f) crash check -------------------------------------------------------------------


@dataclass
class CrashCheck:
    requests: int
    result: LoadResult
    acknowledged: int
    found: int
    missing: int
    rows: int
    waiting_at_restart: int


def crash_check(
    home: Path,
    count: int,
    concurrency: int,
    kill_after: float,
    standins: StandIns | None = None,
) -> CrashCheck:
    """SIGKILL a router under load, restart it on the same file, let its inbox drain,
    and count: every acknowledged alert must be stored. ``standins``: paging on."""
    db_path = home / "crash.db"
    router = paging_router(home, db_path, standins, "crash")
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
    waiting = waiting_deliveries(db_path)
    # Restart on the same file: the router must open it (WAL recovery), be ready, and
    # apply what was accepted but not yet applied when it died.
    again = paging_router(home, db_path, standins, "crash-restart")
    again.start()
    try:
        drain(again, db_path)
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
        waiting_at_restart=waiting,
    )


# -- report ------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def print_rows(title: str, rows: list[Row], concurrency: int) -> None:
    print(f"\n{title} ({concurrency} connections, loopback)")
    header = (
        f"{'target':<16}{'alerts/req':>11}{'requests':>10}{'non-2xx':>8}{'req/s':>9}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'CPU ms/req':>11}{'drain s':>9}{'+CPU ms/req':>12}"
        f"{'applied alerts/s':>17}{'lag p50/p99 s':>15}{'peak RSS MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.result
        per = max(r.requests, 1)
        drained = "-" if row.drain is None else f"{row.drain:.1f}"
        more = "-" if row.drain is None else f"{row.drain_cpu / per * 1000:.3f}"
        applied = "-" if row.drain is None else f"{row.applied_rate:.0f}"
        lag = "-" if row.drain is None else f"{row.lag[0]:.3g}/{row.lag[1]:.3g}"
        print(
            f"{row.target:<16}{row.alerts_per_request:>11}{r.requests:>10}{r.non_2xx:>8}"
            f"{r.rate:>9.0f}{_ms(r.p50):>8}{_ms(r.p99):>8}"
            f"{row.server_cpu / per * 1000:>11.3f}{drained:>9}{more:>12}{applied:>17}"
            f"{lag:>15}{row.peak_rss_mb:>13.1f}"
        )


def print_ratios(rows: list[Row], what: str, target: float) -> list[str]:
    rate = {row.target: row for row in rows}
    ratios, p99s = [], []
    for n in range(1, len(rate) // 2 + 1):
        bare, router = rate.get(f"bare aiohttp #{n}"), rate.get(f"router #{n}")
        if bare and router and bare.result.rate:
            ratios.append(router.result.rate / bare.result.rate)
            p99s.append(router.result.p99)
    if not ratios:
        return []
    ratio, p99 = statistics.median(ratios), statistics.median(p99s)
    each = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"ratio router/bare req/s, {what} (wrk): median {ratio:.2f} (rounds: {each});"
          f" router p99 median {p99 * 1000:.1f} ms")  # fmt: skip
    missed = []
    if ratio < target:
        missed.append(f"{what}: router/bare {ratio:.2f}x, target {target}x")
    if p99 >= 0.025:
        missed.append(f"{what}: router p99 {p99 * 1000:.1f} ms, target < 25 ms")
    return missed


def print_growing(phases: list[Phase], sizes: dict[str, int], concurrency: int) -> list[str]:
    sets = max(p.group_set for p in phases) + 1
    print(f"\n(b) growing groups: one-alert webhooks into {len(sizes)} groups ({sets} sets of"
          f" {len(sizes) // sets}, side by side), phases of 500 alerts a group"
          f" ({concurrency} connections, wrk); p50 and p99: the median over the sets")  # fmt: skip
    by_phase: dict[int, list[Phase]] = {}
    for p in phases:
        by_phase.setdefault(p.number, []).append(p)
    each_set = {n: "/".join(f"{p.router.p99 * 1000:.1f}" for p in each)
                for n, each in by_phase.items()}  # fmt: skip
    width = max(len("p99 of each set"), *map(len, each_set.values())) + 2
    header = (
        f"{'phase':>6}{'alerts/group':>13}{'bare req/s':>11}{'bare p99':>9}{'router req/s':>13}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'p99 of each set':>{width}}{'drain s':>9}"
        f"{'CPU ms/delivery':>16}{'chat.update':>12}"
    )
    print(header)
    print("-" * len(header))
    p99: dict[int, float] = {}
    for number, each in by_phase.items():
        p99[number] = statistics.median(p.router.p99 for p in each)
        bare_rate = sum(p.bare.ok for p in each) / sum(p.bare.elapsed for p in each)
        rate = sum(p.router.ok for p in each) / sum(p.router.elapsed for p in each)
        per = max(sum(p.router.requests for p in each), 1)
        print(
            f"{number:>6}{each[0].per_group:>13}{bare_rate:>11.0f}"
            f"{_ms(statistics.median(p.bare.p99 for p in each)):>9}{rate:>13.0f}"
            f"{_ms(statistics.median(p.router.p50 for p in each)):>8}{_ms(p99[number]):>8}"
            f"{each_set[number]:>{width}}"
            f"{sum(p.drain for p in each):>9.1f}"
            f"{sum(p.router_cpu for p in each) / per * 1000:>16.3f}"
            f"{sum(p.edits for p in each):>12}"
        )
    bare_rate = sum(p.bare.ok for p in phases) / sum(p.bare.elapsed for p in phases)
    router_rate = sum(p.router.ok for p in phases) / sum(p.router.elapsed for p in phases)
    ratio = router_rate / bare_rate if bare_rate else float("nan")
    worst = max(p99.values())
    first, last = p99[min(p99)], p99[max(p99)]
    print(f"ratio router/bare req/s, growing groups (wrk): {ratio:.2f}; router p99 worst phase"
          f" {worst * 1000:.1f} ms; p99 of the last 500 alerts a group / the first 500:"
          f" {last / first:.2f} ({last * 1000:.1f} / {first * 1000:.1f} ms)")  # fmt: skip
    held = sorted(sizes.values())
    print(f"alerts per group at the end: {held[0]}..{held[-1]}")
    missed = []
    if ratio < 0.5:
        missed.append(f"growing groups: router/bare {ratio:.2f}x, target 0.5x")
    if worst >= 0.025:
        missed.append(f"growing groups: router p99 {worst * 1000:.1f} ms, target < 25 ms")
    if last > 1.5 * first:
        missed.append(f"growing groups: p99 last/first 500 {last / first:.2f}, target <= 1.5")
    return missed


def print_checks(checks: list[StoreCheck]) -> None:
    print("\n(d) the store after the in-process runs (warmup included), once drained")
    for c in checks:
        verdict = "ok" if c.ok else "MISMATCH"
        print(f"  {c.alerts_per_request:>2} alert(s)/request: {c.sent} alerts sent,"
              f" {c.acknowledged} acknowledged, {c.rows} rows [{verdict}]"
              f" (drained {c.drain:.1f}s after the load)")  # fmt: skip


def print_efficiency(found: list[Efficiency]) -> None:
    print("\ncommits and fsyncs (the SQLite engine's counts; each router process's whole life)")
    for e in found:
        print(f"  {e.shape:<40} {e.requests:>8} requests, {e.commits:>7} commits"
              f" ({e.commits / max(e.requests, 1):.3f} a request), {e.fsyncs:>6} fsyncs"
              f" ({e.fsyncs / max(e.requests, 1):.3f} a request)")  # fmt: skip


def print_big(big: BigGroup) -> None:
    print(f"\n(e) a big group: {big.alerts} alerts in one body of {big.bytes / 1e6:.1f} MB:"
          f" answered {big.status} in {big.answer_seconds * 1000:.0f} ms, applied"
          f" {big.applied_seconds:.1f}s later, {big.stored} alerts stored; router peak RSS"
          f" {big.rss_before_mb:.1f} MiB before, {big.rss_after_mb:.1f} MiB after")  # fmt: skip


def print_crash(crash: CrashCheck, concurrency: int) -> None:
    r = crash.result
    killed = "never" if r.killed_at is None else f"{r.killed_at:.2f}s"
    print(
        f"\n(f) crash check: {crash.requests} requests x 1 alert, {concurrency} connections,"
        f" SIGKILL at {killed} after {r.answered_before_kill} answers;"
        f" {r.ok} acknowledged (2xx), {r.sent - r.ok} failed {dict(r.errors)};"
        f" {crash.waiting_at_restart} accepted deliveries waited in the inbox at the restart;"
        f" {crash.rows} rows once drained"
    )
    print(
        f"crash check: {crash.acknowledged} acknowledged, {crash.found} found,"
        f" {crash.missing} missing"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument("--seconds", type=float, help="seconds of each wrk run (5; 2 quick)")
    parser.add_argument("--rounds", type=int, help="(a): wrk rounds (5; 1 with --quick)")
    parser.add_argument("--per-group", type=int, help="(b): alerts a group (5000; 1000 quick)")
    parser.add_argument("--sets", type=int, help="(b): sets of 10 groups (5; 1 quick)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument("--requests", type=int, help="(d): requests at 1 alert (3000; 300)")
    parser.add_argument("--crash-requests", type=int, help="(f): requests (2000; 500 quick)")
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    args = parser.parse_args(argv)

    seconds = args.seconds or (2.0 if args.quick else 5.0)
    # Five: on a shared machine one round's bare server can run a third slower than the
    # next; the median of five is steadier than that of three.
    rounds = max(1, args.rounds or (1 if args.quick else 5))
    per_group = max(500, args.per_group or (1000 if args.quick else 5000))
    small = args.requests or (300 if args.quick else 3000)
    warmup_small, warmup_large = (30, 10) if args.quick else (300, 50)
    crash_requests = args.crash_requests or (500 if args.quick else 2000)
    concurrency = max(1, args.concurrency)
    sets = max(1, args.sets or (1 if args.quick else 5))
    wrk = shutil.which("wrk")

    print(
        f"bench.intake: python {sys.version.split()[0]}, aiohttp {aiohttp.__version__},"
        f" sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs; router from {ROUTER_SRC};"
        f" generators: {'wrk, ' if wrk else ''}in-process"
    )
    print(
        "router: the example configuration's rotations, severity rules and storm control"
        " (storm_limit 5), Slack and PagerDuty stand-ins answering; bare: plain aiohttp"
    )
    if not wrk:
        print("bench.intake: wrk is not installed (apt install wrk); its runs are skipped")
    users, channels = example_people()
    missed: list[str] = []
    found: list[Efficiency] = []
    with (
        tempfile.TemporaryDirectory(prefix="router-bench-") as tmp,
        StandIns(users, channels) as standins,
    ):
        home = Path(tmp)
        try:
            if wrk:
                rows, eff = distinct_groups(home, standins, 1, seconds, concurrency, rounds)
                print_rows("(a) distinct groups, one alert per request (wrk, in rounds)", rows,
                           concurrency)  # fmt: skip
                missed += print_ratios(rows, "distinct groups, 1 alert/request", 0.6)
                found += [eff] if eff else []
                standins.reset()
                phases, eff, sizes = growing_groups(home, standins, per_group, concurrency, sets)
                missed += print_growing(phases, sizes, concurrency)
                found += [eff] if eff else []
                standins.reset()
                rows, eff = distinct_groups(home, standins, 50, seconds, concurrency, 1)
                print_rows("(c) distinct groups, fifty alerts per request (wrk)", rows,
                           concurrency)  # fmt: skip
                print_ratios(rows, "distinct groups, 50 alerts/request", 0.0)
                found += [eff] if eff else []
                standins.reset()
            sizes_d = [(1, small, warmup_small), (50, max(1, small // 3), warmup_large)]
            rows, checks = in_process(home, standins, sizes_d, concurrency)
            print_rows("(d) in-process generator (it caps the bare server: quote wrk's figures)",
                       rows, concurrency)  # fmt: skip
            print_checks(checks)
            standins.reset()
            big = big_group(home, standins, 5000)
            print_big(big)
            standins.reset()
            crash = crash_check(home, crash_requests, min(16, concurrency), 1.0, standins)
            print_crash(crash, min(16, concurrency))
            print_efficiency(found)
        except BenchError as exc:
            print(f"bench.intake: {exc}", file=sys.stderr)
            return 2
    print("\ntargets of issue 9 not met: " + ("; ".join(missed) if missed else "none"))
    failed = [c for c in checks if not c.ok]
    if failed:
        print("FAIL: the store does not hold exactly the alerts sent", file=sys.stderr)
    if big.status != 200 or big.stored != big.alerts:
        print(f"FAIL: the big group was answered {big.status}, {big.stored} stored",
              file=sys.stderr)  # fmt: skip
    if crash.missing:
        print(f"FAIL: {crash.missing} acknowledged alerts lost in the crash", file=sys.stderr)
    return 1 if failed or crash.missing or big.status != 200 else 0


if __name__ == "__main__":
    sys.exit(main())
