"""Exactly one page through store and Slack faults (the outbox's unknown outcomes).

The frozen clock never reaches the 60 s lease here, so every page that arrives proves
that no job waited for its lease to run out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router.adapters.store import Store
from router.core.jobs import JobKind, JobStatus
from tests.conftest import am_alert, am_payload
from tests.flaky_store import FlakyStore
from tests.harness import PRIMARY, Harness, running_router
from tests.waiting import eventually


def group(i: int) -> dict[str, Any]:
    name = f"Group{i:02d}"
    return am_payload(
        groupKey=f'{{}}:{{alertname="{name}"}}',
        groupLabels={"alertname": name},
        alerts=[am_alert(f"{i:016x}", alertname=name)],
    )


def flaky(holder: list[FlakyStore]) -> Any:
    def wrap(store: Store) -> Store:
        holder.append(FlakyStore(store))
        return holder[0]

    return wrap


async def page_done(h: Harness, i: int = 0) -> dict[str, Any]:
    async def done() -> Any:
        jobs = await h.jobs(JobStatus.DONE)
        return [j for j in jobs if j.kind is JobKind.SLACK_DM and f"Group{i:02d}" in str(j.payload)]

    await h.slack.wait_for(lambda: h.slack.dms_to(PRIMARY))
    [job] = await eventually(done, within=5, what="the page recorded as done")
    found = await h.store.run(lambda tx: tx.job_by_key(job.key))
    assert found is not None and found[1] is not None
    return found[1]


async def test_a_page_whose_result_was_not_recorded_is_recorded_when_the_store_answers(
    tmp_path: Path,
) -> None:
    stores: list[FlakyStore] = []
    async with running_router(tmp_path, store=flaky(stores)) as h:
        stores[0].fail("finish_job", times=3)  # the connection dies three times running
        await h.alertmanager(group(0))
        result = await page_done(h)
        [dm] = h.slack.dms_to(PRIMARY)
        assert result["ts"] == dm["ts"]  # the very message, recorded, not sent again
        assert stores[0].injected == ["finish_job"] * 3
        assert len(h.slack.calls_to("chat.postMessage")) == 1


async def test_an_outcome_committed_but_answered_with_an_error_is_not_sent_again(
    tmp_path: Path,
) -> None:
    stores: list[FlakyStore] = []
    async with running_router(tmp_path, store=flaky(stores)) as h:
        stores[0].fail("finish_job", after_commit=True)
        await h.alertmanager(group(0))
        await page_done(h)
        await h.settle()
        assert len(h.slack.dms_to(PRIMARY)) == 1


async def test_a_claim_whose_commit_failed_is_given_back_at_once(tmp_path: Path) -> None:
    stores: list[FlakyStore] = []
    async with running_router(tmp_path, store=flaky(stores)) as h:
        # the claim committed, but the worker never heard: the jobs are its own
        stores[0].fail("claim_jobs", after_commit=True)
        await h.alertmanager(group(0))
        await page_done(h)
        assert "claim_jobs" in stores[0].injected
        assert len(h.slack.dms_to(PRIMARY)) == 1


async def test_a_job_the_store_failed_before_it_started_is_given_back(tmp_path: Path) -> None:
    stores: list[FlakyStore] = []
    async with running_router(tmp_path, store=flaky(stores)) as h:
        stores[0].fail("extend_claim", times=2)
        await h.alertmanager(group(0))
        await page_done(h)
        assert stores[0].injected == ["extend_claim"] * 2
        assert len(h.slack.dms_to(PRIMARY)) == 1
        [job] = [j for j in await h.jobs() if j.kind is JobKind.SLACK_DM]
        assert job.attempts == 1  # given back: the failed tries used up no attempt


async def test_a_page_slack_posted_without_answering_is_found_not_posted_twice(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as h:
        # Slack posts the DM, then answers 502: the router cannot tell it went through
        h.slack.fail_next("chat.postMessage", status=502, commit=True)
        await h.alertmanager(group(0))
        await h.settle()
        [dm] = h.slack.dms_to(PRIMARY)
        assert (
            dm["metadata"]["event_payload"]["job"].endswith(":dm:eng-primary")
            or dm["metadata"]["event_payload"]["job"]
        )
        [history] = h.slack.calls_to("conversations.history")
        assert history.args["include_all_metadata"] in ("1", "true", True)
        result = await page_done(h)
        assert result["ts"] == dm["ts"]
        assert h.sample("router_outbox_jobs_total", {"kind": "slack.dm", "outcome": "found"}) == 1


async def test_a_page_that_did_not_happen_is_looked_for_then_sent(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        # no answer and nothing posted: the look-up finds nothing, the page goes out
        h.slack.fail_next("chat.postMessage", status=502)
        await h.alertmanager(group(0))
        await h.settle()
        assert len(h.slack.dms_to(PRIMARY)) == 1
        assert len(h.slack.calls_to("conversations.history")) == 1


async def test_pages_held_back_by_a_slack_outage_arrive_once_each_in_order(
    tmp_path: Path,
) -> None:
    config = {"paging": {"storm_limit": 100, "ack_timeout_seconds": 3600}}
    async with running_router(tmp_path, config=config) as h:
        # 20 groups arrive over 60 s (of the frozen clock) while Slack is away:
        # 30 s of 5xx, then 30 s of 429 with Retry-After
        h.slack.fail_next("*", status=503, times=10**6)
        for i in range(20):
            if i == 10:
                h.slack.clear_faults()
                h.slack.fail_next("*", status=429, retry_after=5, times=10**6)
            await h.alertmanager(group(i))
            await h.advance(3)
            await h.settle(horizon=0)  # the worker tried (and failed) whatever was due
        assert not h.slack.dms_to(PRIMARY)
        h.slack.clear_faults()  # Slack is back
        await h.settle(horizon=400, within=30)
        dms = h.slack.dms_to(PRIMARY)
        names = [m["metadata"]["event_payload"]["job"] for m in dms]
        assert len(names) == len(set(names)) == 20  # each group once
        paged = [
            next(f"Group{i:02d}" for i in range(20) if f"Group{i:02d}" in m["text"]) for m in dms
        ]
        assert paged == [f"Group{i:02d}" for i in range(20)]  # in order of arrival
        assert not [j for j in await h.jobs() if j.status is JobStatus.DEAD]
