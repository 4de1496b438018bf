"""The README's trial, as a new user runs it: ``make run``'s configuration, an alert,
``router press`` to declare, then the console through the proxy header with ``curl``.

The router is a real process on the example configuration (no Slack token: Slack
messages go to its output, with a ready ``router press`` command per button). The
console is in proxy mode trusting 127.0.0.1, so the test's own requests play the
sign-in proxy, as the README's one ``curl`` step does.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import ROOT, TOKEN, RouterProcess, StartRouter, wait_until

pytestmark = pytest.mark.e2e

SIGNING_SECRET = "local-console-secret"  # the Makefile's, for the local trial
EXAMPLE = ROOT / "config" / "router.example.yaml"
RESPONDER = "U07RESPONDER"  # oncall.responders of the example
STRANGER = "U99STRANGER"
PRESS = re.compile(r"router press page\.declare (\S+) --user (\S+)")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode(errors="replace")


def words(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def example_config() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    del document["server"], document["store"]  # the fixture's port and file
    return document


def make_confidential(db: Path, number: int) -> None:
    """What the declare dialog's Confidential box records (straight into the file)."""
    conn = sqlite3.connect(db, timeout=5.0)
    try:
        with conn:
            conn.execute(
                "UPDATE incidents SET confidential = 1, version = version + 1,"
                " state = json_set(state, '$.confidential', json('true'),"
                " '$.version', version + 1) WHERE number = ?",
                (number,),
            )
    finally:
        conn.close()


def test_a_new_user_sees_the_declared_incident_in_the_console(start_router: StartRouter) -> None:
    router: RouterProcess = start_router(
        config=example_config(), env={"SLACK_SIGNING_SECRET": SIGNING_SECRET}
    )
    body = (ROOT / "tests/fixtures/alertmanager/high_latency.json").read_bytes()
    request = urllib.request.Request(
        router.webhook_url,
        body,
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    # the page is printed with its press command; the user runs it as printed
    found = wait_until(lambda: PRESS.search(router.output()), 15, "the page's press command")
    key, user = found.group(1), found.group(2)
    pressed = subprocess.run(
        [sys.executable, "-m", "router", "press", "page.declare", key, "--user", user,
         "--url", router.url],
        env={"SLACK_SIGNING_SECRET": SIGNING_SECRET, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    assert pressed.returncode == 0, pressed.stderr
    wait_until(lambda: router.query("SELECT number FROM incidents"), 15, "INC-1")
    wait_until(lambda: "INC-1" in router.output(), 15, "the announcement")

    # the one curl step: the commander sees INC-1, its timeline, its alert's chart
    status, _, html = get(f"{router.url}/ui/incidents/1", {"X-Forwarded-User": user})
    assert status == 200, html[:500]
    text = words(html)
    assert "INC-1" in text and "HighLatency" in text
    assert f"declared; commander {user}" in text  # the timeline
    assert "Alert quality: HighLatency" in text and "<svg" in html
    quality_status, _, quality = get(f"{router.url}/ui/quality", {"X-Forwarded-User": user})
    assert quality_status == 200 and quality.count("<svg") >= 3
    # the announcement printed for Slack links to the console page
    assert "http://127.0.0.1:8080/ui/incidents/1" in router.output()

    # nobody signed in: 401 (a browser: to the sign-in page), and no incident data
    status, _, anonymous = get(f"{router.url}/ui/incidents/1")
    assert status == 401 and "HighLatency" not in anonymous
    status, headers, _ = get(f"{router.url}/ui/incidents/1", {"Accept": "text/html"})
    assert status in (302, 303) and headers["Location"].startswith("/ui/sign-in")

    # confidential: a signed-in stranger gets 403; the responder group sees it
    make_confidential(router.db_path, 1)
    status, _, refused = get(f"{router.url}/ui/incidents/1", {"X-Forwarded-User": STRANGER})
    assert status == 403 and "HighLatency" not in refused
    status, _, listed = get(f"{router.url}/ui/?status=all", {"X-Forwarded-User": STRANGER})
    assert status == 200 and "INC-1" in listed and "HighLatency" not in listed
    status, _, _ = get(f"{router.url}/ui/incidents/1", {"X-Forwarded-User": RESPONDER})
    assert status == 200
    metrics = router.metrics()
    assert metrics[("router_console_requests_total", (("code", "403"), ("page", "incident")))] == 1
    assert "HighLatency" not in json.dumps([line for line in router.output().splitlines()
                                            if "router.adapters.web" in line])  # fmt: skip
