"""Real Prometheus scraping a real router process.

Starts the router, points the real ``prometheus`` server at its ``/metrics`` (job
``incident-router``, scraped every second), posts Alertmanager-shaped webhooks (one
with a wrong token) and reads the counters back through Prometheus' own HTTP API: the
metric names, labels and exposition format are what a real scrape sees, not what the
Python client library renders.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import (
    PrometheusProcess,
    RouterProcess,
    StartPrometheus,
    alertmanager_webhook,
    firing_alert,
    post_webhook,
    wait_until,
)

pytestmark = pytest.mark.e2e

JOB = "incident-router"
SCRAPE_TIMEOUT = 30.0

RECEIVED = 'router_alerts_received_total{source="alertmanager",status="firing"}'
UNAUTHORIZED = 'router_http_rejections_total{reason="unauthorized"}'
UP = f'up{{job="{JOB}"}}'


def alertmanager_body(name: str, fingerprints: list[str]) -> bytes:
    """An Alertmanager webhook (version 4) with one firing alert per fingerprint."""
    alerts = [
        firing_alert(
            {"alertname": name, "severity": "critical", "instance": f"api-{i}"}, fingerprint
        )
        for i, fingerprint in enumerate(fingerprints)
    ]
    return json.dumps(alertmanager_webhook(name, alerts)).encode()


def diagnostics(router: RouterProcess, prometheus: PrometheusProcess) -> str:
    try:
        values: Any = {promql: prometheus.value(promql) for promql in (RECEIVED, UNAUTHORIZED, UP)}
        targets: Any = prometheus.targets()
    except BaseException as exc:  # pytest.fail raises outside the Exception hierarchy
        values = targets = f"(unavailable: {exc})"
    return (
        f"prometheus values now: {values!r}\n"
        f"prometheus targets: {targets!r}\n"
        f"prometheus output:\n{prometheus.output()}\n"
        f"router output:\n{router.output()}"
    )


def test_prometheus_scrapes_the_router_counters(
    router: RouterProcess, start_prometheus: StartPrometheus
) -> None:
    target = urlsplit(router.url).netloc  # 127.0.0.1:<port>
    prometheus = start_prometheus([target], job=JOB, scrape_interval="1s")

    accepted = {
        "E2EPromCheckoutErrors": ["a1b2c3d4e5f60001", "a1b2c3d4e5f60002"],
        "E2EPromDiskFull": ["a1b2c3d4e5f60003"],
    }
    for name, fingerprints in accepted.items():
        status, _ = post_webhook(router, alertmanager_body(name, fingerprints), router.token)
        assert status == 200, f"{name}: {status}\n{router.output()}"
    refused = alertmanager_body("E2EPromRefused", ["a1b2c3d4e5f60004"])
    assert post_webhook(router, refused, "not-the-router-token")[0] == 401
    sent = sum(len(fingerprints) for fingerprints in accepted.values())

    # The router itself agrees before Prometheus is asked.
    own = router.metric("router_alerts_received_total", source="alertmanager", status="firing")
    assert own == sent, router.output()

    expected = {RECEIVED: float(sent), UNAUTHORIZED: 1.0, UP: 1.0}

    def scraped() -> dict[str, float | None] | None:
        values = {promql: prometheus.value(promql) for promql in expected}
        return values if values == expected else None

    def healthy() -> list[dict[str, Any]] | None:
        targets = prometheus.targets(JOB)
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    try:
        wait_until(scraped, SCRAPE_TIMEOUT, f"Prometheus to report {expected}", interval=0.5)
        targets = wait_until(healthy, SCRAPE_TIMEOUT, f"the {JOB} target to be up")
    except BaseException:
        print(diagnostics(router, prometheus))
        raise

    assert len(targets) == 1, targets
    (scrape,) = targets
    assert scrape["scrapeUrl"] == f"{router.url}/metrics"
    assert scrape["labels"]["job"] == JOB
    assert scrape["labels"]["instance"] == target
    assert scrape["lastError"] == ""
    assert scrape["scrapePool"] == JOB

    # The series carry the router's own labels plus the scrape's job and instance.
    (received,) = prometheus.query(RECEIVED)
    assert received["metric"] == {
        "__name__": "router_alerts_received_total",
        "source": "alertmanager",
        "status": "firing",
        "job": JOB,
        "instance": target,
    }
    (rejection,) = prometheus.query(UNAUTHORIZED)
    assert rejection["metric"]["endpoint"] == "/webhooks/alertmanager"
    # The refused alert was never counted as received.
    assert prometheus.value(RECEIVED) == sent
