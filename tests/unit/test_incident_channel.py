"""What an incident's own channel shows: topic, declaration in #incident-response, bookmarks."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from router.core.alerts import Alert, AlertStatus, Link, Source
from router.core.incident import Incident, IncidentStatus
from router.core.incident_channel import (
    TOPIC_MAX,
    Bookmark,
    bookmarks,
    declaration,
    topic,
)
from router.core.severity import Severity, Suggestion

AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
IC = "U0JANE0001"
SECRET_TITLE = "Customer card numbers visible in the export"


def incident(
    title: str = "Checkout returns 500s",
    severity: Severity = Severity.HIGH,
    status: IncidentStatus = IncidentStatus.ACTIVE,
    **changes: object,
) -> Incident:
    suggestion = Suggestion(severity=severity, clause="partial outage of some production")
    made = Incident(
        number=12,
        title=title,
        commander=IC,
        severity=severity,
        severity_reason=suggestion.clause,
        suggestion=suggestion,
        declared_at=AT,
        declared_by=IC,
        announce_job="incident:12:announce",
        status=status,
    )
    return made.model_copy(update=changes)


def alert(*links: Link, name: str = "HighLatency") -> Alert:
    return Alert(
        source=Source.ALERTMANAGER,
        group_key='{}:{alertname="HighLatency"}',
        fingerprint=name,
        status=AlertStatus.FIRING,
        starts_at=AT,
        labels={"alertname": name},
        links=links,
    )


# ------------------------------------------------------------------ topic


def test_topic_shows_id_severity_commander_status_and_title() -> None:
    text = topic(incident())
    assert text == "INC-12 · high · IC <@U0JANE0001> · active · Checkout returns 500s"


def test_topic_follows_changes() -> None:
    changed = incident(severity=Severity.CRITICAL, status=IncidentStatus.MITIGATED)
    changed = changed.model_copy(update={"commander": "U0JOHN0002"})
    assert (
        topic(changed) == "INC-12 · critical · IC <@U0JOHN0002> · mitigated · Checkout returns 500s"
    )


def test_topic_says_when_a_post_mortem_is_owed() -> None:
    owed = incident(status=IncidentStatus.RESOLVED, postmortem_owed=True)
    assert "resolved, post-mortem owed" in topic(owed)


def test_topic_can_name_the_commander_and_hide_the_title() -> None:
    text = topic(incident(title=SECRET_TITLE), commander_label="@jane", show_title=False)
    assert text == "INC-12 · high · IC @jane · active"
    assert "card" not in text


def test_topic_fits_250_without_losing_the_facts() -> None:
    text = topic(incident(title="a very long title " * 40))
    assert len(text) <= TOPIC_MAX == 250
    assert text.startswith("INC-12 · high · IC <@U0JANE0001> · active · a very long title")
    assert text.endswith("…")


def test_topic_fits_250_even_with_an_absurd_commander_label() -> None:
    text = topic(incident(), commander_label="x" * 400)
    assert len(text) <= TOPIC_MAX
    assert text.startswith("INC-12 · high · IC x")


# ------------------------------------------------------------------ declaration


def test_declaration_links_the_channel_and_names_the_facts() -> None:
    text, blocks = declaration(incident(), channel_id="C0INC12", confidential=False)
    shown = text + json.dumps(blocks)
    assert "INC-12" in text and "Checkout returns 500s" in text
    assert "<@U0JANE0001>" in shown
    assert "high" in shown
    assert "<#C0INC12>" in shown


def test_a_confidential_declaration_shows_only_id_commander_and_severity() -> None:
    secret = incident(title=SECRET_TITLE, severity=Severity.CRITICAL)
    text, blocks = declaration(secret, channel_id="C0INC12", confidential=True)
    shown = text + json.dumps(blocks)
    assert "INC-12" in text
    assert "<@U0JANE0001>" in shown
    assert "critical" in shown
    assert "<#C0INC12>" in shown  # a private channel's link names nothing to non-members
    for word in ("Customer", "card", "export", "partial outage"):
        assert word not in shown, word
    assert "confidential" in shown.lower()


def test_declaration_without_a_channel_yet() -> None:
    # the channel job may not have run when the declaration is posted
    text, blocks = declaration(incident(), channel_id=None, confidential=True)
    assert "<#" not in text + json.dumps(blocks)


def test_declaration_blocks_are_within_slacks_limits() -> None:
    _, blocks = declaration(incident(title="x" * 400), channel_id="C0INC12", confidential=False)
    assert len(blocks) <= 50
    header = [b for b in blocks if b["type"] == "header"]
    assert all(len(b["text"]["text"]) <= 150 for b in header)


# ------------------------------------------------------------------ bookmarks


def test_bookmarks_tracking_issue_runbooks_and_alerts() -> None:
    alerts = [
        alert(Link(href="http://prom:9090/graph?g0.expr=up", text="Source"),
              Link(href="https://wiki.example.com/runbooks/latency", text="Runbook")),
        alert(Link(href="https://wiki.example.com/runbooks/latency", text="Runbook"),
              Link(href="https://wiki.example.com/runbooks/db", text="Runbook"), name="DB"),
    ]  # fmt: skip
    made = bookmarks(tracking_issue="https://github.com/acme/ops/issues/7", alerts=alerts)
    assert made == [
        Bookmark("Tracking issue", "https://github.com/acme/ops/issues/7"),
        Bookmark("Runbook", "https://wiki.example.com/runbooks/latency"),
        Bookmark("Runbook 2", "https://wiki.example.com/runbooks/db"),
        Bookmark("Alerts", "http://prom:9090/graph?g0.expr=up"),
    ]


def test_bookmarks_prefer_a_given_alerts_link_and_skip_what_is_missing() -> None:
    made = bookmarks(
        tracking_issue=None,
        alerts=[alert(Link(href="http://prom:9090/graph", text="Source"))],
        alerts_url="http://am:9093/#/alerts?filter=%7Balertname%3D%22X%22%7D",
    )
    assert made == [Bookmark("Alerts", "http://am:9093/#/alerts?filter=%7Balertname%3D%22X%22%7D")]
    assert bookmarks(tracking_issue=None, alerts=[]) == []


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "ftp://x/y", "wiki/runbook", "https://x/" + "a" * 2048]
)
def test_bookmarks_keep_only_links_slack_takes(link: str) -> None:
    assert bookmarks(tracking_issue=link, alerts=[]) == []


def test_pagerduty_alerts_link_is_the_alerts_bookmark() -> None:
    made = bookmarks(
        tracking_issue=None,
        alerts=[alert(Link(href="https://acme.pagerduty.com/incidents/PGR0VU2", text="PagerDuty"))],
    )
    assert made == [Bookmark("Alerts", "https://acme.pagerduty.com/incidents/PGR0VU2")]


def test_at_most_three_runbooks() -> None:
    links = [Link(href=f"https://wiki/r{i}", text="Runbook") for i in range(6)]
    made = bookmarks(tracking_issue=None, alerts=[alert(*links)])
    assert [b.title for b in made] == ["Runbook", "Runbook 2", "Runbook 3"]
