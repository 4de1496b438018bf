"""Replicas benchmark: PostgreSQL against SQLite, and two replicas racing on one database.

``python -m bench.replicas [--requests N] [--rounds R] [--concurrency C]``

Prints figures; asserts nothing about speed. Every router runs as a subprocess exactly
as deployed (``python -m router serve``); the load generator (and FakeSlack, in b) run
in this process, on loopback. PostgreSQL is the server at ROUTER_TEST_POSTGRES_URL
(default ``postgresql://postgres@127.0.0.1:5432/test``); each run gets a schema of its
own, dropped at the end.

(a) ingest: one router on PostgreSQL, then one on SQLite, the same load: N Alertmanager
    webhooks of one new alert each over C connections, after a warmup. Side by side,
    with the ratio PostgreSQL/SQLite. Checked: the store holds exactly one row per
    alert acknowledged.
(b) race: two routers on one PostgreSQL schema, each with the on-call configuration
    and the real Slack adapter pointed at one FakeSlack. R rounds, one after another:
    each round a new alert group, sent to both replicas at the same moment (what an
    HA Alertmanager pair does). Counted in the ``pages`` table and at FakeSlack:
    pages and page DMs per group. "double pages" must be 0.

Exits 1 on a correctness failure (a double page, a missing page or DM, a row missing
or extra, a non-2xx answer, a dead job), 2 when a process cannot start or PostgreSQL
is not there. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    WEBHOOK,
    WEBHOOK_HEADERS,
    BenchError,
    Server,
    query,
    router_server,
    settle,
    spread_ms,
)
from bench.intake import LoadResult, measure
from bench.paging import NAME, PRIMARY, SLACK_ENV, TimedSlack, paging_config, webhook

DM_TIMEOUT = 60.0  # seconds all page DMs of the race may take to arrive after the last round


def postgres_url() -> str:
    return os.environ.get("ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# -- PostgreSQL schema -----------------------------------------------------------------


class Schema:
    """A schema of its own on the PostgreSQL server; ``url`` is a router store URL."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.name = "router_bench_" + uuid.uuid4().hex[:12]
        separator = "&" if "?" in base else "?"
        self.url = f"{base}{separator}options=-csearch_path%3D{self.name}"

    def __enter__(self) -> Schema:
        try:
            with psycopg.connect(self.base, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f"CREATE SCHEMA {self.name}")
        except psycopg.Error as exc:
            raise BenchError(f"no PostgreSQL at {self.base}: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())


# -- routers -----------------------------------------------------------------------------


def metric_sum(server: Server, name: str) -> float:
    """The sum of all samples of ``name`` on the router's /metrics."""
    with contextlib.suppress(OSError):
        import urllib.request

        with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )
    return float("nan")


# -- (a) ingest ------------------------------------------------------------------------


@dataclass
class Ingest:
    engine: str
    result: LoadResult
    server_cpu: float
    sent: int
    acknowledged: int
    rows: int

    @property
    def rate(self) -> float:
        return self.result.ok / self.result.elapsed if self.result.elapsed else 0.0

    @property
    def ok(self) -> bool:
        return self.rows == self.sent == self.acknowledged


def ingest(
    home: Path,
    engine: str,
    store_url: str,
    count: int,
    warmup: int,
    concurrency: int,
    rows: Callable[[str], list[tuple[Any, ...]]],
) -> Ingest:
    server = router_server(home, store_url, tag=engine)
    server.start()
    try:
        warm, result, cpu = measure(server, engine[:2], 1, count, warmup, concurrency)
        # Accepted means stored in the inbox: wait until every delivery is applied.
        asyncio.run(settle(lambda sql: asyncio.to_thread(rows, sql)))
    finally:
        server.stop()
    acknowledged = len(warm.acknowledged) + len(result.acknowledged)
    return Ingest(engine, result, cpu, warmup + count, acknowledged, rows=0)


def ingest_phase(
    home: Path, schema: Schema, count: int, warmup: int, concurrency: int
) -> list[Ingest]:
    postgres = ingest(home, "postgresql", schema.url, count, warmup, concurrency, schema.query)
    [(postgres.rows,)] = schema.query("SELECT count(*) FROM alerts")
    db_path = home / "ingest.db"
    sqlite = ingest(home, "sqlite", f"sqlite:///{db_path}", count, warmup, concurrency,
                    lambda sql: query(db_path, sql))  # fmt: skip
    [(sqlite.rows,)] = query(db_path, "SELECT count(*) FROM alerts")
    return [postgres, sqlite]


def print_ingest(rows: list[Ingest], concurrency: int) -> None:
    print(
        f"\n(a) ingest: one router, 1 new alert per Alertmanager webhook,"
        f" {concurrency} connections, loopback (srv CPU: the router process only)"
    )
    header = (
        f"{'engine':<12}{'requests':>9}{'non-2xx':>9}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}"
        f"{'p99 ms':>9}{'srv CPU ms/req':>16}{'rows':>7}  store"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.result
        print(
            f"{row.engine:<12}{r.sent:>9}{r.sent - r.ok:>9}{row.rate:>9.0f}"
            f"{r.percentile(0.5) * 1000:>9.2f}{r.percentile(0.9) * 1000:>9.2f}"
            f"{r.percentile(0.99) * 1000:>9.2f}{row.server_cpu / max(r.sent, 1) * 1000:>16.3f}"
            f"{row.rows:>7}  {'ok' if row.ok else 'MISMATCH'}"
        )
        if r.errors or set(r.statuses) - {200}:
            print(f"  {row.engine}: statuses {dict(r.statuses)} errors {dict(r.errors)}")
    postgres, sqlite = rows
    ratio = postgres.rate / sqlite.rate if sqlite.rate else float("nan")
    p50 = postgres.result.percentile(0.5) / sqlite.result.percentile(0.5)
    print(f"ratio PostgreSQL/SQLite: req/s {ratio:.2f}, p50 latency {p50:.2f}")


# -- (b) two replicas racing -----------------------------------------------------------


@dataclass
class Race:
    rounds: int
    round_trip: list[float] = field(default_factory=list)  # both replicas answered
    to_dm: list[float] = field(default_factory=list)  # round start -> DM at the fake
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted_alerts: int = 0  # alerts acknowledged, summed over both replicas' answers
    elapsed: float = 0.0  # first round sent -> last round answered
    dm_wait: float = 0.0  # after the last round, until every DM had arrived
    settled: bool = False
    page_rows: int = 0
    groups_with_pages: int = 0
    double_pages: int = 0  # groups with more than one page row
    page_dms: int = 0
    groups_dmed: int = 0
    double_dms: int = 0  # groups DMed more than once
    alert_rows: int = 0
    dm_jobs: int = 0
    dead_jobs: int = 0
    opened_by: list[float] = field(default_factory=list)  # pages opened, per replica
    sent_by: list[float] = field(default_factory=list)  # page DMs sent, per replica
    problems: list[str] = field(default_factory=list)

    def expect(self, what: str, got: Any, want: Any) -> None:
        if got != want:
            self.problems.append(f"{what}: got {got}, want {want}")


async def race_phase(home: Path, schema: Schema, rounds: int) -> Race:
    result = Race(rounds)
    names: Iterator[str] = (f"BenchPage_replicas_{i:05d}" for i in range(rounds))
    async with TimedSlack() as slack:
        config = paging_config(slack, storm_limit=1_000_000)  # every group pages on its own
        replicas = [
            router_server(home, schema.url, tag=f"replica{i}", extra=config, env=SLACK_ENV)
            for i in "ab"
        ]
        started: list[Server] = []
        try:
            # Off the loop: FakeSlack lives on it. One after the other: migrations.
            for replica in replicas:
                await asyncio.to_thread(replica.start)
                started.append(replica)
            connector = aiohttp.TCPConnector(limit=8)
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(
                connector=connector, timeout=timeout, headers=WEBHOOK_HEADERS
            ) as session:

                async def send(url: str, body: bytes) -> None:
                    try:
                        async with session.post(url + WEBHOOK, data=body) as response:
                            answer = await response.read()
                            result.statuses[response.status] += 1
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        result.errors[type(exc).__name__] += 1
                        return
                    if response.status == 200:
                        result.accepted_alerts += int(json.loads(answer).get("alerts", 0))

                dms: list[tuple[float, asyncio.Future[float]]] = []
                begin = time.perf_counter()
                for name in names:
                    body = webhook(name, 1)
                    posted = slack.expect(name)
                    started_at = time.perf_counter()
                    await asyncio.gather(*(send(r.url, body) for r in replicas))
                    result.round_trip.append(time.perf_counter() - started_at)
                    dms.append((started_at, posted))
                last_round = time.perf_counter()
                result.elapsed = last_round - begin
                for started_at, posted in dms:
                    remaining = DM_TIMEOUT - (time.perf_counter() - last_round)
                    with contextlib.suppress(TimeoutError):
                        at = await asyncio.wait_for(posted, max(0.01, remaining))
                        result.to_dm.append(at - started_at)
                result.dm_wait = time.perf_counter() - last_round
            result.settled = await settle(lambda sql: asyncio.to_thread(schema.query, sql))
            result.opened_by = [metric_sum(r, "router_pages_opened_total") for r in replicas]
            result.sent_by = [metric_sum(r, "router_pages_sent_total") for r in replicas]
        finally:
            for replica in started:
                await asyncio.to_thread(replica.stop)
        # Both replicas have stopped: FakeSlack's record and the tables are final.
        per_group_dms = Counter(
            match.group(1)
            for m in slack.dms_to(PRIMARY)
            if (match := NAME.match(str(m["text"]))) is not None
        )
    result.page_dms = sum(per_group_dms.values())
    result.groups_dmed = len(per_group_dms)
    result.double_dms = sum(1 for n in per_group_dms.values() if n > 1)
    per_group_pages = schema.query("SELECT group_key, count(*) FROM pages GROUP BY group_key")
    result.page_rows = sum(n for _, n in per_group_pages)
    result.groups_with_pages = len(per_group_pages)
    result.double_pages = sum(1 for _, n in per_group_pages if n > 1)
    [(result.alert_rows,)] = schema.query("SELECT count(*) FROM alerts")
    [(result.dm_jobs,)] = schema.query("SELECT count(*) FROM jobs WHERE kind = 'slack.dm'")
    [(result.dead_jobs,)] = schema.query("SELECT count(*) FROM jobs WHERE status = 'dead'")

    result.expect("answers other than 200", sum(result.statuses.values()) - result.statuses[200], 0)
    result.expect("requests that failed", sum(result.errors.values()), 0)
    result.expect("alerts accepted (both replicas)", result.accepted_alerts, 2 * rounds)
    result.expect("outbox drained", result.settled, True)
    result.expect("groups with a page row", result.groups_with_pages, rounds)
    result.expect("page rows", result.page_rows, rounds)
    result.expect("groups paged by DM", result.groups_dmed, rounds)
    result.expect("page DMs", result.page_dms, rounds)
    result.expect("DM jobs", result.dm_jobs, rounds)
    result.expect("alert rows", result.alert_rows, rounds)
    result.expect("dead jobs", result.dead_jobs, 0)
    return result


def print_race(race: Race) -> None:
    print(
        f"\n(b) two PostgreSQL replicas, {race.rounds} rounds: each a new alert group sent"
        " to both at once"
    )
    print(f"double pages: {race.double_pages}")
    print(
        f"  pages table: {race.page_rows} rows for {race.groups_with_pages} groups"
        f" ({race.double_pages} groups with more than one)"
    )
    print(
        f"  FakeSlack:   {race.page_dms} page DMs for {race.groups_dmed} groups"
        f" ({race.double_dms} groups DMed more than once)"
    )
    print(
        f"  alerts rows {race.alert_rows}, alerts accepted {race.accepted_alerts},"
        f" DM jobs {race.dm_jobs}, dead jobs {race.dead_jobs}, statuses"
        f" {dict(race.statuses)}{', errors ' + str(dict(race.errors)) if race.errors else ''}"
    )
    split = "/".join(f"{v:.0f}" for v in race.opened_by)
    sent = "/".join(f"{v:.0f}" for v in race.sent_by)
    print(f"  pages opened by replica a/b: {split}; page DMs sent by replica a/b: {sent}")
    header = f"  {'measure (ms)':<34}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}"
    print(header)
    for what, values in (
        ("round: both replicas answered", race.round_trip),
        ("round start -> DM at FakeSlack", race.to_dm),
    ):
        print(f"  {what:<34}{spread_ms(values)}")
    rate = race.rounds / race.elapsed if race.elapsed else 0.0
    print(
        f"  {race.rounds} rounds in {race.elapsed:.1f}s ({rate:.0f} rounds/s), the last DM"
        f" {race.dm_wait:.2f}s after the last round; verdict:"
        f" {'ok' if not race.problems else 'MISMATCH'}"
    )
    for problem in race.problems:
        print(f"  {problem}")


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="ingest requests (3000)")
    parser.add_argument("--warmup", type=int, default=300, help="ingest warmup requests (300)")
    parser.add_argument("--concurrency", type=int, default=32, help="ingest connections (32)")
    parser.add_argument("--rounds", type=int, default=1000, help="race rounds (1000)")
    args = parser.parse_args(argv)
    concurrency = max(1, args.concurrency)
    server_version = "unreachable"
    with contextlib.suppress(psycopg.Error), psycopg.connect(postgres_url()) as conn:
        server_version = conn.info.parameter_status("server_version") or "?"
    print(
        f"bench.replicas: python {sys.version.split()[0]}, aiohttp {aiohttp.__version__},"
        f" sqlite {sqlite3.sqlite_version}, postgresql {server_version.split()[0]},"
        f" psycopg {psycopg.__version__}, {os.cpu_count()} CPUs;"
        " load generator (and FakeSlack) in this process"
    )
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="router-bench-replicas-") as tmp:
        home = Path(tmp)
        try:
            with Schema(postgres_url()) as schema:
                rows = ingest_phase(home, schema, args.requests, args.warmup, concurrency)
            print_ingest(rows, concurrency)
            failures += [
                f"ingest on {r.engine}: {r.sent} sent, {r.acknowledged} acknowledged, {r.rows} rows"
                for r in rows
                if not r.ok
            ]
            with Schema(postgres_url()) as schema:
                race = asyncio.run(race_phase(home, schema, args.rounds))
            print_race(race)
            failures += [f"race: {p}" for p in race.problems]
        except BenchError as exc:
            print(f"bench.replicas: {exc}", file=sys.stderr)
            return 2
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
