"""Every console page rendered from fixture view models: what a responder reads on it."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import unescape
from importlib import resources
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from router.adapters.web.views import (
    AlertNameStats,
    IncidentQuery,
    PageRow,
    Person,
    QualityWindow,
    QueryError,
    group_pages,
    mark_standouts,
)
from router.app.clock import FrozenClock
from router.core.incident import IncidentStatus
from router.core.page import PageStatus
from router.core.severity import Severity
from tests.console_app import client_for, mount, proxy_config
from tests.fakes.console_source import MemorySource, sample

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
JANE = {"X-Forwarded-User": "U0JANE0001", "X-Forwarded-Email": "jane@example.com"}


def _text(html: str) -> str:
    """The page as read: tags dropped, entities decoded, white space collapsed."""
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()
    return re.sub(r" ([,;.])", r"\1", text)


async def _get(source: MemorySource, path: str, **kwargs: Any) -> tuple[int, str]:
    app = mount(proxy_config(), source, FrozenClock(NOW), **kwargs)
    async with client_for(app) as client:
        response = await client.get(path, headers=JANE)
        return response.status, await response.text()


# ---------------------------------------------------------------------- incidents


async def test_incident_list_shows_open_incidents_with_their_facts_and_links() -> None:
    status, html = await _get(sample(NOW), "/ui/")
    assert status == 200
    text = _text(html)
    assert "INC-42 Checkout API p99 latency over 2 s" in text
    assert "critical mitigated Jane Doe" in text
    assert "outage" in text and "customers" in text
    assert "5 h 40 min ago" in text  # declared
    assert 'href="https://github.com/acme/incidents/issues/42"' in html
    assert "app_redirect?channel=C0INC00042&amp;team=T0FAKETEAM" in html
    assert "Orders database replica lag" not in text  # resolved: not open
    assert "CDN certificate expired" not in text


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("?status=all&age=all", ["INC-42", "INC-41", "INC-40", "INC-12"], []),
        ("?status=resolved", ["INC-41"], ["INC-42", "INC-40", "INC-12"]),
        ("?status=all&severity=critical", ["INC-42"], ["INC-41", "INC-40"]),
        ("?status=all&commander=U0JOHN0002", ["INC-41"], ["INC-42", "INC-12"]),
        ("?status=all&age=24h", ["INC-42", "INC-40"], ["INC-41", "INC-12"]),
        ("?status=closed&age=90d", ["INC-12"], ["INC-42"]),
    ],
)
async def test_incident_list_filters(query: str, shown: list[str], hidden: list[str]) -> None:
    status, html = await _get(sample(NOW), "/ui/" + query)
    assert status == 200
    for ref in shown:
        assert ref in html
    for ref in hidden:
        assert ref not in html


@pytest.mark.parametrize(
    ("query", "field"),
    [("?severity=sev1", "severity"), ("?status=open-ish", "status"), ("?age=2y", "age"),
     ("?commander=<b>", "commander")],
)  # fmt: skip
async def test_a_filter_that_cannot_be_read_is_a_400_naming_it(query: str, field: str) -> None:
    status, html = await _get(sample(NOW), "/ui/" + query)
    assert status == 400
    assert f"The filter “{field}” cannot be read" in _text(html)
    assert "<b>" not in html


async def test_incident_list_selects_the_current_filters() -> None:
    _, html = await _get(sample(NOW), "/ui/?status=all&severity=high&age=90d")
    assert '<option value="all" selected>' in html
    assert '<option value="high" selected>' in html
    assert '<option value="90d" selected>' in html


def test_incident_query_from_the_address() -> None:
    q = IncidentQuery.from_query({"status": "mitigated", "age": "7d"}, NOW)
    assert q.status is IncidentStatus.MITIGATED
    assert q.since == NOW - timedelta(days=7)
    assert IncidentQuery.from_query({}, NOW).status == "open"
    assert IncidentQuery.from_query({"age": "all"}, NOW).since is None
    with pytest.raises(QueryError) as caught:
        IncidentQuery.from_query({"severity": "p1"}, NOW)
    assert caught.value.field == "severity"
    assert caught.value.message == "must be one of critical, high, medium, low"


async def test_no_incidents_says_so() -> None:
    status, html = await _get(MemorySource(), "/ui/")
    assert status == 200
    assert "No incidents match these filters." in html


# -------------------------------------------------------------------- one incident


async def test_incident_page_shows_everything_a_responder_needs() -> None:
    source = sample(NOW)
    status, html = await _get(source, "/ui/incidents/42")
    assert status == 200
    text = _text(html)
    detail = source.details[42]
    assert "INC-42 Checkout API p99 latency over 2 s" in text
    assert "critical mitigated outage customers post-mortem owed" in text
    assert "Commander Jane Doe" in text and "Comms lead Ravi Patel" in text
    assert "Declared 2026-03-02 09:20 UTC by Jane Doe" in text
    assert "Mitigated 2026-03-02 10:25 UTC" in text
    assert "Vendors contacted cloudcache" in text
    # severity with the clause and its evidence
    assert "Policy clause: “extreme or complete production outage”" in text
    assert 'label severity = "critical"' in text and 'label outage = "complete"' in text
    # every timeline entry, in order, with who and when
    assert "Timeline 9 entries" in text
    timeline = text[text.index("Timeline 9 entries") : text.index("Alerts 1 firing")]
    positions = [timeline.index(f"{entry.at:%Y-%m-%d %H:%M} UTC") for entry in detail.timeline]
    assert all(entry.text in timeline for entry in detail.timeline)
    assert positions == sorted(positions)
    assert "2026-03-02 09:42 UTC Ravi Patel status update: failing over the payments cache" in text
    assert "2026-03-02 09:14 UTC the router page escalated to eng-secondary" in text
    # alerts and links
    assert "Alerts 1 firing, 2 resolved" in text
    assert "HighLatency service=checkout instance=api-1 firing" in text
    assert 'href="https://runbooks.example.com/latency"' in html
    for link in detail.links.present():
        assert f">{link.label}</a>" in html
    # the post-mortem draft as generated, escaped text in a <pre>
    assert "Post-mortem draft" in text
    assert "## New risks for the risk register" in html


async def test_incident_page_without_alerts_timeline_or_links() -> None:
    source = sample(NOW)
    source.details[40] = replace(source.details[40], timeline=(), access=replace(
        source.details[40].access, confidential=False))  # fmt: skip
    status, html = await _get(source, "/ui/incidents/40")
    assert status == 200
    text = _text(html)
    assert "Nothing recorded yet." in text
    assert "Declared by a person; no alerts attached." in text
    assert "Post-mortem draft" not in text


async def test_text_from_alerts_and_people_is_escaped() -> None:
    source = sample(NOW)
    hostile = "<script>alert(1)</script>"
    source.details[42] = replace(
        source.details[42],
        title=f"Checkout {hostile}",
        commander=Person("U0JANE0001", f"Jane {hostile}"),
        evidence=(f'label x = "{hostile}"',),
    )
    for path in ("/ui/", "/ui/incidents/42"):
        _, html = await _get(source, path)
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_unknown_incident_is_404() -> None:
    status, html = await _get(sample(NOW), "/ui/incidents/999")
    assert status == 404
    assert "No incident INC-999" in html


# -------------------------------------------------------------------------- pages


async def test_pages_lists_every_open_page_with_storms_folded_under_their_digest() -> None:
    source = sample(NOW)
    status, html = await _get(source, "/ui/pages")
    assert status == 200
    text = _text(html)
    assert "Open pages 7 waiting for a decision" in text
    for row in source.page_rows:
        assert row.title in text
    assert (
        "KafkaConsumerLag payments alertmanager high escalated (1) 4 firing John Roe, Ravi Patel"
        in text
    )
    assert (
        "CertificateExpiringSoon api.example.com pagerduty low all alerts resolved 0 firing of 1"
        in text
    )
    assert "Storm digest for John Roe 4 pages folded into one DM" in text
    digest = text[text.index("Storm digest") :]
    assert "NodeNotReady node-7" in digest and "DiskWillFillIn4Hours" not in digest
    # a deep link that opens the DM in Slack, for every page
    assert html.count("app_redirect?channel=D0JOHN0002") >= len(source.page_rows)


async def test_no_pages_says_so() -> None:
    _, html = await _get(MemorySource(), "/ui/pages")
    assert "No page is waiting for a decision." in html


def test_group_pages_keeps_the_order_and_folds_by_digest() -> None:
    def row(key: str, digest: str | None) -> PageRow:
        return PageRow(key, key, "alertmanager", PageStatus.OPEN, NOW, Severity.LOW, "c",
                       digest=digest)  # fmt: skip

    single, digests = group_pages([row("a", None), row("b", "d1"), row("c", "d2"), row("d", "d1")])
    assert [r.key for r in single] == ["a"]
    assert [(d.digest, [p.key for p in d.pages]) for d in digests] == [
        ("d1", ["b", "d"]),
        ("d2", ["c"]),
    ]


# ------------------------------------------------------------------ alert quality


async def test_alert_quality_names_the_noisiest_alerts_and_draws_the_charts() -> None:
    status, html = await _get(sample(NOW), "/ui/quality")
    assert status == 200
    text = _text(html)
    assert "83 pages 4 incidents declared 39 dismissed" in text
    # sorted by pages, the top pagers and most dismissed flagged
    names = (
        "NodeNotReady",
        "HighLatency",
        "ErrorRateHigh",
        "DiskWillFillIn4Hours",
        "ReplicationLag",
    )
    order = [name for name in names if name in text]
    assert len(order) == 5 and sorted(order, key=text.index) == order
    assert "NodeNotReady pages most dismissed most 22 1 19 (86%)" in text
    assert "spot instance reclaimed ×17; planned maintenance ×2" in text
    assert "ErrorRateHigh pages most 12 10 1 (8%) load test ×1 3 min p90 10 min" in text
    assert "DiskWillFillIn4Hours dismissed most 9 0 8 (89%)" in text
    assert html.count('<svg class="chart"') == 3
    assert "Pages and incidents per day" in text
    assert "Time to decide a page" in text and "Time to mitigate and resolve" in text


async def test_alert_quality_window() -> None:
    source = sample(NOW)
    _, week = await _get(source, "/ui/quality?days=7")
    _, month = await _get(source, "/ui/quality?days=30")
    # one <title> per bar: a week has fewer
    assert 0 < week.count("· pages:") < month.count("· pages:")
    assert '<a href="/ui/quality?days=7" aria-current="page">' in week
    status, bad = await _get(source, "/ui/quality?days=365")
    assert status == 400 and "must be one of 7, 30, 90" in bad


def test_mark_standouts() -> None:
    rows = [
        AlertNameStats("a", 10, 9, 1),
        AlertNameStats("b", 30, 0, 30),
        AlertNameStats("c", 5, 0, 5),
        AlertNameStats("d", 0, 0, 0),
        AlertNameStats("e", 10, 2, 8),
    ]
    marked = mark_standouts(rows, top=2)
    assert [r.alert_name for r in marked] == ["b", "a", "e", "c", "d"]
    assert {r.alert_name for r in marked if r.top_pager} == {"b", "a"}
    assert {r.alert_name for r in marked if r.top_dismissed} == {"b", "e"}
    assert marked[2].undecided == 0 and marked[1].undecided == 0
    assert AlertNameStats("x", 4, 1, 1).undecided == 2


def test_quality_window_from_the_address() -> None:
    w = QualityWindow.from_query({"days": "7"}, NOW)
    assert (w.days, w.since, w.until) == (7, NOW - timedelta(days=7), NOW)
    for bad in ("-1", "5", "²", "٧", "07", "7 "):  # "²" and "٧" pass isdigit(), not int()
        with pytest.raises(QueryError):
            QualityWindow.from_query({"days": bad}, NOW)


# ------------------------------------------------------------ layout, assets, metrics


async def test_every_page_has_the_layout_and_no_script() -> None:
    for path in ("/ui/", "/ui/incidents/42", "/ui/pages", "/ui/quality", "/ui/incidents/9"):
        _, html = await _get(sample(NOW), path)
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert re.search(
            r'<link rel="stylesheet" href="/ui/static/console.css\?v=[0-9a-f]{12}">', html
        )
        assert "<script" not in html
        assert 'action="/ui/sign-out"' in html and 'name="csrf"' in html
        assert '<span class="me" title="U0JANE0001">U0JANE0001</span>' in html


async def test_the_stylesheet_is_served_by_the_console() -> None:
    app = mount(proxy_config(), MemorySource(), FrozenClock(NOW))
    async with client_for(app) as client:
        plain = await client.get("/ui/static/console.css")  # no sign-in needed
        assert plain.status == 200
        assert plain.headers["Content-Type"] == "text/css; charset=utf-8"
        assert plain.headers["Cache-Control"] == "no-cache"
        css = await plain.text()
        assert "@media (max-width: 720px)" in css and "http" not in css.split("*/", 1)[1]
        version = plain.headers["ETag"].strip('"')
        pinned = await client.get(f"/ui/static/console.css?v={version}")
        assert "immutable" in pinned.headers["Cache-Control"]


def test_every_template_in_the_package_is_used() -> None:
    shipped = {
        p.name for p in resources.files("router.adapters.web").joinpath("templates").iterdir()
    }
    used = {"base.html", "macros.html", "error.html", "sign_in.html", "incidents.html",
            "incident.html", "pages.html", "quality.html"}  # fmt: skip
    assert shipped == used  # a new template needs a test above


async def test_console_requests_are_counted_by_page_and_code() -> None:
    registry = CollectorRegistry()
    app = mount(proxy_config(), sample(NOW), FrozenClock(NOW), registry=registry)
    async with client_for(app) as client:
        for path in ("/ui/", "/ui/", "/ui/incidents/42", "/ui/incidents/43", "/ui/incidents/40",
                     "/ui/nowhere", "/ui/quality?days=2"):  # fmt: skip
            await client.get(path, headers=JANE)
        await client.get("/ui/", allow_redirects=False)  # not signed in

    def count(page: str, code: str) -> float:
        value = registry.get_sample_value(
            "router_console_requests_total", {"page": page, "code": code}
        )
        return value or 0.0

    assert count("incidents", "200") == 2
    assert count("incidents", "401") == 1
    assert count("incident", "200") == 1
    assert count("incident", "404") == 1
    assert count("incident", "403") == 1
    assert count("unmatched", "404") == 1
    assert count("quality", "400") == 1
    labels = {s.labels.get("page") for m in registry.collect() for s in m.samples}
    assert not any(label and any(ch.isdigit() for ch in label) for label in labels)
    assert (
        registry.get_sample_value(
            "router_console_request_duration_seconds_count", {"page": "incident"}
        )
        == 3
    )
