"""Alert storms, as the on-call sees them in Slack after the last message edit.

The real app, its inbox processor and outbox worker, the real slack_sdk client
against FakeSlack (which refuses anything over Block Kit's limits), a frozen clock.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from router.core import messages
from router.core.jobs import JobStatus
from tests.conftest import am_alert, am_payload
from tests.fakes.slack_api import block_errors
from tests.harness import INCIDENTS, PRIMARY, SECONDARY, Harness, inbox_drained, running_router

PAGE = re.compile(r"^Suspected incident: (Storm\d{3})")
DIGEST = re.compile(r"^(\d+) more suspected incidents|^Alert storm digest, continued")
LINE = re.compile(
    r"^(\d+)\. \*(Storm\d{3})(?: on [^*]+)?\*: (\w+), (\d+) firing(?:, \d+ resolved)?; (.+)$"
)


def group(i: int, alerts: int = 10) -> dict[str, Any]:
    """An Alertmanager delivery of group ``Storm<i>`` with ``alerts`` firing alerts."""
    name = f"Storm{i:03d}"
    return am_payload(
        groupKey=f'{{}}:{{alertname="{name}"}}',
        groupLabels={"alertname": name},
        commonLabels={"alertname": name, "severity": "warning"},
        alerts=[
            am_alert(f"{name}-{j}", alertname=name, severity="warning", instance=f"host-{j}")
            for j in range(alerts)
        ],
    )


def page_dms(h: Harness) -> list[dict[str, Any]]:
    return [m for m in h.slack.dms_to(PRIMARY) if PAGE.match(m["text"])]


def digest_dms(h: Harness) -> list[dict[str, Any]]:
    return [m for m in h.slack.dms_to(PRIMARY) if DIGEST.match(m["text"])]


def digest_lines(h: Harness) -> list[tuple[int, str, str, int, str]]:
    """(position, group, severity, firing, state) of every line the digests show now."""
    found = []
    for message in digest_dms(h):
        for block in message["blocks"]:
            if block["type"] == "section":
                for line in block["text"]["text"].split("\n"):
                    if match := LINE.match(line):
                        n, name, severity, firing, state = match.groups()
                        found.append((int(n), name, severity, int(firing), state))
    return found


def named_to_the_on_call(h: Harness) -> Counter[str]:
    """How often each group is named to eng-primary: its own page, or a digest line."""
    named = Counter(PAGE.match(m["text"])[1] for m in page_dms(h))  # type: ignore[index]
    named.update(name for _, name, _, _, _ in digest_lines(h))
    return named


def assert_edits_coalesced(h: Harness, interval: float = 1.0) -> None:
    """No message was edited twice within ``interval`` of the router's clock."""
    edits: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for call in h.slack.calls_to("chat.update"):
        if (call.response or {}).get("ok"):
            edits[(call.args["channel"], call.args["ts"])].append(call.at)
    for message, stamps in edits.items():
        stamps.sort()
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert all(gap >= timedelta(seconds=interval) for gap in gaps), (message, stamps)


async def send_all(h: Harness, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        await h.alertmanager(payload, applied=False)
    await inbox_drained(h.store, within=60)


async def test_a_storm_names_every_group_to_the_on_call_once_through_429s(
    tmp_path: Path,
) -> None:
    """1,000 alerts in 100 groups, storm limit 5, Slack answering every third call
    429: every group reaches the on-call exactly once (its page or a digest line),
    every alert is stored, and no message is edited twice within a second."""
    async with running_router(tmp_path) as h:
        h.slack.stamp = h.clock.now
        # Retry-After 3 s: longer than slack_sdk waits inline, so the outbox backs off
        h.slack.rate_limit_every(3, retry_after=3)
        await send_all(h, [group(i) for i in range(100)])
        await h.settle(within=60)

        named = named_to_the_on_call(h)
        assert named == Counter({f"Storm{i:03d}": 1 for i in range(100)})
        assert len(page_dms(h)) == 5 and len(digest_dms(h)) == 1
        assert await h.store.run(lambda tx: tx.count_alerts()) == 1000
        assert await h.jobs(JobStatus.DEAD) == []
        # (the start-up look at the token's scopes came before the rate limit)
        calls = [c for c in h.slack.calls if c.method != "auth.test"]
        assert sum(1 for c in calls if c.status == 429) >= len(calls) // 3
        assert_edits_coalesced(h)
        # each line counts its group's alerts and says it is open
        assert {(sev, firing, state) for _, _, sev, firing, state in digest_lines(h)} == {
            ("medium", 10, "open")
        }


async def test_five_hundred_folded_pages_are_all_listed_within_slack_limits(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as h:
        h.slack.stamp = h.clock.now
        await send_all(h, [group(i, alerts=1) for i in range(505)])
        await h.settle(within=60)

        parts = digest_dms(h)
        assert len(parts) == 5  # a hundred lines each
        for part in parts:
            assert block_errors(part["blocks"]) == []  # what Slack takes (it was posted)
            assert len(part["blocks"]) <= 50
        lines = digest_lines(h)
        assert [n for n, *_ in lines] == list(range(1, 501))  # in order, none twice
        assert named_to_the_on_call(h) == Counter({f"Storm{i:03d}": 1 for i in range(505)})
        assert "…and" not in str([part["blocks"] for part in parts])
        # every open folded page can be declared from its message's select
        options = [
            option
            for part in parts
            for block in part["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
            if element["action_id"] == messages.DIGEST_DECLARE
            for option in element["options"]
        ]
        assert len(options) == 500 and len({o["value"] for o in options}) == 500
        assert_edits_coalesced(h)

        # Declare the 250th through the real interaction path, from its message.
        third = parts[2]
        [select] = [b for b in third["blocks"] if b["type"] == "actions"]
        [chosen] = [o for o in select["elements"][0]["options"] if o["text"]["text"].startswith(
            "250. ")]  # fmt: skip
        action = {"type": "static_select", "action_id": messages.DIGEST_DECLARE,
                  "block_id": select["block_id"], "selected_option": chosen}  # fmt: skip
        response = await h.act(action, PRIMARY, message_ts=third["ts"])
        assert response.status == 200 and (await response.json())["ok"], await response.text()
        announced = await h.slack.wait_for(lambda: h.slack.messages_in(INCIDENTS))
        assert "INC-1" in announced[0]["text"]
        await h.settle(within=30)
        line = next(line for line in digest_lines(h) if line[0] == 250)
        assert line[4] == "declared INC-1"
        [select] = [b for b in digest_dms(h)[2]["blocks"] if b["type"] == "actions"]
        assert chosen["value"] not in {o["value"] for o in select["elements"][0]["options"]}


async def test_many_deliveries_to_one_page_in_an_interval_make_one_edit(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as h:
        h.slack.stamp = h.clock.now
        await h.alertmanager(am_payload(alerts=[am_alert("a0")]))
        await h.dm_blocks(PRIMARY)
        await h.alertmanager(am_payload(alerts=[am_alert("a0"), am_alert("a1")]))
        await h.settle()
        assert len(h.slack.calls_to("chat.update")) == 1  # the first edit went at once
        # Twenty more deliveries within the second after that edit: they wait, as one.
        for n in range(2, 22):
            alerts = [am_alert(f"a{i}", instance=f"api-{i}") for i in range(n + 1)]
            await h.alertmanager(am_payload(alerts=alerts))
        assert len(h.slack.calls_to("chat.update")) == 1
        [waiting] = [j for j in await h.jobs(JobStatus.PENDING) if j.kind.value == "slack.update"]
        await h.advance(1.0)
        await h.settle()
        updates = h.slack.calls_to("chat.update")
        assert len(updates) == 2  # twenty deliveries, one chat.update
        assert "22 firing" in str(updates[-1].args["blocks"])  # the final state
        assert "22 firing" in str(h.slack.dms_to(PRIMARY)[0]["blocks"])
        assert waiting.key == (await h.store.run(lambda tx: tx.job_by_key(waiting.key)))[0].key
        assert_edits_coalesced(h)


async def test_an_unanswered_digest_goes_to_eng_secondary_who_can_declare_from_it(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path, config={"paging": {"storm_limit": 1}}) as h:
        await send_all(h, [group(i, alerts=1) for i in range(4)])
        await h.settle()
        assert len(page_dms(h)) == 1 and len(digest_lines(h)) == 3
        # the first folded page is dismissed; the other two still wait
        [primary_digest] = digest_dms(h)
        [select] = [b for b in primary_digest["blocks"] if b["type"] == "actions"]
        first = select["elements"][0]["options"][0]
        await h.press("page.dismiss", first["value"], PRIMARY)
        await h.settle()
        await h.advance(301)  # the digest's ack timeout
        await h.settle()
        [escalated] = [m for m in h.slack.dms_to(SECONDARY) if "still need a decision" in m["text"]]
        listed = str(escalated["blocks"])
        assert "Storm001" not in listed and "Storm002" in listed and "Storm003" in listed
        [select] = [b for b in escalated["blocks"] if b["type"] == "actions"]
        chosen = select["elements"][0]["options"][0]
        action = {"type": "static_select", "action_id": messages.DIGEST_DECLARE,
                  "block_id": select["block_id"], "selected_option": chosen}  # fmt: skip
        response = await h.act(action, SECONDARY, message_ts=escalated["ts"])
        assert (await response.json())["ok"], await response.text()
        announced = await h.slack.wait_for(lambda: h.slack.messages_in(INCIDENTS))
        assert f"<@{SECONDARY}>" in announced[0]["text"]


async def test_announcement_edits_in_one_interval_are_one_chat_update(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        h.slack.stamp = h.clock.now
        await h.alertmanager(am_payload())
        await h.press("page.declare", await h.page_key(), PRIMARY)
        await h.settle()
        announcement = await h.announcement()
        edits = lambda: [c for c in h.slack.calls_to("chat.update")  # noqa: E731
                         if c.args.get("ts") == announcement["ts"]]  # fmt: skip
        before = len(edits())
        for level in ("high", "medium", "low", "high", "critical"):
            await h.command(f"severity {level} changing our mind", PRIMARY)
        await h.settle()
        assert len(edits()) - before <= 2  # five changes, at most one edit per second
        final = await h.announcement()
        assert "Severity *critical*" in str(final["blocks"])
        assert_edits_coalesced(h)
