"""The console in a real browser: Debian's chromium, driven by selenium through Debian's
chromedriver (nothing is downloaded). A person signs in through the proxy-header mode
and through Sign in with Slack, opens the incident list, opens an incident and reads
its timeline; the pages are photographed on a desktop and a phone-size window.

The screenshots go to a temporary folder; with ``ROUTER_SCREENSHOTS=docs/screenshots``
they are written there for the README (CI never rewrites them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from router.adapters.web import SlackDirectory
from router.app.clock import FrozenClock
from router.core import messages
from tests.conftest import skip_unless_ci
from tests.console_app import mount, proxy_config, slack_config
from tests.fakes.auth_proxy import FakeAuthProxy
from tests.fakes.console_source import sample
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_oidc import FakeSlackOIDC
from tests.flows.test_web_console_store import (
    a_week,
    make_confidential,
    named_alert,
    named_slack,
    page_key_of,
)
from tests.flows.test_web_console_store import config as store_config
from tests.harness import PRIMARY, RESPONDER, Harness, running_router

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT = 15  # seconds a page may take to show what is expected (a ceiling, not a sleep)

# the screenshots' clock: a Monday afternoon, so "5 h 40 min ago" reads the same always
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ROUTER_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        skip_unless_ci("needs Debian's chromium and chromium-driver (apt-get install chromium "
                       "chromium-driver); CI installs them")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--hide-scrollbars",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def _serve(app: web.Application, sock: socket.socket) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


def _photograph(driver: Any, path: Path, size: tuple[int, int]) -> None:
    """The whole page at this window width, as a PNG."""
    driver.set_window_size(*size)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size[0], max(size[1], min(int(height), 4000)))
    driver.save_screenshot(str(path))
    with path.open("rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert path.stat().st_size > 10_000, f"{path.name} looks empty"
    driver.set_window_size(*DESKTOP)


def _wait_for(driver: Any, what: Callable[[Any], Any]) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # an element of the page being left goes stale mid-navigation: look again
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, WAIT, ignored_exceptions=ignored).until(what)


def _csp_problems(driver: Any) -> list[str]:
    return [
        e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]
    ]


def _read_the_incident(driver: Any, folder: Path | None) -> None:
    """From the list, open INC-42 and read its timeline (the part shared by both ways in)."""
    from selenium.webdriver.common.by import By

    _wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr"))
    rows = driver.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr")
    texts = [row.text for row in rows]
    assert any("INC-42" in t and "Checkout API p99 latency over 2 s" in t for t in texts), texts
    (redacted,) = [row for row in rows if "INC-40" in row.text]
    assert "confidential" in redacted.text and "Suspicious" not in redacted.text
    # the stylesheet is applied (same origin, allowed by the Content-Security-Policy)
    header = driver.find_element(By.CSS_SELECTOR, "header.top")
    assert header.value_of_css_property("background-color") == "rgba(28, 35, 48, 1)"
    if folder:
        _photograph(driver, folder / "console-incidents.png", DESKTOP)
        _photograph(driver, folder / "console-incidents-phone.png", PHONE)

    driver.find_element(By.LINK_TEXT, "Checkout API p99 latency over 2 s").click()
    _wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "ol.timeline li.entry"))
    assert driver.current_url.endswith("/ui/incidents/42")
    entries = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "ol.timeline li.entry")]
    assert len(entries) == 9
    assert "status update: failing over the payments cache" in entries[5]
    assert "Ravi Patel" in entries[5]
    assert "INC-42 Checkout API p99 latency over 2 s" in driver.find_element(By.TAG_NAME, "h1").text
    if folder:
        _photograph(driver, folder / "console-incident.png", DESKTOP)
        _photograph(driver, folder / "console-incident-phone.png", PHONE)


def _walk_through_proxy(driver: Any, origin: str, folder: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(origin + "/ui/")
    _read_the_incident(driver, folder)
    driver.find_element(By.LINK_TEXT, "Pages").click()
    _wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "section.digest"))
    assert (
        "Storm digest for John Roe" in driver.find_element(By.CSS_SELECTOR, "section.digest").text
    )
    _photograph(driver, folder / "console-pages.png", DESKTOP)
    driver.find_element(By.LINK_TEXT, "Alert quality").click()
    _wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3)
    assert "NodeNotReady" in driver.find_element(By.CSS_SELECTOR, "tr.top-pager").text
    _photograph(driver, folder / "console-quality.png", DESKTOP)
    _photograph(driver, folder / "console-quality-phone.png", PHONE)
    assert _csp_problems(driver) == []
    driver.find_element(By.CSS_SELECTOR, "form.account button").click()
    _wait_for(
        driver, lambda d: "signed out of the proxy" in d.find_element(By.TAG_NAME, "body").text
    )


async def test_a_responder_signs_in_through_the_proxy_and_reads_an_incident(
    browser: Any, tmp_path: Path
) -> None:
    # the stand-in's data; the README's pictures are of the running router (below)
    folder = tmp_path / "stand-in"
    folder.mkdir()
    async with FakeSlack() as slack:
        console = mount(
            proxy_config(), sample(NOW), FrozenClock(NOW),
            directory=SlackDirectory("xoxb-test", slack.base_url),
        )  # fmt: skip
        async with (
            _serve(console, _free_socket()) as upstream,
            FakeAuthProxy(upstream, email="jane@example.com") as proxy,
        ):
            await asyncio.to_thread(_walk_through_proxy, browser, proxy.origin, folder)
            assert proxy.sign_outs == 1
            assert "/ui/incidents/42" in proxy.forwarded
        # the e-mail the proxy vouched for was mapped to Jane's Slack user, once
        assert [c.args["email"] for c in slack.calls_to("users.lookupByEmail")] == [
            "jane@example.com"
        ]
    for name in ("incidents", "incidents-phone", "incident", "incident-phone", "pages",
                 "quality", "quality-phone"):  # fmt: skip
        assert (folder / f"console-{name}.png").exists()


def _walk_through_slack(driver: Any, origin: str, folder: Path) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    driver.get(origin + "/ui/")
    button = _wait_for(driver, lambda d: d.find_elements(By.LINK_TEXT, "Sign in with Slack"))
    assert driver.current_url == origin + "/ui/sign-in"
    _photograph(driver, folder / "console-sign-in.png", DESKTOP)
    button[0].click()  # off to the stand-in, which consents and sends the browser back
    _read_the_incident(driver, None)
    cookie = driver.get_cookie("router_console")
    assert cookie is not None
    assert _csp_problems(driver) == []
    return dict(cookie)


async def test_a_responder_signs_in_with_slack_and_reads_an_incident(
    browser: Any, tmp_path: Path
) -> None:
    folder = _screenshots(tmp_path)
    sock = _free_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with FakeSlackOIDC() as oidc:
        config = slack_config(oidc.origin, public_url=origin)
        now = datetime.now(UTC)
        console = mount(config, sample(now), _RealTimeClock(), slack_api_url=oidc.api_url)
        async with _serve(console, sock):
            cookie = await asyncio.to_thread(_walk_through_slack, browser, origin, folder)
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        assert cookie["path"] == "/ui/"
        (authorization,) = oidc.authorizations
        assert authorization["redirect_uri"] == origin + "/ui/sign-in/slack/callback"
        assert [c.response["ok"] for c in oidc.token_calls] == [True]


class _RealTimeClock:
    """Sign in with Slack checks the token's times against the clock, and the stand-in
    signs with the real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


# --------------------------------------------------- the console of the running router


async def _history(h: Harness) -> None:
    """A week of pages before today's: one a day, decided after a few minutes, most
    dismissed (with the reasons people give), so the charts have days to show."""
    names = ("NodeNotReady", "NodeNotReady", "DiskFull", "NodeNotReady", "CertExpiring",
             "NodeNotReady")  # fmt: skip
    for day, name in enumerate(names):
        await h.advance(86400 - 3600)
        await h.alertmanager(named_alert(name, f"{name}-{day}"))
        await h.settle()
        await h.advance(60 * (3 + 4 * day))  # minutes before someone decides
        key = await page_key_of(h, name, open_only=True)
        await h.press("page.dismiss_reason", "", PRIMARY, selected=f"{key}|{day % 3}")
        await h.settle()
        await h.advance(3600 - 60 * (3 + 4 * day))


async def _a_confidential_report(h: Harness) -> None:
    """INC-2: reported by a responder, who is its commander; confidential."""
    title = "Suspicious logins on the admin panel"
    await h.command(f"declare {title}", RESPONDER)
    await h.press(messages.REPORT_COMMANDER, title, RESPONDER, block_id="report")
    await h.settle()
    await make_confidential(h, 2)


def _walk_the_running_console(driver: Any, origin: str, folder: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(origin + "/ui/?status=all")
    _wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr"))
    rows = driver.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr")
    texts = [row.text for row in rows]
    assert any("INC-1" in t and "HighLatency on api-1" in t for t in texts), texts
    (redacted,) = [row for row in rows if "INC-2" in row.text]
    assert "confidential" in redacted.text and "Suspicious" not in redacted.text
    _photograph(driver, folder / "console-incidents.png", DESKTOP)
    _photograph(driver, folder / "console-incidents-phone.png", PHONE)

    driver.find_element(By.LINK_TEXT, "HighLatency on api-1").click()
    _wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "ol.timeline li.entry"))
    assert driver.current_url.endswith("/ui/incidents/1")
    entries = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "ol.timeline li.entry")]
    assert any("status update: failing over the payments cache" in e for e in entries), entries
    assert any("mitigated" in e for e in entries), entries
    assert "INC-1 HighLatency on api-1" in driver.find_element(By.TAG_NAME, "h1").text
    assert "Priya Raman" in driver.find_element(By.CSS_SELECTOR, "section.facts").text
    assert driver.find_elements(By.CSS_SELECTOR, "#alert-quality svg.chart")
    _photograph(driver, folder / "console-incident.png", DESKTOP)
    _photograph(driver, folder / "console-incident-phone.png", PHONE)

    driver.find_element(By.LINK_TEXT, "Pages").click()
    _wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "section.digest"))
    assert "Storm001" in driver.find_element(By.CSS_SELECTOR, "section.digest").text
    assert "Http5xxRate on web-3" in driver.find_element(By.TAG_NAME, "main").text
    _photograph(driver, folder / "console-pages.png", DESKTOP)
    driver.find_element(By.LINK_TEXT, "Alert quality").click()
    _wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3)
    assert "NodeNotReady" in driver.find_element(By.CSS_SELECTOR, "tr.top-pager").text
    _photograph(driver, folder / "console-quality.png", DESKTOP)
    _photograph(driver, folder / "console-quality-phone.png", PHONE)
    assert _csp_problems(driver) == []


async def test_the_running_router_s_console_in_a_browser(browser: Any, tmp_path: Path) -> None:
    """The console as ``router serve`` mounts it, on the router's own store: signed in
    by the proxy (Jane's e-mail, mapped to her Slack user), the list, an incident and
    its timeline, the pages and alert quality. These are the README's pictures."""
    folder = _screenshots(tmp_path)
    settings = store_config(f"sqlite:///{tmp_path}/router.db")
    async with named_slack() as slack, running_router(tmp_path, slack, config=settings) as h:
        await _history(h)
        await a_week(h)
        await _a_confidential_report(h)
        await h.advance(601)  # past the storm window: paged one by one again
        await h.alertmanager(named_alert("Http5xxRate", "web-5xx", instance="web-3"))
        await h.settle()
        upstream = str(h.client.make_url("")).rstrip("/")
        async with FakeAuthProxy(upstream, email=f"{PRIMARY.lower()}@example.com") as proxy:
            await asyncio.to_thread(_walk_the_running_console, browser, proxy.origin, folder)
            assert "/ui/incidents/1" in proxy.forwarded
        looked_up = [c.args["email"] for c in slack.calls_to("users.lookupByEmail")]
        assert looked_up == [f"{PRIMARY.lower()}@example.com"]  # once: then the session
    for name in ("incidents", "incidents-phone", "incident", "incident-phone", "pages",
                 "quality", "quality-phone"):  # fmt: skip
        assert (folder / f"console-{name}.png").exists()
