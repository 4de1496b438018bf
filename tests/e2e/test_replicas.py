"""Two real routers on one PostgreSQL schema, as replicas behind a load balancer.

Design rules 4 and 5: replicas never coordinate in memory. Unique constraints
deduplicate (one active page per alert group, one incident per page, one delivery per
Slack action) and the outbox is claimed with ``FOR UPDATE SKIP LOCKED``, so an HA
Alertmanager pair that sends every notification to both replicas, and a Slack click
that reaches both, still page once, declare once, announce once and open one
tracking issue.

Both routers run as deployed (``python -m router serve``), each on its own port, with
the same on-call configuration, the real Slack adapter pointed at FakeSlack and the
real GitHub adapter pointed at FakeGitHub; the fakes run on this test's event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import (
    INCIDENTS,
    PRIMARY,
    TOKEN,
    PostgresSchema,
    RouterProcess,
    StartRouter,
    alertmanager_webhook,
    declare_value,
    firing_alert,
    page_dms,
    paging_config,
    poll,
    press_body,
    slack_env,
    slack_signed_headers,
)
from tests.fakes.github_api import FakeGitHub
from tests.fakes.slack_api import FakeSlack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

WAIT = 20.0
GITHUB_TOKEN = "ghp_e2e_replicas_token"
REPO = "acme/incidents"


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    """FakeGitHub with a private tracking repo, served by the test's event loop."""
    async with FakeGitHub(token=GITHUB_TOKEN, repos={REPO: {"private": True}}) as github:
        yield github


async def start_replicas(
    start: StartRouter,
    schema: PostgresSchema,
    slack: FakeSlack,
    github: FakeGitHub | None = None,
    count: int = 2,
) -> list[RouterProcess]:
    """``count`` routers with one configuration on one schema, each on its own port.

    Started off the loop (one after the other): at start a router asks GitHub whether
    the tracking repo is private, and FakeGitHub answers from this loop.
    """
    # A storm limit above the groups sent: every group is paged on its own.
    config = paging_config(slack, storm_limit=100) | {"store": {"url": schema.url}}
    env = slack_env()
    if github is not None:
        config |= {
            "github": {"api_url": github.base_url, "repo": REPO},
            "incident": {"tracking_issue_at": "high"},
        }
        env |= {"GITHUB_TOKEN": GITHUB_TOKEN}
    return [await asyncio.to_thread(start, config=config, env=env) for _ in range(count)]


def alert_webhook(name: str) -> bytes:
    """An Alertmanager v4 notification for group ``name``: two critical alerts."""
    labels = {"alertname": name, "severity": "critical", "service": "checkout"}
    alerts = [
        firing_alert(
            labels | {"instance": f"api-{i}"},
            hashlib.sha256(f"{name}/{i}".encode()).hexdigest()[:16],
        )
        for i in range(2)
    ]
    return json.dumps(alertmanager_webhook(name, alerts, common_labels=labels)).encode()


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def ha_pair_sends(
    session: aiohttp.ClientSession, replicas: list[RouterProcess], names: list[str], times: int
) -> list[tuple[int, Any]]:
    """What an HA Alertmanager pair does: both send each group to every replica, at the
    same moment, and resend it; here every (group, replica, repeat) at once."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    bodies = {name: alert_webhook(name) for name in names}
    return await asyncio.gather(
        *(
            post(session, replica.webhook_url, bodies[name], headers)
            for _ in range(times)
            for name in names
            for replica in replicas
        )
    )


async def settled(schema: PostgresSchema, replicas: list[RouterProcess]) -> None:
    """Wait until every accepted delivery is applied and no side effect is pending or
    running (timers are due much later), and it stays so for a second."""
    deadline = time.monotonic() + WAIT
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        [busy] = schema.query(
            "SELECT (SELECT count(*) FROM jobs WHERE kind != 'timer'"
            " AND status IN ('pending', 'running'))"
            " + (SELECT count(*) FROM inbox WHERE status = 'pending') AS n"
        )
        if busy["n"] == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.0:
                return
        else:
            quiet_since = None
        await asyncio.sleep(0.05)
    jobs = schema.query("SELECT id, kind, key, status, attempts, last_error FROM jobs")
    outputs = "\n".join(r.output() for r in replicas)
    pytest.fail(f"the outbox did not drain in {WAIT:.0f}s: {jobs}\n{outputs}")


def top_level(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if not m.get("thread_ts")]


# -- tests ------------------------------------------------------------------------------


async def test_ha_alertmanager_pair_pages_each_group_once(
    postgres_schema: PostgresSchema, fake_slack: FakeSlack, start_router_async: StartRouter
) -> None:
    replicas = await start_replicas(start_router_async, postgres_schema, fake_slack)
    names = [f"ReplicaRace{i}" for i in range(6)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
        answers = []
        for _ in range(2):  # the group_interval resend: the same again, later
            answers += await ha_pair_sends(session, replicas, names, times=3)
    assert [status for status, _ in answers] == [200] * len(answers), answers
    assert {answer["alerts"] for _, answer in answers} == {2}, answers
    # One DM per group at Slack...
    await fake_slack.wait_for(lambda: all(page_dms(fake_slack, n) for n in names), timeout=WAIT)
    await settled(postgres_schema, replicas)
    for name in names:
        assert len(page_dms(fake_slack, name)) == 1, (name, fake_slack.summary())
    assert len(fake_slack.dms_to(PRIMARY)) == len(names), fake_slack.summary()
    assert len(fake_slack.calls_to("chat.postMessage")) == len(names), fake_slack.summary()
    # ... one page row per group, one row per alert, one DM job per group, none dead.
    pages = postgres_schema.query(
        "SELECT group_key, count(*) AS n FROM pages GROUP BY group_key ORDER BY group_key"
    )
    assert [(p["group_key"], p["n"]) for p in pages] == [
        (f'{{}}:{{alertname="{name}"}}', 1) for name in sorted(names)
    ]
    [alerts] = postgres_schema.query("SELECT count(*) AS n, sum(seen_count) AS seen FROM alerts")
    assert alerts["n"] == 2 * len(names)
    assert alerts["seen"] == 2 * len(names) * 2 * 3 * 2  # every delivery was recorded
    jobs = postgres_schema.query("SELECT kind, status, count(*) AS n FROM jobs GROUP BY 1, 2")
    assert {(j["kind"], j["status"]): j["n"] for j in jobs} == {
        ("slack.dm", "done"): len(names),
        ("timer", "pending"): len(names),  # each page's ack timeout, armed once
    }


async def test_a_click_reaching_both_replicas_declares_once(
    postgres_schema: PostgresSchema,
    fake_slack: FakeSlack,
    fake_github: FakeGitHub,
    start_router_async: StartRouter,
) -> None:
    replicas = await start_replicas(start_router_async, postgres_schema, fake_slack, fake_github)
    names = ["ReplicaDeclareA", "ReplicaDeclareB", "ReplicaDeclareC"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
        answers = await ha_pair_sends(session, replicas, names, times=2)
        assert [status for status, _ in answers] == [200] * len(answers), answers
        await fake_slack.wait_for(lambda: all(page_dms(fake_slack, n) for n in names), timeout=WAIT)
        pages = {name: page_dms(fake_slack, name) for name in names}
        assert [len(p) for p in pages.values()] == [1, 1, 1], fake_slack.summary()
        # (key, ts) of each page, read now: a declared page is edited, its button gone
        keys = {name: (declare_value(p[0]), p[0]["ts"]) for name, p in pages.items()}
        key, ts = keys[names[0]]

        # One click, delivered to both replicas at once, and retried by Slack (the same
        # action_ts); a double click (a new action_ts) also reaches both.
        interactions = [f"{r.url}/slack/interactions" for r in replicas]
        click = press_body(PRIMARY, "page.declare", key, fake_slack, ts)
        again = press_body(PRIMARY, "page.declare", key, fake_slack, ts)
        presses = [(url, body) for body in (click, click, again) for url in interactions]
        answers = await asyncio.gather(
            *(post(session, url, body, slack_signed_headers(body)) for url, body in presses)
        )
        assert [status for status, _ in answers] == [200] * len(answers), answers
        refused = [r for _, answer in answers for r in answer["refused"]]
        assert set(refused) <= {f"Already declared as INC-1 by <@{PRIMARY}>."}, answers

        announced = await fake_slack.wait_for(
            lambda: top_level(fake_slack.messages_in(INCIDENTS)), timeout=WAIT
        )
        await poll(lambda: fake_github.issues(REPO), WAIT, "the tracking issue")
        await settled(postgres_schema, replicas)
        assert len(top_level(fake_slack.messages_in(INCIDENTS))) == 1, fake_slack.summary()
        assert "INC-1" in announced[0]["text"]
        incidents = postgres_schema.query("SELECT number, page_key, status FROM incidents")
        assert [(i["number"], i["page_key"]) for i in incidents] == [(1, key)]
        [issue] = fake_github.issues(REPO)
        assert "INC-1" in issue["title"], issue
        assert len(fake_github.calls_to("POST", r".*/issues$")) == 1, fake_github.summary()

        # Two other pages declared at the same moment, each through another replica:
        # the incident numbers race (max + 1) and the loser retries: INC-2 and INC-3.
        bodies = [
            press_body(PRIMARY, "page.declare", keys[name][0], fake_slack, keys[name][1])
            for name in names[1:]
        ]
        answers = await asyncio.gather(
            *(
                post(session, url, body, slack_signed_headers(body))
                for body in bodies
                for url in interactions
            )
        )
        assert [a["ok"] for _, a in answers] == [True] * len(answers), answers
        await poll(lambda: len(fake_github.issues(REPO)) >= 3, WAIT, "three tracking issues")
        await settled(postgres_schema, replicas)

    incidents = postgres_schema.query("SELECT number, page_key FROM incidents ORDER BY number")
    assert [i["number"] for i in incidents] == [1, 2, 3], incidents
    assert len({i["page_key"] for i in incidents}) == 3
    announcements = top_level(fake_slack.messages_in(INCIDENTS))
    assert len(announcements) == 3, fake_slack.summary()
    for number in (1, 2, 3):
        assert sum(f"INC-{number}" in a["text"] for a in announcements) == 1, announcements
    issues = fake_github.issues(REPO)
    assert len(issues) == 3, fake_github.summary()
    assert sorted(i["title"].split(":")[0] for i in issues) == ["INC-1", "INC-2", "INC-3"], issues
    # Each page was DMed once and then edited in place; no job failed for good.
    assert len(fake_slack.dms_to(PRIMARY)) == len(names), fake_slack.summary()
    assert postgres_schema.query("SELECT key, last_error FROM jobs WHERE status = 'dead'") == []


DIGEST = re.compile(r"^(\d+) more suspected incidents")


async def test_storm_limit_holds_across_replicas(
    postgres_schema: PostgresSchema, fake_slack: FakeSlack, start_router_async: StartRouter
) -> None:
    limit, groups = 3, 24
    config = paging_config(fake_slack, storm_limit=limit, storm_window_seconds=10**8)
    config |= {"store": {"url": postgres_schema.url}}
    replicas = [
        await asyncio.to_thread(start_router_async, config=config, env=slack_env())
        for _ in range(2)
    ]
    names = [f"ReplicaStorm{i:02d}" for i in range(groups)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
        answers = await ha_pair_sends(session, replicas, names, times=1)
    assert [status for status, _ in answers] == [200] * len(answers), answers
    await settled(postgres_schema, replicas)
    [row] = postgres_schema.query(
        "SELECT count(*) AS pages, count(digest_key) AS folded FROM pages"
    )
    dms = fake_slack.dms_to(PRIMARY)
    paged = [m for m in dms if m["text"].startswith("Suspected incident:")]
    digests = [int(match[1]) for m in dms if (match := DIGEST.match(m["text"]))]
    assert row == {"pages": groups, "folded": groups - limit}, (row, digests)
    assert len(paged) == limit, [m["text"] for m in paged]
    assert digests == [groups - limit], digests
