"""ConsoleAdapter: Slack jobs printed, with ready-to-paste press commands."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from router.adapters.slack.console import ConsoleAdapter
from router.app.effects import RetryLater
from router.core.jobs import JobKind, JobStatus, StoredJob

PAGE_BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "HighLatency on api-1"}},
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "p99 > 1s"},
        "fields": [{"type": "mrkdwn", "text": "*Suggested severity:* high"}],
    },
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "matched: partial outage"}]},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "page.declare",
                "value": "page-42",
                "text": {"type": "plain_text", "text": "Declare incident"},
            },
            {
                "type": "button",
                "action_id": "page.dismiss",
                "value": "page-42",
                "text": {"type": "plain_text", "text": "Not an incident"},
            },
        ],
    },
]


def job(kind: JobKind, payload: dict[str, Any]) -> StoredJob:
    return StoredJob(
        id=1,
        kind=kind,
        key="k",
        payload=payload,
        due_at=datetime.now(UTC),
        attempts=1,
        status=JobStatus.RUNNING,
    )


def lookup(table: dict[str, dict[str, Any]]) -> Any:
    async def results(key: str) -> dict[str, Any] | None:
        return table.get(key)

    return results


def _ts(ts: str) -> tuple[int, int]:
    seconds, micros = ts.split(".")
    return int(seconds), int(micros)


async def test_dm_prints_the_page_with_press_commands():
    out = io.StringIO()
    adapter = ConsoleAdapter(out)

    result = await adapter.run(
        job(JobKind.SLACK_DM, {"user": "U01", "text": "You are paged", "blocks": PAGE_BLOCKS}),
        lookup({}),
    )

    printed = out.getvalue()
    assert "── Slack DM to U01 ──" in printed
    assert "You are paged" in printed
    assert "HIGHLATENCY ON API-1" in printed
    assert "*Suggested severity:* high" in printed
    assert "matched: partial outage" in printed
    assert "[Declare incident]  router press page.declare page-42 --user U01" in printed
    assert "router press page.dismiss page-42 --user U01" in printed
    assert result["channel"] == "D-console-U01"
    assert isinstance(result["ts"], str)


async def test_thread_and_update_find_their_message():
    out = io.StringIO()
    adapter = ConsoleAdapter(out)
    announced = await adapter.run(
        job(JobKind.SLACK_POST, {"channel": "C0123", "thread_of": None, "text": "INC-1"}),
        lookup({}),
    )
    reply = await adapter.run(
        job(JobKind.SLACK_POST, {"channel": None, "thread_of": "announce", "text": "sev high"}),
        lookup({"announce": announced}),
    )
    updated = await adapter.run(
        job(JobKind.SLACK_UPDATE, {"target": "announce", "text": "INC-1 (resolved)"}),
        lookup({"announce": announced}),
    )

    printed = out.getvalue()
    assert "── #C0123 ──" in printed
    assert "── #C0123 (thread of announce) ──" in printed
    assert "── update of announce in #C0123 ──" in printed
    assert _ts(reply["ts"]) > _ts(announced["ts"])
    assert updated == announced


async def test_select_options_and_unknown_presser():
    out = io.StringIO()
    select = {
        "type": "actions",
        "elements": [
            {
                "type": "static_select",
                "action_id": "incident.severity",
                "placeholder": {"type": "plain_text", "text": "Change severity"},
                "options": [
                    {"text": {"type": "plain_text", "text": "Critical"}, "value": "INC-1 critical"}
                ],
            }
        ],
    }
    await ConsoleAdapter(out).run(
        job(JobKind.SLACK_POST, {"channel": "C0123", "text": "INC-1", "blocks": [select]}),
        lookup({}),
    )
    assert "router press incident.severity 'INC-1 critical' --user <U…>" in out.getvalue()


async def test_missing_target_retries_later():
    with pytest.raises(RetryLater):
        await ConsoleAdapter(io.StringIO()).run(
            job(JobKind.SLACK_UPDATE, {"target": "page", "text": "x"}), lookup({})
        )


async def test_respond_prints_the_body(capsys: pytest.CaptureFixture[str]):
    result = await ConsoleAdapter().run(
        job(
            JobKind.SLACK_RESPOND,
            {"response_url": "https://hooks/x", "body": {"text": "Only the paged person can"}},
        ),
        lookup({}),
    )
    assert result == {}
    assert "Only the paged person can" in capsys.readouterr().out
