"""Paging benchmark: webhook -> DM latency, and storm control under 1,000 alerts.

``python -m bench.paging [--pages N] [--concurrency C]``

Prints figures; asserts nothing about speed. The router runs as a subprocess exactly
as deployed (``python -m router serve``), with a temporary SQLite file, an on-call
schedule whose eng-primary is a FakeSlack user, and its real Slack adapter pointed at
FakeSlack. FakeSlack and the load generator share this process's event loop, so the
time a DM "arrives" is the moment the fake handles ``chat.postMessage``.

(a) latency: N distinct alert groups, one webhook each, sent one at a time and then
    over C connections. For every group: request -> HTTP 200 (the webhook round trip,
    this run's baseline) and request -> the fake recording that group's DM (matched by
    the alertname in the text). The difference is the outbox's share: worker wake-up,
    claim, ``conversations.open`` + ``chat.postMessage``.
(b) storm: 1,000 alerts in 100 groups, then 10,000 alerts in 1,000 groups (10 per
    webhook; some groups sent twice, as Alertmanager resends), with
    ``paging.storm_limit: 5`` and FakeSlack answering every third call 429 (Retry-After
    1). Checked in what the on-call sees after the last edit and in the SQLite file:
    every group named to the on-call exactly once (its own page, or a line of the storm
    digest), every alert stored, no job dead; printed with the Slack calls made (by
    method, and how many were 429s) and the most edits any message got in one second.

Exits 1 when a count is wrong (a DM missing or extra, an alert row missing, a dead
job), 2 when a process cannot start. Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    WEBHOOK,
    WEBHOOK_HEADERS,
    BenchError,
    Server,
    alertmanager_webhook,
    fingerprint,
    query,
    router_server,
    settle,
    spread_ms,
)
from tests.fakes.slack_api import FakeSlack

SLACK_TOKEN = "xoxb-bench-token"
SIGNING_SECRET = "bench-signing-secret"
SLACK_ENV = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
PRIMARY = "U0BENCHPRI"
INCIDENTS = "C0BENCHINC"
DM_TIMEOUT = 20.0  # seconds one DM may take before it counts as missing
# A storm window far longer than the run: the digest key is the window's number, and a
# boundary crossed mid-storm would (by design) open a second digest and spoil the count.
STORM_WINDOW = 10**8
NAME = re.compile(r"Suspected incident: (BenchPage_[a-z0-9]+_\d+)")
DIGEST = re.compile(r"^\d+ more suspected incidents|^Alert storm digest, continued")
LINE = re.compile(r"^\d+\. \*(BenchPage_[a-z0-9]+_\d+)(?: on [^*]+)?\*: ")


# -- FakeSlack that timestamps DMs -------------------------------------------


class TimedSlack(FakeSlack):
    """FakeSlack that notes when each page DM (by alertname) was posted."""

    def __init__(self) -> None:
        super().__init__(
            SLACK_TOKEN,
            channels=(INCIDENTS,),
            users={PRIMARY: {"name": "bench", "email": "bench@example.com", "tz": "UTC"}},
        )
        self.posted_at: dict[str, float] = {}  # alertname -> perf_counter at chat.postMessage
        self._waiters: dict[str, asyncio.Future[float]] = {}

    def expect(self, name: str) -> asyncio.Future[float]:
        """A future set to the time the DM paging for ``name`` is posted."""
        future = asyncio.get_running_loop().create_future()
        if name in self.posted_at:
            future.set_result(self.posted_at[name])
        else:
            self._waiters[name] = future
        return future

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        result = super()._chat_post_message(args)
        at = time.perf_counter()
        match = NAME.match(str(args.get("text") or ""))
        if match:
            name = match.group(1)
            self.posted_at.setdefault(name, at)
            waiter = self._waiters.pop(name, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(at)
        return result


# -- router ------------------------------------------------------------------


def paging_config(slack: FakeSlack, storm_limit: int) -> dict[str, Any]:
    """On-call (eng-primary is FakeSlack's user), Slack at the fake, storm control."""
    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    return {
        "slack": {"api_url": slack.base_url, "incident_channel": INCIDENTS},
        "paging": {
            "ack_timeout_seconds": 3600,  # no escalation during the run
            "storm_limit": storm_limit,
            "storm_window_seconds": STORM_WINDOW,
        },
        "oncall": {"rotations": {"eng-primary": rotation | {"members": [PRIMARY]}}},
    }


def paging_router(home: Path, db_path: Path, slack: FakeSlack, storm_limit: int) -> Server:
    """A router on the SQLite file ``db_path`` that pages through ``slack``."""
    config = paging_config(slack, storm_limit)
    return router_server(home, f"sqlite:///{db_path}", extra=config, env=SLACK_ENV)


@contextlib.asynccontextmanager
async def running(server: Server) -> Any:
    # Start and stop in a thread: the fake lives on this loop and must keep answering
    # while the router drains its outbox at shutdown.
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


# -- payloads ----------------------------------------------------------------


def webhook(name: str, alerts: int) -> bytes:
    """An Alertmanager v4 webhook: one group ``name`` with ``alerts`` firing alerts."""
    fingerprints = [fingerprint(f"{name}/{j}") for j in range(alerts)]
    return json.dumps(
        alertmanager_webhook(name, "critical", "error rate above 5%", fingerprints)
    ).encode()


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers=WEBHOOK_HEADERS,
        timeout=aiohttp.ClientTimeout(total=30),
        connector=aiohttp.TCPConnector(limit=64),
    )


async def post(client: aiohttp.ClientSession, url: str, body: bytes) -> int:
    async with client.post(url + WEBHOOK, data=body) as response:
        await response.read()
        return response.status


# -- (a) latency ---------------------------------------------------------------


@dataclass
class Latency:
    label: str
    concurrency: int
    round_trip: list[float] = field(default_factory=list)  # request -> 200
    to_dm: list[float] = field(default_factory=list)  # request -> DM at the fake
    after_200: list[float] = field(default_factory=list)  # 200 -> DM
    sent: int = 0
    non_2xx: int = 0
    missing: int = 0
    elapsed: float = 0.0


async def measure_latency(
    client: aiohttp.ClientSession,
    url: str,
    slack: TimedSlack,
    run: str,
    count: int,
    concurrency: int,
) -> Latency:
    result = Latency(run, concurrency)
    names: Iterator[str] = iter(f"BenchPage_{run}_{i:04d}" for i in range(count))

    async def worker() -> None:
        for name in names:  # one shared iterator: each group is sent once
            posted = slack.expect(name)
            result.sent += 1
            started = time.perf_counter()
            status = await post(client, url, webhook(name, 1))
            answered = time.perf_counter()
            if status != 200:
                result.non_2xx += 1
                posted.cancel()
                continue
            try:
                at = await asyncio.wait_for(posted, DM_TIMEOUT)
            except TimeoutError:
                result.missing += 1
                continue
            result.round_trip.append(answered - started)
            result.to_dm.append(at - started)
            result.after_200.append(at - answered)

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - begin
    return result


async def latency_phase(home: Path, count: int, concurrency: int) -> list[Latency]:
    async with TimedSlack() as slack:
        server = paging_router(home, home / "latency.db", slack, storm_limit=100_000)
        async with running(server), session() as client:
            await measure_latency(client, server.url, slack, "warm", 20, 1)
            sequential = await measure_latency(client, server.url, slack, "seq", count, 1)
            parallel = await measure_latency(
                client, server.url, slack, f"c{concurrency}", count, concurrency
            )
    return [sequential, parallel]


# -- (b) storm ---------------------------------------------------------------


@dataclass
class Storm:
    groups: int
    storm_limit: int
    webhooks: int = 0
    non_2xx: int = 0
    page_dms: int = 0
    digest_dms: int = 0  # digest messages (parts) DMed to the on-call
    named_once: int = 0  # groups named to the on-call exactly once
    named_more: int = 0  # groups named more than once
    missing: int = 0  # groups not named at all
    calls: Counter[str] = field(default_factory=Counter)  # Slack calls by method
    rate_limited: int = 0  # calls answered 429
    most_edits_a_second: int = 0  # chat.update calls one message got in one second
    pages: int = 0
    pages_folded: int = 0
    alerts: int = 0
    alerts_sent: int = 0
    dead_jobs: int = 0
    settled: bool = False
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)

    def expect(self, what: str, got: Any, want: Any) -> None:
        if got != want:
            self.problems.append(f"{what}: got {got}, want {want}")


def named_to_the_on_call(dms: list[dict[str, Any]]) -> Counter[str]:
    """How often each group is named in ``dms``: its page, or a digest line."""
    named: Counter[str] = Counter()
    for message in dms:
        text = str(message["text"])
        page = NAME.match(text)
        if page is not None:
            named[page.group(1)] += 1
        elif DIGEST.match(text):
            for block in message["blocks"] or []:
                if block.get("type") == "section":
                    for line in block["text"]["text"].split("\n"):
                        if (found := LINE.match(line)) is not None:
                            named[found.group(1)] += 1
    return named


async def outbox_drained(db_path: Path) -> bool:
    """Wait until the router's outbox on ``db_path`` is drained (``settle``)."""

    async def rows(sql: str) -> list[tuple[Any, ...]]:
        return query(db_path, sql)

    return await settle(rows)


async def storm_phase(
    home: Path, groups: int, per_group: int, repeats: int, concurrency: int, storm_limit: int = 5
) -> Storm:
    result = Storm(groups, storm_limit)
    db_path = home / f"storm-{groups}.db"
    names = [f"BenchPage_storm{groups}_{i:04d}" for i in range(groups)]
    bodies = [webhook(name, per_group) for name in names]
    # Some groups again, byte for byte, as Alertmanager resends: nothing may change.
    bodies += bodies[:: max(1, groups // repeats)][:repeats]
    result.alerts_sent = groups * per_group
    async with TimedSlack() as slack:
        slack.rate_limit_every(3, retry_after=1)
        slack.stamp = time.monotonic  # when each call came, for edits per second
        server = paging_router(home, db_path, slack, storm_limit=storm_limit)
        async with running(server), session() as client:
            pending = iter(bodies)

            async def worker() -> None:
                for body in pending:
                    result.webhooks += 1
                    if await post(client, server.url, body) != 200:
                        result.non_2xx += 1

            begin = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            result.settled = await outbox_drained(db_path)
            result.elapsed = time.perf_counter() - begin
        # The router has stopped: FakeSlack's record and the file are final.
        dms = slack.dms_to(PRIMARY)
        result.page_dms = sum(1 for m in dms if NAME.match(m["text"]))
        result.digest_dms = sum(1 for m in dms if DIGEST.match(m["text"]))
        named = named_to_the_on_call(dms)
        result.named_once = sum(1 for name in names if named[name] == 1)
        result.named_more = sum(1 for name in names if named[name] > 1)
        result.missing = sum(1 for name in names if named[name] == 0)
        result.calls = Counter(c.method for c in slack.calls)
        result.rate_limited = sum(1 for c in slack.calls if c.status == 429)
        per_second = Counter(
            (c.args.get("ts"), int(c.at))
            for c in slack.calls
            if c.method == "chat.update" and (c.response or {}).get("ok") and c.at is not None
        )
        result.most_edits_a_second = max(per_second.values(), default=0)
    [(result.pages, result.pages_folded)] = query(
        db_path, "SELECT count(*), count(digest_key) FROM pages"
    )
    [(result.alerts,)] = query(db_path, "SELECT count(*) FROM alerts")
    [(result.dead_jobs,)] = query(db_path, "SELECT count(*) FROM jobs WHERE status = 'dead'")

    folded = max(0, groups - storm_limit)
    result.expect("webhooks answered non-200", result.non_2xx, 0)
    result.expect("outbox drained", result.settled, True)
    result.expect("groups named to the on-call exactly once", result.named_once, groups)
    result.expect("page DMs", result.page_dms, groups - folded)
    result.expect("pages rows", result.pages, groups)
    result.expect("pages folded into the digest", result.pages_folded, folded)
    result.expect("alert rows", result.alerts, result.alerts_sent)
    result.expect("dead jobs", result.dead_jobs, 0)
    return result


# -- report ------------------------------------------------------------------


def print_latency(rows: list[Latency]) -> None:
    print("\n(a) webhook -> page DM at FakeSlack, one new group per webhook (ms)")
    header = (
        f"{'run':<12}{'conns':>6}{'groups':>8}  {'measure':<26}{'p50':>9}{'p90':>9}"
        f"{'p99':>9}{'max':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        label = "sequential" if row.concurrency == 1 else "concurrent"
        for what, values in (
            ("webhook round trip (200)", row.round_trip),
            ("webhook -> DM posted", row.to_dm),
            ("200 -> DM (outbox share)", row.after_200),
        ):
            print(f"{label:<12}{row.concurrency:>6}{len(values):>8}  {what:<26}{spread_ms(values)}")
        rate = len(row.to_dm) / row.elapsed if row.elapsed else 0.0
        print(
            f"{'':<12}{'':>6}{'':>8}  {row.sent} sent, {row.non_2xx} non-200,"
            f" {row.missing} DMs missing after {DM_TIMEOUT:.0f}s, {rate:.0f} pages/s"
        )


def print_storm(rows: list[Storm], per_group: int) -> None:
    print(
        f"\n(b) storms: {per_group} alerts per group and webhook, storm_limit 5, FakeSlack"
        " answering every third call 429 (Retry-After 1)"
    )
    header = (
        f"{'groups':>7}{'alerts sent':>12}{'stored':>8}{'webhooks':>9}{'named once':>11}"
        f"{'twice+':>7}{'missing':>8}{'page DMs':>9}{'digest msgs':>12}{'Slack calls':>12}"
        f"{'429s':>6}{'edits/msg/s':>12}{'dead':>5}{'secs':>7}  verdict"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = "ok" if not r.problems else "MISMATCH"
        print(
            f"{r.groups:>7}{r.alerts_sent:>12}{r.alerts:>8}{r.webhooks:>9}{r.named_once:>11}"
            f"{r.named_more:>7}{r.missing:>8}{r.page_dms:>9}{r.digest_dms:>12}"
            f"{sum(r.calls.values()):>12}{r.rate_limited:>6}{r.most_edits_a_second:>12}"
            f"{r.dead_jobs:>5}{r.elapsed:>7.1f}  {verdict}"
        )
        methods = ", ".join(f"{m} {n}" for m, n in sorted(r.calls.items()))
        print(f"  {r.groups} groups: Slack calls by method: {methods}")
        for problem in r.problems:
            print(f"  {r.groups} groups: {problem}")


async def run(args: argparse.Namespace, home: Path) -> int:
    concurrency = max(1, args.concurrency)
    per_group = 10
    latency = await latency_phase(home, args.pages, concurrency)
    print_latency(latency)
    storms = [
        await storm_phase(home, groups, per_group, groups // 10, concurrency)
        for groups in (100, 1000)
    ]
    print_storm(storms, per_group)
    failures = [f"{r.label}: {r.missing} DMs missing" for r in latency if r.missing]
    failures += [f"{r.label}: {r.non_2xx} webhooks not answered 200" for r in latency if r.non_2xx]
    failures += [f"storm of {s.groups} groups: {p}" for s in storms for p in s.problems]
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.paging", description=__doc__)
    parser.add_argument("--pages", type=int, default=200, help="groups per latency run")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (default 8)")
    args = parser.parse_args(argv)
    print(
        f"bench.paging: python {sys.version.split()[0]}, aiohttp {aiohttp.__version__},"
        f" sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs;"
        " FakeSlack and the load generator in this process, the router a subprocess"
    )
    with tempfile.TemporaryDirectory(prefix="router-bench-paging-") as tmp:
        try:
            return asyncio.run(run(args, Path(tmp)))
        except BenchError as exc:
            print(f"bench.paging: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
