"""The console mounted in the running router, reading the router's own store (both
engines): every page shows what the router's own paths recorded, and who may see what.

The week is made the way people make it: Alertmanager pages eng-primary, who declares
from the page, runs the incident with ``/incident`` commands, dismisses another page
with a reason; a storm folds two more pages into a digest. People then sign in through
the proxy header from the test's own address (127.0.0.1, the trusted proxy).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from router.adapters.store.sql import SqlTx
from router.core.incident import Incident
from tests.conftest import (
    _postgres_available,
    am_alert,
    am_payload,
    postgres_schema,
    skip_unless_ci,
)
from tests.console_app import HTML
from tests.fakes.slack_api import FakeSlack
from tests.flows.test_storms import group, send_all
from tests.harness import (
    INCIDENTS,
    LEAD,
    OPS,
    PRIMARY,
    RESPONDER,
    SECONDARY,
    SLACK_TOKEN,
    STRANGER,
    USERS,
    Harness,
    running_router,
)

PUBLIC = "http://console.test"
NAMES = {PRIMARY: "Priya Raman", SECONDARY: "Sam Okafor", LEAD: "Lena Fischer",
         RESPONDER: "Mei Chen"}  # fmt: skip


def named_slack() -> FakeSlack:
    """FakeSlack whose people have names (the harness's are called by their ids)."""
    users = {uid: {**info, "real_name": NAMES.get(uid, uid)} for uid, info in USERS.items()}
    return FakeSlack(SLACK_TOKEN, channels=(INCIDENTS, OPS), users=users)


def web(trusted: str = "127.0.0.1/32") -> dict[str, Any]:
    return {"public_url": PUBLIC, "auth": {"mode": "proxy", "trusted_proxies": [trusted]}}


def as_user(user: str) -> dict[str, str]:
    return {**HTML, "X-Forwarded-User": user}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/router.db"
        return
    if not _postgres_available():
        skip_unless_ci("no PostgreSQL for the console's store tests")
    with postgres_schema("router_console_") as url:
        yield url


def named_alert(name: str, fingerprint: str, instance: str = "db-1") -> dict[str, Any]:
    """A warning alert of its own group, named ``name``."""
    return am_payload(
        groupKey=f'{{}}:{{alertname="{name}",fp="{fingerprint}"}}',
        groupLabels={"alertname": name},
        commonLabels={"alertname": name, "severity": "warning"},
        alerts=[am_alert(fingerprint, alertname=name, severity="warning", instance=instance)],
    )


def disk_full() -> dict[str, Any]:
    return named_alert("DiskFull", "disk-1")


async def page_key_of(h: Harness, alert_name: str, *, open_only: bool = False) -> str:
    pages = await h.store.run(lambda tx: tx.pages())
    [page] = [
        p for p in pages
        if p.alert_name == alert_name and (not open_only or p.status.value == "open")
    ]  # fmt: skip
    return str(page.key)


async def a_week(h: Harness) -> None:
    """INC-1 declared from a page and run; a page dismissed; a storm folded."""
    await h.alertmanager(am_payload())
    await h.settle()
    declared = await h.press("page.declare", await page_key_of(h, "HighLatency"), PRIMARY)
    assert (await declared.json())["ok"] is True
    await h.settle()
    for text in (
        f"role comms <@{SECONDARY}>",
        "update failing over the payments cache",
        "flag outage",
        "mitigated",
    ):
        await h.advance(60)
        answer = await h.command(text, PRIMARY)
        assert answer["text"].startswith("Done"), answer
        await h.settle()
    await h.alertmanager(disk_full())
    await h.settle()
    key = await page_key_of(h, "DiskFull", open_only=True)
    await h.press("page.dismiss_reason", "", PRIMARY, selected=f"{key}|0")  # false positive
    await h.settle()
    await send_all(h, [group(1, alerts=2), group(2, alerts=3)])  # over the storm limit
    await h.settle()


def config(store_url: str, **web_config: Any) -> dict[str, Any]:
    return {
        "store": {"url": store_url},
        "paging": {"storm_limit": 2},
        "web": web_config or web(),
    }


async def make_confidential(h: Harness, number: int = 1) -> None:
    """What the declare dialog's Confidential box records."""

    def unit(tx: SqlTx) -> None:
        incident: Incident | None = tx.incident(number)
        assert incident is not None
        tx.save_incident(
            incident.model_copy(update={"confidential": True, "version": incident.version + 1})
        )

    await h.store.run(unit)


def text_of(html: str) -> str:
    """The page's words, without tags, for asserting what a person reads."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


# ---------------------------------------------------------------------------- pages


async def test_every_page_shows_what_the_router_recorded(tmp_path: Path, store_url: str) -> None:
    async with running_router(tmp_path, config=config(store_url)) as h:
        await a_week(h)
        client = h.client

        # the incidents list: open ones by default, filters in the address
        listed = await client.get("/ui/", headers=as_user(PRIMARY))
        assert listed.status == 200
        words = text_of(await listed.text())
        assert "INC-1" in words and "HighLatency on api-1" in words
        assert "mitigated" in words
        low = text_of(
            await (await client.get("/ui/?severity=low", headers=as_user(PRIMARY))).text()
        )
        assert "HighLatency on api-1" not in low
        mine = await client.get(f"/ui/?status=all&commander={PRIMARY}", headers=as_user(PRIMARY))
        assert "HighLatency on api-1" in await mine.text()
        others = await client.get(f"/ui/?commander={RESPONDER}", headers=as_user(PRIMARY))
        assert "HighLatency on api-1" not in await others.text()

        # one incident: severity with clause and evidence, people, every entry, alerts
        page = await client.get("/ui/incidents/1", headers=as_user(PRIMARY))
        assert page.status == 200
        html = await page.text()
        words = text_of(html)
        assert "HighLatency on api-1" in words
        assert "extreme or complete production outage" in words
        assert 'label severity = "critical"' in words  # the evidence
        assert SECONDARY in words  # the comms lead
        for entry in (
            f"declared; commander {PRIMARY}",
            f"communications lead: {SECONDARY}",
            "status update: failing over the payments cache",
            "flagged: outage",
            "mitigated",
        ):
            assert entry in words, entry
        assert "p99 > 1s" in words and "instance=api-1" in words
        announced = await h.announcement(1)
        thread = f"https://slack.com/archives/{INCIDENTS}/p{announced['ts'].replace('.', '')}"
        assert thread in html
        assert "Post-mortem draft" in words and "Root cause(s)" in words  # critical: owed
        assert "Alert quality: HighLatency: pages and declared per day, last 30 days" in words
        assert html.count("<svg") == 1

        # pages: the folded ones under their digest, with a link to the digest's DM
        pages = await client.get("/ui/pages", headers=as_user(PRIMARY))
        assert pages.status == 200
        html = await pages.text()
        words = text_of(html)
        assert "Storm001" in words and "Storm002" in words
        digest_dm = next(m for m in h.slack.dms_to(PRIMARY) if "digest" in m["text"])
        assert f"https://slack.com/archives/{digest_dm['channel']}/p" in html
        assert "DiskFull" not in words  # dismissed: no longer open

        # alert quality: per alert name, reasons, and the charts
        quality = await client.get("/ui/quality?days=7", headers=as_user(PRIMARY))
        assert quality.status == 200
        html = await quality.text()
        words = text_of(html)
        assert "HighLatency" in words and "DiskFull" in words and "Storm001" in words
        assert "false positive" in words
        assert html.count("<svg") >= 3


async def test_slack_messages_link_to_the_console(tmp_path: Path, store_url: str) -> None:
    async with running_router(tmp_path, config=config(store_url)) as h:
        await a_week(h)
        announcement = await h.announcement(1)
        assert f"{PUBLIC}/ui/incidents/1|INC-1 in the console" in str(announcement["blocks"])
        digest = next(m for m in h.slack.dms_to(PRIMARY) if "digest" in m["text"])
        assert f"{PUBLIC}/ui/pages|" in str(digest["blocks"])


# ----------------------------------------------------------------- who may see what


async def test_nothing_without_sign_in(tmp_path: Path, store_url: str) -> None:
    async with running_router(tmp_path, config=config(store_url)) as h:
        await a_week(h)
        for path in ("/ui/", "/ui/incidents/1", "/ui/pages", "/ui/quality"):
            api = await h.client.get(path)
            assert api.status == 401, path
            assert "HighLatency" not in await api.text()
            browser = await h.client.get(path, headers=HTML, allow_redirects=False)
            assert browser.status in (302, 303), path
            assert browser.headers["Location"].startswith("/ui/sign-in")
        bare = await h.client.get("/ui", allow_redirects=False)
        assert (bare.status, bare.headers["Location"]) == (308, "/ui/")


async def test_the_header_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    # The test client connects from 127.0.0.1, which this config does not trust.
    settings = config(f"sqlite:///{tmp_path}/router.db", **web("10.0.0.0/8"))
    async with running_router(tmp_path, config=settings) as h:
        await a_week(h)
        ignored = await h.client.get("/ui/incidents/1", headers={"X-Forwarded-User": PRIMARY})
        assert ignored.status == 401
        assert "HighLatency" not in await ignored.text()


async def test_a_confidential_incident_is_for_its_responders_only(
    tmp_path: Path, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_router(tmp_path, config=config(store_url)) as h:
        await a_week(h)
        await make_confidential(h)
        # commander (and paged), comms lead, and the responder group see it
        for user in (PRIMARY, SECONDARY, RESPONDER):
            seen = await h.client.get("/ui/incidents/1", headers=as_user(user))
            assert seen.status == 200, user
            assert "HighLatency on api-1" in await seen.text()
        # a signed-in stranger: 403 on it, and only id, commander, severity in lists
        refused = await h.client.get("/ui/incidents/1", headers=as_user(STRANGER))
        assert refused.status == 403
        body = await refused.text()
        assert "HighLatency" not in body and "failing over" not in body
        listed = await (await h.client.get("/ui/?status=all", headers=as_user(STRANGER))).text()
        assert "INC-1" in listed and "confidential" in listed
        assert "HighLatency" not in listed
        # the pages list and alert quality carry no incident's detail either way
        quality = await (await h.client.get("/ui/quality", headers=as_user(STRANGER))).text()
        assert "failing over" not in quality
        console_logs = [r for r in caplog.records if r.name.startswith("router.adapters.web")]
        assert console_logs  # the refusal is logged, by id
        assert not any("HighLatency" in r.getMessage() for r in console_logs)
        assert not any("failing over" in r.getMessage() for r in caplog.records)


async def test_a_confidential_report_shows_no_title_in_the_lists(
    tmp_path: Path, store_url: str
) -> None:
    """The declare form with "Page eng-primary" and Confidential ticked: the page it
    makes is listed (pages, alert quality) by a placeholder, never by its title."""
    async with running_router(tmp_path, config=config(store_url)) as h:
        await h.command("declare", RESPONDER, trigger_id=h.slack.issue_trigger_id())
        values = {
            "title": "Payroll export leaks salaries",
            "confidential": ["confidential"],
            "who": "page",
        }
        status, answer = await h.submit(h.last_view(), RESPONDER, values)
        assert (status, answer) == (200, None)
        await h.settle()
        assert "Payroll export" in str(await h.dm_blocks(PRIMARY))  # eng-primary is told
        for path in ("/ui/pages", "/ui/quality"):
            seen = await h.client.get(path, headers=as_user(STRANGER))
            assert seen.status == 200, path
            body = await seen.text()
            assert "Reported (confidential)" in text_of(body), path
            assert "Payroll" not in body and "salaries" not in body, path


async def test_console_requests_are_counted_by_page_and_code(tmp_path: Path) -> None:
    async with running_router(tmp_path, config=config(f"sqlite:///{tmp_path}/r.db")) as h:
        await a_week(h)
        await make_confidential(h)
        await h.client.get("/ui/incidents/1", headers=as_user(PRIMARY))
        await h.client.get("/ui/incidents/1", headers=as_user(STRANGER))
        await h.client.get("/ui/incidents/99", headers=as_user(PRIMARY))
        exposed = await (await h.client.get("/metrics")).text()
        assert 'router_console_requests_total{code="200",page="incident"} 1.0' in exposed
        assert 'router_console_requests_total{code="403",page="incident"} 1.0' in exposed
        assert 'router_console_requests_total{code="404",page="incident"} 1.0' in exposed
        assert "/ui/incidents/1" not in exposed  # no path, so no series per incident


async def test_an_e_mail_from_the_proxy_is_the_slack_user_it_belongs_to(tmp_path: Path) -> None:
    """With a bot token the e-mail the proxy vouches for is looked up in Slack
    (users.lookupByEmail, once per person): the responder it finds is the one the
    store knows, so the responder group sees the confidential incident."""
    async with running_router(tmp_path, config=config(f"sqlite:///{tmp_path}/r.db")) as h:
        await a_week(h)
        await make_confidential(h)
        responder = {**HTML, "X-Forwarded-Email": f"{RESPONDER.lower()}@example.com"}
        stranger = {**HTML, "X-Forwarded-Email": f"{STRANGER.lower()}@example.com"}
        nobody = {**HTML, "X-Forwarded-Email": "left-the-company@example.com"}
        for _ in range(2):
            seen = await h.client.get("/ui/incidents/1", headers=responder)
            assert seen.status == 200
            assert f'title="{RESPONDER}"' in await seen.text()  # signed in as the Slack user
        assert (await h.client.get("/ui/incidents/1", headers=stranger)).status == 403
        assert (await h.client.get("/ui/", headers=nobody)).status == 403  # not in Slack
        asked = [c.args["email"] for c in h.slack.calls_to("users.lookupByEmail")]
        assert asked.count(f"{RESPONDER.lower()}@example.com") == 1  # cached, not per request


async def test_a_storm_bigger_than_the_list_says_how_many_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.adapters.web import source

    monkeypatch.setattr(source, "PAGES_SHOWN", 1)
    async with running_router(tmp_path, config=config(f"sqlite:///{tmp_path}/r.db")) as h:
        await a_week(h)  # two pages folded into the digest wait
        html = await (await h.client.get("/ui/pages", headers=as_user(PRIMARY))).text()
        assert "2 waiting for a decision; the newest 1 shown" in text_of(html)
        assert "Storm002" in html and "Storm001" not in html


async def test_sign_in_with_slack_is_wired_in_the_running_router(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack mode mounted by the router: a browser goes to the sign-in page, and from
    there to Slack's authorize endpoint with the callback under public_url."""
    from urllib.parse import parse_qs, urlsplit

    monkeypatch.setenv("SLACK_CLIENT_SECRET", "client-secret")
    slack_mode = {
        "public_url": PUBLIC,
        "auth": {
            "mode": "slack",
            "slack": {"client_id": "1234567890.0987654321", "team_id": "T0FAKETEAM",
                      "oidc_url": "http://oidc.test"},
        },
    }  # fmt: skip
    async with running_router(tmp_path, config=config(f"sqlite:///{tmp_path}/r.db",
                                                      **slack_mode)) as h:  # fmt: skip
        await h.alertmanager(am_payload())
        to_sign_in = await h.client.get("/ui/incidents/1", headers=HTML, allow_redirects=False)
        assert to_sign_in.status in (302, 303)
        assert to_sign_in.headers["Location"].startswith("/ui/sign-in")
        # the proxy header means nothing in this mode
        ignored = await h.client.get("/ui/", headers={"X-Forwarded-User": PRIMARY})
        assert ignored.status == 401
        off = await h.client.get("/ui/sign-in/slack", allow_redirects=False)
        assert off.status in (302, 303)
        target = urlsplit(off.headers["Location"])
        assert (target.scheme, target.netloc, target.path) == (
            "http", "oidc.test", "/openid/connect/authorize",
        )  # fmt: skip
        query = parse_qs(target.query)
        assert query["redirect_uri"] == [f"{PUBLIC}/ui/sign-in/slack/callback"]
        assert query["client_id"] == ["1234567890.0987654321"]


async def test_people_are_shown_by_their_slack_names(tmp_path: Path) -> None:
    """users.info names the people a page shows, once per person (cached)."""
    async with named_slack() as slack:
        settings = config(f"sqlite:///{tmp_path}/r.db")
        async with running_router(tmp_path, slack, config=settings) as h:
            await a_week(h)
            for _ in range(2):
                html = await (
                    await h.client.get("/ui/incidents/1", headers=as_user(PRIMARY))
                ).text()
                assert f'<span class="person" title="{PRIMARY}">Priya Raman</span>' in html
                assert f'title="{SECONDARY}">Sam Okafor</span>' in html  # the comms lead
                assert "communications lead: Sam Okafor" in text_of(html)  # the timeline
            listed = await (await h.client.get("/ui/pages", headers=as_user(PRIMARY))).text()
            assert "Storm digest for <span" in listed and "Priya Raman" in listed
            asked = [c.args["user"] for c in slack.calls_to("users.info")]
            assert sorted(asked) == sorted(set(asked))  # each person once
            assert PRIMARY in asked
