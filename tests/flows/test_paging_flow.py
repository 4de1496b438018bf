"""The whole paging path against the loopback Slack: alert -> DM -> click -> incident."""

from __future__ import annotations

from pathlib import Path

from router.core.jobs import JobStatus, StoredJob
from tests.conftest import am_alert, am_payload
from tests.harness import INCIDENTS, OPS, PRIMARY, RESPONDER, SECONDARY, STRANGER, running_router
from tests.waiting import eventually


async def test_alert_pages_eng_primary_and_declare_announces(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        blocks = await h.dm_blocks(PRIMARY)
        text = str(blocks)
        assert "HighLatency" in text and "critical" in text
        assert '"extreme or complete production outage"' in text or "extreme or complete" in text
        key = await h.page_key()

        response = await h.press("page.declare", key, PRIMARY)
        assert response.status == 200
        announced = await h.slack.wait_for(lambda: h.slack.messages_in(INCIDENTS))
        message = announced[0]
        assert "INC-1" in message["text"] and f"<@{PRIMARY}>" in message["text"]
        assert "extreme or complete production outage" in str(message["blocks"])
        # the page itself now says who declared it
        await h.slack.wait_for(lambda: h.slack.calls_to("chat.update"))
        updated = h.slack.dms_to(PRIMARY)[0]
        assert "Declared *INC-1*" in str(updated["blocks"])
        declared = h.metrics.registry.get_sample_value(
            "router_incidents_declared_total", {"severity": "critical"}
        )
        assert declared == 1


async def test_same_group_again_updates_the_page_instead_of_paging(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload(alerts=[am_alert("a")]))
        await h.dm_blocks(PRIMARY)
        await h.alertmanager(am_payload(alerts=[am_alert("a"), am_alert("b", instance="api-2")]))
        await h.slack.wait_for(lambda: h.slack.calls_to("chat.update"))
        assert len(h.slack.dms_to(PRIMARY)) == 1
        assert "2 firing" in str(h.slack.dms_to(PRIMARY)[0]["blocks"])


async def test_a_stranger_gets_an_ephemeral_refusal_and_nothing_changes(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        key = await h.page_key()
        assert (await h.press("page.declare", key, STRANGER)).status == 200
        refusal = await h.slack.wait_for(lambda: h.slack.responses_for(f"resp-{STRANGER}"))
        assert refusal[0]["response_type"] == "ephemeral"
        assert "Only the people paged" in refusal[0]["text"]
        assert await h.store.run(lambda tx: tx.incidents()) == []
        assert h.metrics.registry.get_sample_value("router_unauthorized_actions_total") == 1


async def test_double_click_declares_once(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        key = await h.page_key()
        first = await h.press("page.declare", key, PRIMARY, action_ts="1.1")
        again = await h.press("page.declare", key, PRIMARY, action_ts="1.1")  # Slack retry
        other = await h.press("page.declare", key, RESPONDER, action_ts="1.2")  # second click
        assert (first.status, again.status, other.status) == (200, 200, 200)
        assert len(await h.store.run(lambda tx: tx.incidents())) == 1
        refusal = await h.slack.wait_for(lambda: h.slack.responses_for(f"resp-{RESPONDER}"))
        assert "Already declared as INC-1" in refusal[0]["text"]


async def test_dismiss_with_a_reason(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        key = await h.page_key()
        await h.press("page.dismiss_reason", "", PRIMARY, selected=f"{key}|0")
        await h.slack.wait_for(lambda: h.slack.calls_to("chat.update"))
        [page] = await h.store.run(lambda tx: tx.pages())
        assert (page.status.value, page.reason, page.decided_by) == (
            "dismissed", "false positive", PRIMARY,
        )  # fmt: skip
        assert h.metrics.registry.get_sample_value("router_pages_dismissed_total") == 1


async def test_unanswered_page_escalates_to_eng_secondary(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        await h.dm_blocks(PRIMARY)
        await h.advance(301)
        await h.dm_blocks(SECONDARY)
        await h.slack.wait_for(lambda: len(h.slack.dms_to(PRIMARY)) == 2)
        assert "Still waiting" in h.slack.dms_to(PRIMARY)[1]["text"]
        key = await h.page_key(SECONDARY)
        await h.press("page.declare", key, SECONDARY)
        announced = await h.slack.wait_for(lambda: h.slack.messages_in(INCIDENTS))
        assert f"<@{SECONDARY}>" in announced[0]["text"]
        escalations = h.metrics.registry.get_sample_value(
            "router_escalations_total", {"role": "eng-secondary", "cause": "timeout"}
        )
        assert escalations == 1


async def test_slack_429_is_retried_after_retry_after(tmp_path: Path) -> None:
    async with running_router(tmp_path) as h:
        h.slack.fail_next("chat.postMessage", status=429, retry_after=1, times=2)
        await h.alertmanager(am_payload())
        await h.slack.wait_for(lambda: len(h.slack.calls_to("chat.postMessage")) == 2)

        async def retry_recorded() -> StoredJob | None:
            # the worker records the retry just after the second 429
            [job] = [j for j in await h.jobs() if j.kind.value == "slack.dm"]
            return job if job.status is JobStatus.PENDING else None

        job = await eventually(retry_recorded, what="the retry of the rate-limited DM")
        assert "ratelimited" in (job.last_error or "")
        await h.advance(1.5)  # Retry-After: 1 second (the clock is frozen)
        await h.dm_blocks(PRIMARY)  # after the inline retry and one outbox retry
        assert len(h.slack.calls_to("chat.postMessage")) == 3


async def test_permanent_failure_is_dead_lettered_and_told_to_the_operator(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as h:
        h.slack.fail_next("conversations.open", status=200, error="user_not_found")
        await h.alertmanager(am_payload())
        notice = await h.slack.wait_for(lambda: h.slack.messages_in(OPS))
        assert "failed for good" in notice[0]["text"] and "user_not_found" in notice[0]["text"]
        dead = await h.store.run(lambda tx: tx.jobs(JobStatus.DEAD))
        assert [job.kind.value for job in dead] == ["slack.dm"]
        assert h.metrics.registry.get_sample_value(
            "router_outbox_jobs_total", {"kind": "slack.dm", "outcome": "dead"}
        ) == 1  # fmt: skip


async def test_a_crash_between_commit_and_send_only_delays_the_page(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from router.bootstrap import create_app
    from router.config import Secrets
    from tests.conftest import AM_TOKEN
    from tests.harness import SIGNING_SECRET, SLACK_TOKEN, router_config

    async with running_router(tmp_path) as h:
        # a second router on the same database whose worker never runs: it "crashes"
        config = router_config(tmp_path, h.slack.base_url)
        secrets = Secrets(ALERTMANAGER_TOKEN=AM_TOKEN, SLACK_BOT_TOKEN=SLACK_TOKEN,
                          SLACK_SIGNING_SECRET=SIGNING_SECRET)  # fmt: skip
        crashed = TestClient(
            TestServer(create_app(config, secrets, clock=h.clock, run_worker=False))
        )
        await crashed.start_server()
        response = await crashed.post("/webhooks/alertmanager", json=am_payload(),
                                      headers={"Authorization": f"Bearer {AM_TOKEN}"})  # fmt: skip
        assert response.status == 200
        await crashed.close()
        h.kick()  # the surviving router's worker finds the committed job
        await h.dm_blocks(PRIMARY)


async def test_a_failed_edit_is_retried_carrying_the_newest_state(tmp_path: Path) -> None:
    """One edit of a message waits at a time: a newer state joins it, so a retried
    edit never shows an older state than the newest (and Slack gets one call)."""
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload(alerts=[am_alert("a")]))
        key = await h.page_key()
        h.slack.fail_next("chat.update", status=500, times=2)  # the inline retry fails too
        await h.alertmanager(am_payload(alerts=[am_alert("a"), am_alert("b")]))
        await h.slack.wait_for(lambda: len(h.slack.calls_to("chat.update")) == 2)
        await h.press("page.declare", key, PRIMARY)
        await h.slack.wait_for(lambda: h.slack.messages_in(INCIDENTS))
        [waiting] = [j for j in await h.store.run(lambda tx: tx.jobs(JobStatus.PENDING))
                     if j.kind.value == "slack.update"]  # fmt: skip
        assert "fatal_error" in (waiting.last_error or "")
        assert "Declared *INC-1*" in str(waiting.payload["blocks"])  # the newest state
        await h.advance(600)  # its retry comes due
        await h.slack.wait_for(lambda: len(h.slack.calls_to("chat.update")) == 3)
        await h.settle()
        assert len(h.slack.calls_to("chat.update")) == 3  # no second edit for the declaration
        assert "Declared *INC-1*" in str(h.slack.dms_to(PRIMARY)[0]["blocks"])


async def test_a_reply_waiting_on_its_rate_limited_parent_uses_up_no_attempts(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as h:
        await h.alertmanager(am_payload())
        key = await h.page_key()
        # the announcement is rate-limited for a long time; its thread replies wait
        h.slack.fail_next("chat.postMessage", status=429, retry_after=30, times=1)
        await h.press("page.declare", key, PRIMARY)
        await h.command("update rolling back v42", PRIMARY)  # a reply in its thread
        for _ in range(40):  # many polls while the parent waits
            await h.advance(1.1)
            await h.settle(horizon=0)  # the worker looked at every job now due
        jobs = await h.store.run(lambda tx: tx.jobs())
        assert not [j for j in jobs if j.status is JobStatus.DEAD]
        await h.advance(30)
        await h.slack.wait_for(
            lambda: any(
                "rolling back v42" in str(m["text"]) for m in h.slack.messages_in(INCIDENTS)
            )
        )


async def test_a_broken_timer_does_not_stop_the_worker(tmp_path: Path) -> None:
    from router.core.jobs import Job, JobKind
    from tests.conftest import T0

    async with running_router(tmp_path) as h:
        bad = Job(kind=JobKind.TIMER, key="bad-timer", payload={"event": "ack_timeout"})
        await h.store.run(lambda tx: tx.enqueue([bad], T0))
        h.kick()

        async def tried() -> StoredJob | None:
            [found] = [j for j in await h.jobs() if j.key == "bad-timer"]
            return found if found.last_error is not None else None

        found = await eventually(tried, what="the worker trying the broken timer")
        assert found.status is JobStatus.PENDING and found.last_error == "KeyError"
        await h.alertmanager(am_payload())  # the worker still sends pages
        await h.dm_blocks(PRIMARY)
