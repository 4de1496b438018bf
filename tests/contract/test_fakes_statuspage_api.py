"""FakeStatuspage holds to Statuspage's auth, request and response shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.statuspage_api import FakeStatuspage

KEY, PAGE, API = "sp-key", "gytm4qzbx9t6", "8kbf7d35c070"


@pytest.fixture
async def sp() -> AsyncIterator[FakeStatuspage]:
    async with FakeStatuspage(KEY, PAGE, {API: "API"}) as fake:
        yield fake


async def call(
    sp: FakeStatuspage,
    method: str,
    path: str,
    body: Any = None,
    auth: str | None = f"OAuth {KEY}",
    **kwargs: Any,
) -> tuple[int, Any]:
    headers = {"Authorization": auth} if auth else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"{sp.api_url}/pages/{PAGE}{path}", json=body, headers=headers, **kwargs
        ) as response,
    ):
        return response.status, await response.json()


@pytest.mark.parametrize("auth", [None, "OAuth wrong", f"Bearer {KEY}"])
async def test_only_the_oauth_header_with_the_key_is_accepted(
    sp: FakeStatuspage, auth: str | None
) -> None:
    assert await call(sp, "GET", "/incidents", auth=auth) == (
        401,
        {"error": "Could not authenticate"},
    )


async def test_an_incident_has_statuspages_shape(sp: FakeStatuspage) -> None:
    status, incident = await call(
        sp,
        "POST",
        "/incidents",
        {
            "incident": {
                "name": "Errors",
                "status": "identified",
                "body": "Looking.",
                "components": {API: "partial_outage"},
                "component_ids": [API],
                "metadata": {"router": {"incident": "INC-1"}},
            }
        },
    )
    assert status == 201
    assert {
        "id",
        "name",
        "status",
        "impact",
        "shortlink",
        "page_id",
        "metadata",
        "created_at",
        "resolved_at",
        "monitoring_at",
        "components",
        "incident_updates",
    } <= set(incident)
    assert (incident["impact"], incident["page_id"]) == ("major", PAGE)
    [update] = incident["incident_updates"]
    assert {
        "id",
        "incident_id",
        "status",
        "body",
        "created_at",
        "display_at",
        "affected_components",
        "deliver_notifications",
    } <= set(update)
    assert update["affected_components"] == [
        {"code": API, "name": "API", "old_status": "operational", "new_status": "partial_outage"}
    ]
    status, listed = await call(sp, "GET", "/incidents/unresolved")
    assert status == 200 and [i["id"] for i in listed] == [incident["id"]]
    status, _ = await call(
        sp,
        "PATCH",
        f"/incidents/{incident['id']}",
        {"incident": {"status": "resolved", "body": "Fixed."}},
    )
    assert status == 200
    assert (await call(sp, "GET", "/incidents/unresolved")) == (200, [])


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"status": "investigating"}, "Name can't be blank"),
        ({"name": "x", "status": "fixed"}, "Status is not included in the list"),
        ({"name": "x", "components": {"nope00000000": "major_outage"}}, "Components are invalid"),
        (
            {"name": "x", "components": {API: "broken"}},
            "Component status is not included in the list",
        ),
        (
            {"name": "x", "metadata": {"router": "INC-1"}},
            "Metadata top-level values must be objects",
        ),
        ({"name": "x" * 256}, "Name is too long (maximum is 255 characters)"),
        ({"name": "x", "title": "y"}, "Unknown fields: title"),
    ],
)
async def test_invalid_incidents_are_422(
    sp: FakeStatuspage, fields: dict[str, Any], error: str
) -> None:
    assert await call(sp, "POST", "/incidents", {"incident": fields}) == (422, {"error": error})


async def test_unknown_things_and_bad_bodies(sp: FakeStatuspage) -> None:
    assert (await call(sp, "GET", "/incidents/nope"))[0] == 404
    assert (await call(sp, "DELETE", "/incidents"))[0] == 405
    assert (await call(sp, "POST", "/incidents", {"name": "x"}))[0] == 400
    assert (await call(sp, "POST", "/incidents", data=b"incident[name]=x"))[0] == 400


async def test_faults(sp: FakeStatuspage) -> None:
    sp.fail_next(420, retry_after=1)
    sp.fail_next(503, commit=True)
    assert (await call(sp, "GET", "/incidents"))[0] == 420
    assert (await call(sp, "POST", "/incidents", {"incident": {"name": "x"}}))[0] == 503
    assert len(sp.incidents) == 1  # committed before the 503
    with pytest.raises(ValueError):
        sp.fail_next(404)
