"""On-call from PagerDuty end to end: ``oncall.provider: pagerduty`` makes the app's
refresh task ask FakePagerDutyRest (PagerDuty's real shapes, pagination, token header),
map people to Slack ids by e-mail (users.lookupByEmail against FakeSlack), and the
page goes to whoever PagerDuty says, still while PagerDuty answers 503."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from router.adapters.pagerduty.oncall import PagerDutyOncall
from router.bootstrap import ONCALL
from router.cli import _provider_oncall
from router.config import Secrets
from tests.conftest import T0, am_payload
from tests.fakes.pagerduty_rest import FakePagerDutyRest
from tests.harness import (
    LEAD,
    PRIMARY,
    SECONDARY,
    USERS,
    Harness,
    router_config,
    running_router,
)

TOKEN = "pd-rest-token-0123456789"
H = timedelta(hours=1)


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDutyRest]:
    async with FakePagerDutyRest(token=TOKEN, now=lambda: T0) as fake:
        # PagerDuty's people carry the e-mails Slack knows them by.
        fake.add_user("PSECOND", "Sam Second", USERS[SECONDARY]["email"])
        fake.add_user("PPRIMAR", "Pat Primary", USERS[PRIMARY]["email"])
        fake.add_user("PLEADER", "Lee Lead", "lee.lead@example.com")  # mapped in config
        # eng-primary is SECONDARY's person now (the YAML rotation says PRIMARY), then
        # PRIMARY's from 14:00.
        fake.add_shift("PSCHPRI", "PSECOND", T0 - 2 * H, T0 + 4 * H)
        fake.add_shift("PSCHPRI", "PPRIMAR", T0 + 4 * H, T0 + 30 * H)
        fake.add_shift("PSCHSEC", "PPRIMAR", T0 - 24 * H, T0 + 48 * H)
        fake.add_shift("PSCHLEA", "PLEADER", T0 - 24 * H, T0 + 48 * H)
        yield fake


def setup(pd: FakePagerDutyRest) -> dict[str, Any]:
    config = {
        "oncall": {
            "provider": "pagerduty",
            "pagerduty": {
                "api_url": pd.api_url,
                "schedules": {"eng-primary": "PSCHPRI", "eng-secondary": "PSCHSEC",
                              "leadership": "PSCHLEA"},
                "user_map": {"PLEADER": LEAD},
            },
        }
    }  # fmt: skip
    return {"config": config, "secrets": {"PAGERDUTY_API_TOKEN": TOKEN}}


def answered(h: Harness) -> PagerDutyOncall:
    """The app's provider: the start waited for PagerDuty's first answer, so the very
    first page already goes to the person it names."""
    provider = h.client.server.app[ONCALL]
    assert isinstance(provider, PagerDutyOncall)
    assert provider.current().snapshot is not None, "the app started before PagerDuty answered"
    return provider


def group(name: str) -> dict[str, Any]:
    payload = am_payload(groupKey=f'{{}}:{{alertname="{name}"}}', groupLabels={"alertname": name})
    payload["alerts"][0]["labels"]["alertname"] = name
    payload["alerts"][0]["fingerprint"] = f"{abs(hash(name)):016x}"[:16]
    return payload


async def test_a_page_goes_to_whoever_pagerduty_says_and_still_goes_out_while_it_answers_503(
    tmp_path: Path, pd: FakePagerDutyRest, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_router(tmp_path, **setup(pd)) as h:
        provider = answered(h)
        [call] = pd.requests_to("/oncalls")
        assert call.headers["Authorization"] == f"Token token={TOKEN}"

        await h.alertmanager(group("HighLatency"))
        await h.settle()
        # PagerDuty's eng-primary, found in Slack by e-mail; not the YAML rotation's
        assert len(h.slack.dms_to(SECONDARY)) == 1
        assert h.slack.dms_to(PRIMARY) == []
        assert h.sample("router_oncall_provider_up", {"provider": "pagerduty"}) == 1

        # PagerDuty goes away: the refresh fails, the last answer stays
        pd.fail_next(503, times=1000)
        with caplog.at_level(logging.WARNING, logger="router.adapters.pagerduty.oncall"):
            assert await provider.refresh() is False
        assert h.sample("router_oncall_provider_up", {"provider": "pagerduty"}) == 0
        failed = {"provider": "pagerduty", "outcome": "failed"}
        assert h.sample("router_oncall_refreshes_total", failed) == 1
        [warning] = [r for r in caplog.records if "refresh failed" in r.getMessage()]
        assert "HTTP 503" in warning.getMessage()
        assert TOKEN not in caplog.text

        # a new page still goes out, to the last known eng-primary
        await h.alertmanager(group("DiskFull"))
        await h.settle()
        assert len(h.slack.dms_to(SECONDARY)) == 2
        assert h.slack.dms_to(PRIMARY) == []

        # past the handoff PagerDuty reported before it failed, the next person is paged
        await h.advance(5 * 3600)
        await h.alertmanager(group("QueueBacklog"))
        await h.settle()

        def paged(user: str) -> list[str]:
            return [m["text"] for m in h.slack.dms_to(user) if "QueueBacklog" in m["text"]]

        assert len(paged(PRIMARY)) == 1
        assert paged(SECONDARY) == []

        # the configured leadership person (user_map) is a responder: may act
        answer = await h.command("declare checkout is down", LEAD)
        assert "Who investigates?" in answer["text"]


async def test_router_oncall_says_where_each_answer_came_from(
    tmp_path: Path, pd: FakePagerDutyRest
) -> None:
    config = router_config(tmp_path, "http://127.0.0.1:9/api/", extra=setup(pd)["config"])
    secrets = Secrets(PAGERDUTY_API_TOKEN=TOKEN)
    text = await _provider_oncall(config, secrets, T0)
    lines = text.splitlines()
    assert lines[0] == "On call at 2026-03-02 10:00 UTC, from PagerDuty"
    assert f"  now:  {LEAD} (PagerDuty PLEADER) until 2026-03-04 10:00 UTC" in lines
    assert "  from: PagerDuty, answer of 2026-03-02 10:00 UTC" in lines

    # PagerDuty down before it ever answered: the config's rotations answer, and say so
    pd.fail_next(503, times=1000)
    text = await _provider_oncall(config, secrets, T0)
    assert f"  now:  {PRIMARY}" in text.splitlines()
    assert "  from: config rotation (PagerDuty has not answered yet: " in text
