"""FakePagerDutyRest holds to PagerDuty's REST shapes (``GET /oncalls``), with aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.fakes.pagerduty_rest import ACCEPT, FakePagerDutyRest

TOKEN = "pd-rest-token"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HEADERS = {"Authorization": f"Token token={TOKEN}", "Accept": ACCEPT}
WINDOW = {"since": "2026-03-02T10:00:00Z", "until": "2026-03-03T10:00:00Z"}


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDutyRest]:
    async with FakePagerDutyRest(token=TOKEN, now=lambda: T0) as fake:
        fake.add_user("PJANE01", "Jane Doe", "jane@example.com")
        fake.add_user("PJOHN02", "John Roe", "john@example.com")
        fake.rotate(
            "PSCHED1", ["PJANE01", "PJOHN02"], T0 - timedelta(hours=2), timedelta(hours=8), 4
        )
        yield fake


async def get(
    pd: FakePagerDutyRest,
    params: list[tuple[str, str]] | dict[str, str],
    headers: dict[str, str] | None = None,
    method: str = "GET",
    path: str = "/oncalls",
) -> tuple[int, Any, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            pd.api_url + path,
            params=params,
            headers=HEADERS if headers is None else headers,
        ) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def test_oncalls_have_pagerdutys_shape_with_real_shift_times(pd: FakePagerDutyRest) -> None:
    status, body, headers = await get(pd, [("schedule_ids[]", "PSCHED1"), *WINDOW.items()])
    assert status == 200
    assert set(body) == {"oncalls", "limit", "offset", "more", "total"}
    assert (body["limit"], body["offset"], body["more"], body["total"]) == (25, 0, False, None)
    first = body["oncalls"][0]
    assert set(first) == {
        "escalation_policy",
        "escalation_level",
        "schedule",
        "user",
        "start",
        "end",
    }
    assert first["user"] == {
        "id": "PJANE01",
        "type": "user_reference",
        "summary": "Jane Doe",
        "self": f"{pd.origin}/users/PJANE01",
        "html_url": "https://acme.pagerduty.com/users/PJANE01",
    }
    assert first["schedule"]["type"] == "schedule_reference"
    assert first["escalation_level"] == 1
    # Not clipped to the window, and rendered in the account's zone (UTC-5 in March).
    assert first["start"] == "2026-03-02T03:00:00-05:00"
    assert datetime.fromisoformat(first["end"]) == T0 + timedelta(hours=6)
    assert len(body["oncalls"]) == 4  # every shift overlapping the 24 hours
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= {
        h.lower() for h in headers
    }


async def test_include_users_gives_the_email(pd: FakePagerDutyRest) -> None:
    params = [
        ("schedule_ids[]", "PSCHED1"),
        ("include[]", "users"),
        ("time_zone", "UTC"),
        *WINDOW.items(),
    ]
    _, body, _ = await get(pd, params)
    user = body["oncalls"][0]["user"]
    assert (user["type"], user["email"], user["name"]) == ("user", "jane@example.com", "Jane Doe")
    assert body["oncalls"][0]["start"] == "2026-03-02T08:00:00+00:00"


async def test_pages_with_limit_offset_and_more(pd: FakePagerDutyRest) -> None:
    seen = []
    offset = 0
    while True:
        params = [
            ("schedule_ids[]", "PSCHED1"),
            ("limit", "3"),
            ("offset", str(offset)),
            *WINDOW.items(),
        ]
        _, body, _ = await get(pd, params)
        seen += [(e["user"]["id"], e["start"]) for e in body["oncalls"]]
        if not body["more"]:
            break
        offset += body["limit"]
    assert len(seen) == 4 and len(set(seen)) == 4
    _, body, _ = await get(pd, {"limit": "500", **WINDOW})
    assert body["limit"] == 100


async def test_a_schedule_appears_once_per_escalation_policy_using_it(
    pd: FakePagerDutyRest,
) -> None:
    pd.use_schedule("PEPOTHER", "PSCHED1", 2)
    _, body, _ = await get(pd, [("schedule_ids[]", "PSCHED1"), *WINDOW.items()])
    assert len(body["oncalls"]) == 8
    assert {e["escalation_level"] for e in body["oncalls"]} == {1, 2}


async def test_earliest_keeps_one_oncall_per_user_and_loses_later_shifts(
    pd: FakePagerDutyRest,
) -> None:
    params = [("schedule_ids[]", "PSCHED1"), ("earliest", "true"), *WINDOW.items()]
    _, body, _ = await get(pd, params)
    # Jane's and John's second shifts in the window are gone: why the provider does
    # not send earliest=true.
    assert [e["user"]["id"] for e in body["oncalls"]] == ["PJANE01", "PJOHN02"]


async def test_schedule_filter(pd: FakePagerDutyRest) -> None:
    pd.add_shift("PSCHED2", "PJOHN02", T0, T0 + timedelta(days=1))
    _, body, _ = await get(pd, [("schedule_ids[]", "PSCHED2"), *WINDOW.items()])
    assert [e["schedule"]["id"] for e in body["oncalls"]] == ["PSCHED2"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Accept": ACCEPT},
        {"Authorization": "Token token=wrong", "Accept": ACCEPT},
        {"Authorization": f"Bearer {TOKEN}", "Accept": ACCEPT},
    ],
)
async def test_wrong_or_missing_token_is_401(
    pd: FakePagerDutyRest, headers: dict[str, str]
) -> None:
    status, body, _ = await get(pd, WINDOW, headers=headers)
    assert (status, body) == (401, {"error": {"message": "Authentication failed", "code": 2006}})


async def test_accept_header_is_required(pd: FakePagerDutyRest) -> None:
    status, body, _ = await get(pd, WINDOW, headers={"Authorization": f"Token token={TOKEN}"})
    assert status == 406 and body["error"]["code"] == 2001


async def test_unknown_paths_verbs_and_parameters_are_refused(pd: FakePagerDutyRest) -> None:
    assert (await get(pd, {}, path="/schedules"))[0] == 404
    assert (await get(pd, {}, method="POST"))[0] == 405
    status, body, _ = await get(pd, {"schedule_id": "PSCHED1", **WINDOW})
    assert status == 400 and body["error"]["errors"] == ["unknown parameters: schedule_id"]


async def test_bad_windows_are_400(pd: FakePagerDutyRest) -> None:
    status, body, _ = await get(
        pd, {"since": "2026-03-03T00:00:00Z", "until": "2026-03-02T00:00:00Z"}
    )
    assert (status, body["error"]["code"]) == (400, 2005)
    status, body, _ = await get(
        pd, {"since": "2026-03-02T00:00:00", "until": "2026-03-03T00:00:00Z"}
    )
    assert (status, body["error"]["code"]) == (400, 2004)
    far = (T0 + timedelta(days=91)).isoformat()
    status, _, _ = await get(pd, {"since": WINDOW["since"], "until": far})
    assert status == 400


async def test_injected_faults_come_first(pd: FakePagerDutyRest) -> None:
    pd.fail_next(429, reset=7)
    pd.fail_next(503)
    status, body, headers = await get(pd, WINDOW, headers={})
    assert status == 429 and headers["ratelimit-reset"] == "7"
    assert body["error"]["message"] == "Rate Limit Exceeded"
    assert (await get(pd, WINDOW))[0] == 503
    assert (await get(pd, WINDOW))[0] == 200
    with pytest.raises(ValueError):
        pd.fail_next(404)
