"""The Statuspage adapter against FakeStatuspage, through aiohttp."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from router.adapters.statuspage.config import StatuspageConfig
from router.adapters.statuspage.notice import NoticeJob, StatuspageAdapter
from router.app.effects import PermanentFailure, RetryLater
from router.core.jobs import JobKind, JobStatus, StoredJob
from router.core.severity import Severity
from tests.fakes.statuspage_api import FakeStatuspage

KEY, PAGE = "sp-api-key-0123456789", "gytm4qzbx9t6"
API, CHECKOUT = "8kbf7d35c070", "vtnh60py4yd7"
FIRST = NoticeJob(
    incident="INC-42",
    name="Checkout errors",
    body="We are investigating.",
    status="investigating",
    severity=Severity.CRITICAL,
)


@pytest.fixture
async def sp() -> AsyncIterator[FakeStatuspage]:
    async with FakeStatuspage(KEY, PAGE, {API: "API", CHECKOUT: "Checkout"}) as fake:
        yield fake


@pytest.fixture
async def adapter(sp: FakeStatuspage) -> AsyncIterator[StatuspageAdapter]:
    config = StatuspageConfig(api_url=sp.api_url, page_id=PAGE, component_ids=[API, CHECKOUT])
    a = StatuspageAdapter(config, KEY)
    yield a
    await a.close()


class Results:
    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}

    async def __call__(self, key: str) -> dict[str, Any] | None:
        return self.stored.get(key)


async def test_the_first_notice_opens_an_incident_with_components_and_a_marker(
    adapter: StatuspageAdapter, sp: FakeStatuspage
) -> None:
    result = await adapter.publish(FIRST, Results())
    [incident] = sp.incidents.values()
    assert result == {
        "statuspage_incident": incident["id"],
        "shortlink": incident["shortlink"],
        "update": incident["incident_updates"][0]["id"],
        "status": "investigating",
    }
    [call] = sp.writes()
    assert (call.method, call.path) == ("POST", f"/v1/pages/{PAGE}/incidents")
    assert call.headers["Authorization"] == f"OAuth {KEY}"
    assert call.body == {
        "incident": {
            "name": "Checkout errors",
            "status": "investigating",
            "body": "We are investigating.",
            "deliver_notifications": True,
            "component_ids": [API, CHECKOUT],
            "components": {API: "major_outage", CHECKOUT: "major_outage"},
            "metadata": {"router": {"incident": "INC-42"}},
        }
    }
    assert incident["impact"] == "critical"
    assert sp.components[API]["status"] == "major_outage"
    assert sp.notified == [result["update"]]


async def test_updates_and_the_resolution_go_to_the_same_incident(
    adapter: StatuspageAdapter, sp: FakeStatuspage
) -> None:
    results = Results()
    results.stored["sp:1"] = await adapter.publish(FIRST, results)
    update = NoticeJob(
        incident="INC-42",
        name="Checkout errors",
        body="A fix is rolling out.",
        status="monitoring",
        severity=Severity.HIGH,
        first="sp:1",
    )
    await adapter.publish(update, results)
    done = update.model_copy(update={"status": "resolved", "body": "Resolved."})
    result = await adapter.publish(done, results)
    [incident] = sp.incidents.values()
    assert result["status"] == "resolved" and incident["resolved_at"] is not None
    assert [(u["status"], u["body"]) for u in incident["incident_updates"]] == [
        ("resolved", "Resolved."),
        ("monitoring", "A fix is rolling out."),
        ("investigating", "We are investigating."),
    ]
    assert sp.components[API]["status"] == "operational"
    assert [c.method for c in sp.writes()] == ["POST", "PATCH", "PATCH"]
    assert "metadata" not in sp.writes()[1].body["incident"]


async def test_a_retried_first_notice_opens_no_second_incident(
    adapter: StatuspageAdapter, sp: FakeStatuspage
) -> None:
    sp.fail_next(503, commit=True, method="POST")  # created, but the answer was lost
    with pytest.raises(RetryLater) as failure:
        await adapter.publish(FIRST, Results())
    assert failure.value.in_doubt
    result = await adapter.publish(FIRST, Results())
    assert len(sp.incidents) == 1 and result["statuspage_incident"] in sp.incidents
    assert [c.method for c in sp.calls] == ["GET", "POST", "GET"]  # found, not posted again


async def test_a_retried_update_posts_it_once(
    adapter: StatuspageAdapter, sp: FakeStatuspage
) -> None:
    results = Results()
    results.stored["sp:1"] = await adapter.publish(FIRST, results)
    update = NoticeJob(
        incident="INC-42",
        name="Checkout errors",
        body="Identified.",
        status="identified",
        severity=Severity.CRITICAL,
        first="sp:1",
    )
    sp.fail_next(502, commit=True, method="PATCH")
    with pytest.raises(RetryLater):
        await adapter.publish(update, results)
    await adapter.publish(update, results)
    [incident] = sp.incidents.values()
    assert len(incident["incident_updates"]) == 2


async def test_an_update_waits_for_the_first_notice(adapter: StatuspageAdapter) -> None:
    update = FIRST.model_copy(update={"first": "sp:1", "status": "identified"})
    with pytest.raises(RetryLater) as failure:
        await adapter.publish(update, Results())
    assert failure.value.waiting


async def test_an_update_waits_for_the_one_confirmed_before_it(
    adapter: StatuspageAdapter, sp: FakeStatuspage
) -> None:
    results = Results()
    results.stored["sp:1"] = await adapter.publish(FIRST, results)
    later = FIRST.model_copy(
        update={"first": "sp:1", "previous": "sp:2", "status": "monitoring", "body": "Fixed."}
    )
    with pytest.raises(RetryLater) as failure:
        await adapter.publish(later, results)
    assert failure.value.waiting and len(sp.writes()) == 1  # nothing sent out of order

    async def previous_dead(key: str) -> dict[str, Any] | None:
        if key == "sp:2":
            raise PermanentFailure("the job it depends on (sp:2) is dead")
        return results.stored.get(key)

    # an update that failed for good does not hold the next one back
    result = await adapter.publish(later, previous_dead)
    assert result["status"] == "monitoring" and len(sp.writes()) == 2


@pytest.mark.parametrize("status", [420, 429])
async def test_rate_limits_are_retried_after_what_statuspage_says(
    adapter: StatuspageAdapter, sp: FakeStatuspage, status: int
) -> None:
    sp.fail_next(status, retry_after=2)
    with pytest.raises(RetryLater) as failure:
        await adapter.publish(FIRST, Results())
    assert failure.value.after == 2.0
    assert (
        failure.value.reason
        == f"statuspage GET /incidents/unresolved: HTTP {status} (rate limited)"
    )
    assert sp.incidents == {}


async def test_a_wrong_key_or_page_is_permanent(sp: FakeStatuspage) -> None:
    wrong = StatuspageAdapter(StatuspageConfig(api_url=sp.api_url, page_id=PAGE), "nope")
    with pytest.raises(PermanentFailure, match=r"HTTP 401 \(STATUSPAGE_API_KEY was refused\)"):
        await wrong.publish(FIRST, Results())
    other = StatuspageAdapter(StatuspageConfig(api_url=sp.api_url, page_id="otherpage123"), KEY)
    with pytest.raises(PermanentFailure, match="HTTP 404"):
        await other.publish(FIRST, Results())
    await wrong.close()
    await other.close()


async def test_a_component_statuspage_does_not_know_is_permanent(sp: FakeStatuspage) -> None:
    config = StatuspageConfig(api_url=sp.api_url, page_id=PAGE, component_ids=["unknown12345"])
    a = StatuspageAdapter(config, KEY)
    with pytest.raises(PermanentFailure) as failure:
        await a.publish(FIRST, Results())
    assert failure.value.reason == "statuspage POST /incidents: HTTP 422"
    await a.close()


async def test_a_bad_payload_names_its_fields(adapter: StatuspageAdapter) -> None:
    job = StoredJob(
        id=1,
        kind=JobKind.STATUSPAGE_NOTICE,
        key="sp:1",
        due_at=datetime.now(UTC),
        attempts=1,
        status=JobStatus.RUNNING,
        payload={
            "incident": "INC-1",
            "name": "x",
            "body": "y",
            "status": "fixed",
            "severity": "critical",
        },
    )
    with pytest.raises(PermanentFailure, match=r"bad payload \(status\)"):
        await adapter.run(job, Results())


async def test_the_public_text_and_key_are_not_logged(
    adapter: StatuspageAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="router"):
        await adapter.publish(FIRST, Results())
    assert "investigating" in caplog.text  # the status is
    assert "We are investigating" not in caplog.text and KEY not in caplog.text
