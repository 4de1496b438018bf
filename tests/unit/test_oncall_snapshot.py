"""The pure on-call snapshot and view: answers, handoffs, sources, the shared protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.slack.directory import SlackDirectory
from router.app.effects import RetryLater
from router.core.oncall import OncallConfig, Schedule
from router.core.oncall_snapshot import (
    OnCallSchedule,
    OncallSnapshot,
    OncallView,
    Shift,
    Source,
    format_view,
)
from tests.fakes.slack_api import FakeSlack

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
A, B, C = "U0AAAAAAA", "U0BBBBBBB", "U0CCCCCCC"


def snapshot() -> OncallSnapshot:
    return OncallSnapshot.build(
        T0,
        T0 + 24 * H,
        ["eng-primary", "leadership", "eng-secondary"],
        [
            ("eng-primary", Shift(A, T0 - 2 * H, T0 + 6 * H, "PA")),
            ("eng-primary", Shift(B, T0 + 6 * H, T0 + 20 * H, "PB")),
            ("eng-primary", Shift(B, T0 + 6 * H, T0 + 20 * H, "PB")),  # listed twice
            ("eng-primary", Shift(C, T0 + 8 * H, T0 + 9 * H, "PC")),  # an override over B
            ("leadership", Shift(C, T0 - 48 * H, None, "PC")),
        ],
    )


def test_answers_inside_the_window_follow_the_shifts() -> None:
    s = snapshot()
    assert s.roles() == ["eng-primary", "eng-secondary", "leadership"]
    assert [s.who_is_on("eng-primary", T0 + h * H) for h in (0, 6, 8, 9, 19)] == [A, B, C, B, B]
    assert s.who_is_on("leadership", T0 + 23 * H) == C
    assert s.who_is_on("eng-secondary", T0) is None  # known role, nobody on
    assert len(s.shifts["eng-primary"]) == 3 and isinstance(s.shifts, MappingProxyType)


def test_a_gap_is_nobody_and_past_the_window_the_last_known_person() -> None:
    s = snapshot()
    assert s.who_is_on("eng-primary", T0 + 21 * H) is None  # a gap inside the window
    assert s.who_is_on("leadership", T0 + 100 * H) == C
    beyond = OncallSnapshot.build(
        T0, T0 + 10 * H, ["eng-primary"], [("eng-primary", Shift(B, T0, T0 + 12 * H))]
    )
    assert not beyond.knows(T0 + 10 * H)
    assert beyond.who_is_on("eng-primary", T0 + 30 * H) == B


def test_handoffs_inside_the_window() -> None:
    handoffs = snapshot().next_handoffs("eng-primary", T0)
    assert [(h.at - T0, h.from_user, h.to_user) for h in handoffs] == [
        (6 * H, A, B),
        (8 * H, B, C),
        (9 * H, C, B),
    ]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        snapshot().who_is_on("eng-primary", datetime(2026, 3, 2, 10))
    with pytest.raises(KeyError, match="eng-tertiary"):
        snapshot().who_is_on("eng-tertiary", T0)
    with pytest.raises(ValueError, match="must end after it starts"):
        Shift(A, T0, T0)
    with pytest.raises(ValueError, match="window"):
        OncallSnapshot(T0, T0, {})


def test_schedule_snapshot_and_view_share_the_protocol() -> None:
    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    schedule = Schedule(
        OncallConfig.model_validate({"rotations": {"eng-primary": {"members": [A], **rotation}}})
    )
    sources: list[OnCallSchedule] = [schedule, snapshot(), OncallView(snapshot())]
    assert [s.who_is_on("eng-primary", T0) for s in sources] == [A, A, A]
    assert [s.roles()[0] for s in sources] == ["eng-primary"] * 3


def test_the_view_says_where_each_answer_came_from() -> None:
    live = OncallView(snapshot(), configured_roles=("eng-primary",))
    assert live.answer("eng-primary", T0).source is Source.PROVIDER
    cached = OncallView(snapshot(), failing_since=T0 + H, failure="pagerduty /oncalls: HTTP 503")
    answer = cached.answer("eng-primary", T0 + 2 * H)
    assert (answer.user, answer.source, answer.as_of) == (A, Source.CACHED, T0)
    text = format_view(cached, T0 + 2 * H)
    assert text.splitlines()[:5] == [
        "On call at 2026-03-02 12:00 UTC, from PagerDuty",
        "",
        "eng-primary",
        f"  now:  {A} (PagerDuty PA) until 2026-03-02 16:00 UTC",
        "  from: cached answer of 2026-03-02 10:00 UTC (PagerDuty failing since"
        " 2026-03-02 11:00 UTC: pagerduty /oncalls: HTTP 503)",
    ]
    assert f"  next: 2026-03-02 16:00 UTC  {A} -> {B}" in text
    nobody = OncallView(None, configured_roles=("eng-primary",))
    assert nobody.answer("eng-primary", T0).source is Source.NOBODY
    assert "no rotation is configured" in format_view(nobody, T0)


# --------------------------------------------------------------------------- Slack's directory


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-test") as fake:
        yield fake


async def test_the_directory_finds_ids_and_emails_once(slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        directory = SlackDirectory(
            AsyncWebClient(token="xoxb-test", base_url=slack.base_url, session=session)
        )
        assert await directory.slack_id_for_email("Jane@Example.com") == "U0JANE0001"
        assert await directory.slack_id_for_email("jane@example.com") == "U0JANE0001"
        assert await directory.slack_id_for_email("nobody@example.com") is None
        assert await directory.email_for_user("U0JOHN0002") == "john@example.com"
        assert await directory.email_for_user("U0GONE0009") is None
        asked = [c.method for c in slack.calls]
        assert asked == ["users.lookupByEmail", "users.lookupByEmail", "users.info", "users.info"]
        slack.fail_next("users.info", status=503)
        with pytest.raises(RetryLater):
            await directory.email_for_user("U0JANE0001")


async def test_without_the_email_scope_slack_gives_no_email(slack: FakeSlack) -> None:
    slack.scopes.discard("users:read.email")
    async with aiohttp.ClientSession() as session:
        directory = SlackDirectory(
            AsyncWebClient(token="xoxb-test", base_url=slack.base_url, session=session)
        )
        assert await directory.email_for_user("U0JANE0001") is None
