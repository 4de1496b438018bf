"""The PagerDuty on-call provider against FakePagerDutyRest (and FakeSlack for e-mails)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from slack_sdk.web.async_client import AsyncWebClient

from router.adapters.pagerduty.config import PagerDutyOncallConfig
from router.adapters.pagerduty.oncall import (
    MAX_RATE_LIMIT_WAITS,
    RETRY_AFTER_FAILURE,
    OncallMetrics,
    PagerDutyOncall,
)
from router.adapters.slack.directory import SlackDirectory
from router.app.clock import FrozenClock
from router.core import lifecycle
from router.core.alerts import Alert, AlertChange, AlertStatus, Source
from router.core.jobs import JobKind
from router.core.lifecycle import Storm
from router.core.oncall import OncallConfig, Schedule
from router.core.oncall_snapshot import Source as AnswerSource
from router.core.oncall_snapshot import format_view
from router.core.policy import Policy
from router.core.policy_config import PagingConfig
from router.core.severity import DEFAULT_RULES
from tests.fakes.pagerduty_rest import ACCEPT, FakePagerDutyRest
from tests.fakes.slack_api import FakeSlack

TOKEN = "pd-rest-token-0123456789"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
JANE_SLACK, JOHN_SLACK, LEAD_SLACK = "U0JANE0001", "U0JOHN0002", "U0LEAD0003"


class Sleeps:
    """An injected sleep that records and returns at once (a test never waits)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
async def pd(clock: FrozenClock) -> AsyncIterator[FakePagerDutyRest]:
    async with FakePagerDutyRest(token=TOKEN, now=clock.now) as fake:
        fake.add_user("PJANE01", "Jane Doe", "jane@example.com")
        fake.add_user("PJOHN02", "John Roe", "JOHN@example.com")
        fake.add_user("PLEAD03", "Lee Lead", "lee@example.com")
        fake.add_user("PGHOST4", "Gus Ghost", "ghost@example.com")
        # eng-primary: Jane until 16:00, John until 24:00, Jane again, in 8-hour shifts.
        fake.rotate("PPRIMRY", ["PJANE01", "PJOHN02"], T0 - 2 * H, 8 * H, 6)
        fake.add_shift("PLEADER", "PLEAD03", T0 - 24 * H, T0 + 72 * H)
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-test") as fake:
        yield fake


@pytest.fixture
async def directory(slack: FakeSlack) -> AsyncIterator[SlackDirectory]:
    async with aiohttp.ClientSession() as session:
        yield SlackDirectory(
            AsyncWebClient(token="xoxb-test", base_url=slack.base_url, session=session)
        )


def config(pd: FakePagerDutyRest, **changes: object) -> PagerDutyOncallConfig:
    values: dict[str, object] = {
        "api_url": pd.api_url,
        "schedules": {"eng-primary": "PPRIMRY", "leadership": "PLEADER"},
        "refresh_seconds": 300,
        "cache_seconds": 86_400,
        # Lee by PagerDuty id; Jane and John are found in Slack by e-mail.
        "user_map": {"PLEAD03": LEAD_SLACK},
    }
    return PagerDutyOncallConfig.model_validate(values | changes)


@pytest.fixture
async def provider(
    pd: FakePagerDutyRest, directory: SlackDirectory, clock: FrozenClock
) -> AsyncIterator[PagerDutyOncall]:
    p = PagerDutyOncall(
        config(pd),
        TOKEN,
        directory.slack_id_for_email,
        clock=clock,
        metrics=OncallMetrics(CollectorRegistry()),
        sleep=Sleeps(),
    )
    yield p
    await p.close()


def metric(p: PagerDutyOncall, name: str, **labels: str) -> float | None:
    assert p._metrics is not None
    value = p._metrics.registry.get_sample_value(name, {"provider": "pagerduty", **labels})
    return None if value is None else float(value)


# --------------------------------------------------------------------------- answers


async def test_refresh_answers_every_time_in_the_window_with_real_handoffs(
    provider: PagerDutyOncall,
) -> None:
    assert await provider.refresh()
    view = provider.current()
    assert view.roles() == ["eng-primary", "leadership"]
    assert view.who_is_on("eng-primary", T0) == JANE_SLACK
    assert view.who_is_on("eng-primary", T0 + 6 * H - timedelta(seconds=1)) == JANE_SLACK
    assert view.who_is_on("eng-primary", T0 + 6 * H) == JOHN_SLACK
    # Jane's second shift: earliest=true would have lost it.
    assert view.who_is_on("eng-primary", T0 + 15 * H) == JANE_SLACK
    assert view.who_is_on("leadership", T0 + 20 * H) == LEAD_SLACK
    answer = view.answer("eng-primary", T0)
    assert (answer.source, answer.as_of) == (AnswerSource.PROVIDER, T0)
    assert answer.shift is not None and answer.shift.named == "PJANE01"
    assert answer.shift.end == T0 + 6 * H
    handoffs = view.snapshot.next_handoffs("eng-primary", T0) if view.snapshot else []
    assert [(h.at, h.from_user, h.to_user) for h in handoffs] == [
        (T0 + 6 * H, JANE_SLACK, JOHN_SLACK),
        (T0 + 14 * H, JOHN_SLACK, JANE_SLACK),
        (T0 + 22 * H, JANE_SLACK, JOHN_SLACK),
    ]


async def test_request_has_pagerdutys_auth_versioning_and_query(
    provider: PagerDutyOncall, pd: FakePagerDutyRest
) -> None:
    await provider.refresh()
    [call] = pd.requests_to("/oncalls")
    assert call.headers["Authorization"] == f"Token token={TOKEN}"
    assert call.headers["Accept"] == ACCEPT
    query = dict(call.query)
    assert [v for k, v in call.query if k == "schedule_ids[]"] == ["PPRIMRY", "PLEADER"]
    assert query["include[]"] == "users"
    assert query["since"] == "2026-03-02T10:00:00Z"
    assert query["until"] == "2026-03-03T10:00:00Z"
    assert "earliest" not in query


async def test_every_page_is_read(
    pd: FakePagerDutyRest, directory: SlackDirectory, clock: FrozenClock
) -> None:
    # 150 ten-minute shifts, 144 of them in the 24-hour window, each listed twice (two
    # escalation policies use the schedule): 288 entries, three pages of 100.
    pd.rotate("PBUSY01", ["PJANE01", "PJOHN02"], T0, timedelta(minutes=10), 150)
    pd.use_schedule("PEPTWO", "PBUSY01", 2)
    p = PagerDutyOncall(
        config(pd, schedules={"eng-primary": "PBUSY01"}),
        TOKEN,
        directory.slack_id_for_email,
        clock=clock,
    )
    assert await p.refresh()
    offsets = [dict(c.query)["offset"] for c in pd.requests_to("/oncalls")]
    assert offsets == ["0", "100", "200"]
    snapshot = p.current().snapshot
    assert snapshot is not None and len(snapshot.shifts["eng-primary"]) == 144  # deduplicated
    assert p.current().who_is_on("eng-primary", T0 + timedelta(minutes=1435)) == JOHN_SLACK
    await p.close()


async def test_slack_ids_come_from_config_first_then_slack_cached(
    provider: PagerDutyOncall, slack: FakeSlack, clock: FrozenClock
) -> None:
    await provider.refresh()
    clock.advance(timedelta(minutes=5))
    await provider.refresh()
    asked = [c.args["email"] for c in slack.calls if c.method == "users.lookupByEmail"]
    # Lee is mapped in config; Jane and John asked once each (John's e-mail case kept).
    assert sorted(asked) == ["JOHN@example.com", "jane@example.com"]


async def test_someone_slack_does_not_know_answers_nobody_and_is_counted(
    pd: FakePagerDutyRest, provider: PagerDutyOncall
) -> None:
    pd.add_shift("PLEADER", "PGHOST4", T0 + 72 * H, T0 + 96 * H)
    pd.add_shift("PPRIMRY", "PGHOST4", T0 - 1 * H, T0 + 1 * H)  # an override over Jane
    await provider.refresh()
    assert provider.current().who_is_on("eng-primary", T0) is None
    assert provider.current().who_is_on("eng-primary", T0 + 2 * H) == JANE_SLACK
    assert metric(provider, "router_oncall_unmapped_users") == 1


# --------------------------------------------------------------------------- failures


async def test_503_keeps_the_last_answer_and_reports_it(
    provider: PagerDutyOncall,
    pd: FakePagerDutyRest,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await provider.refresh()
    clock.advance(timedelta(minutes=5))
    pd.fail_next(503, times=3)
    with caplog.at_level(logging.INFO, logger="router.adapters.pagerduty.oncall"):
        assert not await provider.refresh()
        clock.advance(timedelta(minutes=1))
        assert not await provider.refresh()
    view = provider.current()
    assert view.who_is_on("eng-primary", clock.now()) == JANE_SLACK
    answer = view.answer("eng-primary", clock.now())
    assert (answer.source, answer.as_of) == (AnswerSource.CACHED, T0)
    assert view.failing_since == T0 + timedelta(minutes=5)
    assert view.failure == "pagerduty /oncalls: HTTP 503"
    assert metric(provider, "router_oncall_provider_up") == 0
    assert metric(provider, "router_oncall_refreshes_total", outcome="failed") == 2
    assert metric(provider, "router_oncall_snapshot_age_seconds") == 360
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # the second failure inside LOG_EVERY is not logged again
    assert "HTTP 503" in warnings[0].getMessage() and TOKEN not in caplog.text
    text = format_view(view, clock.now())
    assert "cached answer of 2026-03-02 10:00 UTC" in text
    assert "PagerDuty failing since 2026-03-02 10:05 UTC: pagerduty /oncalls: HTTP 503" in text

    clock.advance(timedelta(minutes=1))
    assert not await provider.refresh()  # the third 503
    assert await provider.refresh()
    assert provider.current().failing_since is None
    assert provider.current().answer("eng-primary", clock.now()).source is AnswerSource.PROVIDER
    assert metric(provider, "router_oncall_provider_up") == 1


async def test_past_the_window_the_last_known_person_answers(
    provider: PagerDutyOncall, pd: FakePagerDutyRest, clock: FrozenClock
) -> None:
    await provider.refresh()
    pd.fail_next(503, times=100)
    clock.advance(timedelta(days=2))
    assert not await provider.refresh()
    answer = provider.current().answer("eng-primary", clock.now())
    # The window ended at T0+24h, inside John's shift from T0+22h.
    assert (answer.user, answer.beyond_window) == (JOHN_SLACK, True)
    assert "past the cached window" in format_view(provider.current(), clock.now())


async def test_before_any_answer_the_config_rotations_answer(
    pd: FakePagerDutyRest, directory: SlackDirectory, clock: FrozenClock
) -> None:
    rotation = {"start": "2026-01-05T09:00:00", "handoff_time": "09:00", "timezone": "UTC"}
    fallback = Schedule(
        OncallConfig.model_validate(
            {"rotations": {"eng-primary": {"members": ["U0FALLBACK"], **rotation}}}
        )
    )
    p = PagerDutyOncall(
        config(pd), TOKEN, directory.slack_id_for_email, fallback=fallback, clock=clock
    )
    pd.fail_next(503)
    assert not await p.refresh()
    answer = p.current().answer("eng-primary", T0)
    assert (answer.user, answer.source) == ("U0FALLBACK", AnswerSource.CONFIG)
    assert "config rotation" in format_view(p.current(), T0)
    assert await p.refresh()
    assert p.current().who_is_on("eng-primary", T0) == JANE_SLACK
    await p.close()


async def test_without_answer_or_fallback_nobody_is_on(
    pd: FakePagerDutyRest, provider: PagerDutyOncall
) -> None:
    pd.fail_next(503)
    await provider.refresh()
    view = provider.current()
    assert view.roles() == ["eng-primary", "leadership"]
    assert view.answer("eng-primary", T0).source is AnswerSource.NOBODY
    assert view.who_is_on("eng-primary", T0) is None
    with pytest.raises(KeyError):
        view.who_is_on("eng-tertiary", T0)


async def test_429_is_waited_out_as_pagerduty_says(
    provider: PagerDutyOncall, pd: FakePagerDutyRest
) -> None:
    pd.fail_next(429, times=2, reset=7)
    assert await provider.refresh()
    sleeps = provider._sleep
    assert isinstance(sleeps, Sleeps) and sleeps.calls == [7.0, 7.0]
    assert len(pd.requests_to("/oncalls")) == 3


async def test_429_that_does_not_end_fails_the_refresh(
    provider: PagerDutyOncall, pd: FakePagerDutyRest
) -> None:
    pd.fail_next(429, times=10, reset=120)
    assert not await provider.refresh()
    sleeps = provider._sleep
    assert isinstance(sleeps, Sleeps) and sleeps.calls == [30.0] * MAX_RATE_LIMIT_WAITS
    assert provider.current().failure == "pagerduty /oncalls: HTTP 429 (rate limited)"


async def test_a_refused_token_fails_without_showing_it(
    pd: FakePagerDutyRest,
    directory: SlackDirectory,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = PagerDutyOncall(config(pd), "wrong-token", directory.slack_id_for_email, clock=clock)
    with caplog.at_level(logging.WARNING):
        assert not await p.refresh()
    assert p.current().failure == "pagerduty /oncalls: HTTP 401 (the API token was refused)"
    assert "wrong-token" not in caplog.text and "wrong-token" not in repr(p)
    await p.close()


async def test_unreachable_pagerduty_fails_the_refresh(
    directory: SlackDirectory, clock: FrozenClock
) -> None:
    cfg = PagerDutyOncallConfig(api_url="http://127.0.0.1:9", schedules={"eng-primary": "PX1"})
    p = PagerDutyOncall(cfg, TOKEN, directory.slack_id_for_email, clock=clock)
    assert not await p.refresh()
    assert p.current().failure == "pagerduty /oncalls: ClientConnectorError"
    await p.close()


async def test_slack_failing_fails_the_refresh_and_keeps_the_snapshot(
    provider: PagerDutyOncall, pd: FakePagerDutyRest, slack: FakeSlack
) -> None:
    assert await provider.refresh()
    pd.add_user("PNEW005", "Nia New", "nia@example.com")
    pd.add_shift("PPRIMRY", "PNEW005", T0 + 30 * H, T0 + 31 * H)
    provider.config = provider.config.model_copy(update={"cache_seconds": 40 * 3600})
    slack.fail_next("users.lookupByEmail", status=503, times=5)
    assert not await provider.refresh()
    assert provider.current().failure == "slack users.lookupByEmail: RetryLater"
    assert provider.current().who_is_on("eng-primary", T0) == JANE_SLACK


async def test_run_refreshes_on_its_interval_and_sooner_after_a_failure(
    provider: PagerDutyOncall, pd: FakePagerDutyRest
) -> None:
    class Stop(Exception):
        pass

    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 3:
            raise Stop

    provider._sleep = sleep
    pd.fail_next(503)  # the first refresh fails
    with pytest.raises(Stop):
        await provider.run()
    assert len(pd.requests_to("/oncalls")) == 3
    assert delays == [RETRY_AFTER_FAILURE, 300, 300]


# --------------------------------------------------------------------------- the lifecycle


def _policy(schedule: object) -> Policy:
    return Policy(
        schedule=schedule,
        paging=PagingConfig(),
        severity=DEFAULT_RULES,
        responders=frozenset(),
        incident_channel="C0INCIDENT",
    )


async def test_a_page_goes_to_whoever_pagerduty_says_and_still_does_during_a_503(
    provider: PagerDutyOncall, pd: FakePagerDutyRest, clock: FrozenClock
) -> None:
    firing = Alert(
        source=Source.ALERTMANAGER,
        group_key="g1",
        fingerprint="f1",
        status=AlertStatus.FIRING,
        starts_at=T0,
        labels={"alertname": "HighLatency"},
        annotations={"summary": "p99 > 1s"},
    )

    def paged(at: datetime) -> list[str]:
        policy = _policy(provider.current())
        outcome = lifecycle.alerts_arrived(
            None, [AlertChange.NEW], [firing], [firing], at, policy, Storm()
        )
        return [j.payload["user"] for j in outcome.jobs if j.kind is JobKind.SLACK_DM]

    await provider.refresh()
    assert paged(T0) == [JANE_SLACK]
    clock.advance(7 * H)
    pd.fail_next(503, times=10)
    assert not await provider.refresh()
    assert paged(clock.now()) == [JOHN_SLACK]  # the cached handoff at T0+6h


def test_views_are_immutable_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        from router.core.oncall_snapshot import OncallView

        view = OncallView(snapshot=None)
        view.failure = "x"  # type: ignore[misc]
