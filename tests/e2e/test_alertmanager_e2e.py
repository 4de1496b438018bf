"""Real Alertmanager -> real router process -> SQLite file.

Fires an alert with ``amtool``, lets Alertmanager deliver it over its webhook
receiver (bearer token, ``send_resolved``), then resolves it and checks that the
router updated the same row instead of adding one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    AlertmanagerProcess,
    RouterProcess,
    StartAlertmanager,
    http_get,
    wait_until,
)

pytestmark = pytest.mark.e2e

ALERT_LABELS = ("alertname=E2EHighLatency", "severity=critical", "instance=api-1")
DELIVERY_TIMEOUT = 30.0


def _rfc3339_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _diagnostics(router: RouterProcess, am: AlertmanagerProcess) -> str:
    return f"router output:\n{router.output()}\nalertmanager output:\n{am.output()}"


def _webhooks_delivered(am: AlertmanagerProcess) -> float:
    """Webhook notifications Alertmanager delivered (its own count, less failures)."""
    status, text = http_get(f"{am.url}/metrics")
    assert status == 200, text
    total = {"alertmanager_notifications_total": 0.0,
             "alertmanager_notifications_failed_total": 0.0}  # fmt: skip
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in total and sample.labels.get("integration") == "webhook":
                total[sample.name] += sample.value
    return (
        total["alertmanager_notifications_total"] - total["alertmanager_notifications_failed_total"]
    )


def test_alert_fires_and_resolves_through_real_alertmanager(
    alertmanager: AlertmanagerProcess, router: RouterProcess
) -> None:
    alertmanager.amtool_run("alert", "add", *ALERT_LABELS, "--annotation=summary=p99 above 1s")

    where = "source = 'alertmanager' AND json_extract(labels, '$.alertname') = 'E2EHighLatency'"
    try:
        rows = wait_until(lambda: router.rows(where), DELIVERY_TIMEOUT, "the firing alert")
        wait_until(
            lambda: (
                router.metric(
                    "router_alerts_received_total", source="alertmanager", status="firing"
                )
                >= 1
            ),
            DELIVERY_TIMEOUT,
            "router_alerts_received_total{status=firing} >= 1",
        )
    except BaseException:
        print(_diagnostics(router, alertmanager))
        raise

    assert len(rows) == 1, rows
    firing = rows[0]
    assert firing["status"] == "firing"
    assert firing["ends_at"] is None
    assert firing["group_key"] == '{}:{alertname="E2EHighLatency"}'
    assert firing["labels"] == {
        "alertname": "E2EHighLatency",
        "severity": "critical",
        "instance": "api-1",
    }
    assert firing["annotations"] == {"summary": "p99 above 1s"}
    assert len(firing["fingerprint"]) == 16  # Alertmanager's hex label-set hash
    assert firing["starts_at"]

    # Resolve: re-post the same label set with an end time that has passed.
    alertmanager.amtool_run(
        "alert",
        "add",
        *ALERT_LABELS,
        "--annotation=summary=p99 above 1s",
        f"--end={_rfc3339_now()}",
    )

    same = "source = 'alertmanager' AND fingerprint = ?"
    try:
        wait_until(
            lambda: any(
                r["status"] == "resolved" for r in router.rows(same, (firing["fingerprint"],))
            ),
            DELIVERY_TIMEOUT,
            "the alert to be resolved in the store",
        )
    except BaseException:
        print(_diagnostics(router, alertmanager))
        raise

    # Every notification Alertmanager delivered so far (the firing one, the resolved
    # one, any resend of the group) has been applied, and made no second row.
    wait_until(
        lambda: (
            (sent := _webhooks_delivered(alertmanager)) >= 2
            and router.metric("router_inbox_processed_total") >= sent
        ),
        DELIVERY_TIMEOUT,
        "every delivered notification to be applied",
    )
    rows = router.rows(same, (firing["fingerprint"],))
    assert len(rows) == 1, f"one row per alert, got {rows}"
    resolved = rows[0]
    assert resolved["id"] == firing["id"]
    assert resolved["status"] == "resolved"
    assert resolved["ends_at"] is not None
    assert resolved["starts_at"] == firing["starts_at"]
    assert resolved["ends_at"] >= resolved["starts_at"]
    assert len(router.rows()) == 1
    assert (
        router.metric("router_alerts_received_total", source="alertmanager", status="resolved") >= 1
    )
    assert (
        router.metric("router_alerts_recorded_total", source="alertmanager", change="resolved") == 1
    )
    assert router.metric("router_alerts_recorded_total", source="alertmanager", change="new") == 1


def test_wrong_token_is_refused_and_nothing_is_stored(
    start_alertmanager: StartAlertmanager, router: RouterProcess
) -> None:
    am = start_alertmanager(router.webhook_url, "not-the-router-token")
    am.amtool_run("alert", "add", *ALERT_LABELS, "--annotation=summary=p99 above 1s")

    try:
        wait_until(
            lambda: (
                router.metric(
                    "router_http_rejections_total",
                    endpoint="/webhooks/alertmanager",
                    reason="unauthorized",
                )
                >= 1
            ),
            DELIVERY_TIMEOUT,
            "an unauthorized rejection",
        )
    except BaseException:
        print(_diagnostics(router, am))
        raise

    assert router.rows() == []
    assert (
        router.metric("router_alerts_received_total", source="alertmanager", status="firing") == 0
    )
    assert (
        router.metric("router_http_requests_total", endpoint="/webhooks/alertmanager", code="401")
        >= 1
    )
