"""HTTP behaviour of the intake endpoints: accepted means durable, refusals are JSON."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from router.adapters.http.context import SERVICES
from router.adapters.pagerduty.webhook import sign
from router.adapters.store import Store, StoreError
from router.adapters.store.sql import SqlTx
from router.config import RouterConfig, Secrets, load_config
from router.metrics import Metrics
from tests.conftest import AM_TOKEN, PD_SECRET, T0, am_alert, am_payload, pd_event
from tests.harness import inbox_drained

AUTH = {"Authorization": f"Bearer {AM_TOKEN}"}
JSON = {"Content-Type": "application/json"}
AM = "/webhooks/alertmanager"
PD = "/webhooks/pagerduty"


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def store_of(client: TestClient[Any, Any]) -> Any:
    return client.server.app[SERVICES].store


async def count_alerts(client: TestClient[Any, Any]) -> int:
    """Alerts stored once every accepted delivery was applied."""
    await inbox_drained(store_of(client))
    return int(await store_of(client).run(lambda tx: tx.count_alerts()))


async def test_accepts_and_stores(client: TestClient[Any, Any], metrics: Metrics) -> None:
    response = await client.post(AM, json=am_payload(), headers=AUTH)
    assert response.status == 200
    # Durable when answered; the inbox processor applies it (router.app.inbox).
    assert await response.json() == {"status": "accepted", "alerts": 1}
    assert await count_alerts(client) == 1
    assert (
        metric(metrics, "router_alerts_received_total", source="alertmanager", status="firing") == 1
    )
    assert metric(metrics, "router_http_requests_total", endpoint=AM, code="200") == 1


async def test_same_webhook_twice_stores_each_alert_once(client: TestClient[Any, Any]) -> None:
    payload = am_payload(alerts=[am_alert("a"), am_alert("b")])
    for _ in range(3):
        assert (await client.post(AM, json=payload, headers=AUTH)).status == 200
    assert await count_alerts(client) == 2


async def test_resolution_updates_the_firing_record(
    client: TestClient[Any, Any], metrics: Metrics
) -> None:
    await client.post(AM, json=am_payload(alerts=[am_alert("a")]), headers=AUTH)
    response = await client.post(
        AM, json=am_payload(status="resolved", alerts=[am_alert("a", "resolved")]), headers=AUTH
    )
    assert response.status == 200
    store = store_of(client)
    await inbox_drained(store)
    assert metric(metrics, "router_alerts_recorded_total", source="alertmanager",
                  change="resolved") == 1  # fmt: skip
    [alert] = await store.run(lambda tx: tx.alerts_in_group(am_payload()["groupKey"]))
    assert alert.status.value == "resolved"
    assert alert.ends_at is not None


@pytest.mark.rule("paging.vulnerability-not-paged")
async def test_vulnerability_not_exploited_is_recorded_not_paged(
    client: TestClient[Any, Any], metrics: Metrics
) -> None:
    vuln = am_alert("v", category="vulnerability")
    exploited = am_alert("x", category="vulnerability", exploited="true")
    response = await client.post(AM, json=am_payload(alerts=[vuln, exploited]), headers=AUTH)
    assert response.status == 200
    assert await count_alerts(client) == 2
    assert metric(metrics, "router_alerts_not_paged_total", source="alertmanager") == 1


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": "Bearer wrong"}, "wrong credentials"),
        ({"Authorization": f"Basic {AM_TOKEN}"}, "wrong credentials"),
        ({"Authorization": AM_TOKEN}, "wrong credentials"),
    ],
)
async def test_wrong_or_missing_token_is_a_json_401(
    client: TestClient[Any, Any], metrics: Metrics, headers: dict[str, str], message: str
) -> None:
    response = await client.post(AM, json=am_payload(), headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert await response.json() == {"error": "unauthorized", "message": message}
    assert await count_alerts(client) == 0
    assert metric(metrics, "router_http_rejections_total", endpoint=AM, reason="unauthorized") == 1


async def test_basic_auth_mode(make_client: Any, tmp_path: Any, secrets: Secrets) -> None:
    config = load_config(
        None,
        {"ROUTER__STORE__URL": f"sqlite:///{tmp_path}/b.db", "ROUTER__ALERTMANAGER__AUTH": "basic"},
    )
    client = await make_client(config, secrets)
    good = base64.b64encode(f"alertmanager:{AM_TOKEN}".encode()).decode()
    bad = base64.b64encode(f"someone:{AM_TOKEN}".encode()).decode()
    ok = await client.post(AM, json=am_payload(), headers={"Authorization": f"Basic {good}"})
    refused = await client.post(AM, json=am_payload(), headers={"Authorization": f"Basic {bad}"})
    assert (ok.status, refused.status) == (200, 401)


async def test_wrong_content_type_is_415(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        AM, data=json.dumps(am_payload()), headers=AUTH | {"Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert (await response.json())["error"] == "unsupported_media_type"


async def test_malformed_json_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        AM, data=b'{"version": "4",', headers=AUTH | {"Content-Type": "application/json"}
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "malformed_json"
    assert "line 1" in body["message"]


async def test_schema_error_is_422_naming_the_field(client: TestClient[Any, Any]) -> None:
    payload = am_payload(alerts=[{"status": "firing", "startsAt": "2024-05-01T10:00:00Z"}])
    response = await client.post(AM, json=payload, headers=AUTH)
    assert response.status == 422
    assert await response.json() == {
        "error": "invalid_payload", "message": "Field required", "field": "alerts.0.labels",
    }  # fmt: skip


async def test_body_over_the_limit_is_413(
    make_client: Any, tmp_path: Any, secrets: Secrets
) -> None:
    config = load_config(
        None,
        {
            "ROUTER__STORE__URL": f"sqlite:///{tmp_path}/l.db",
            "ROUTER__SERVER__MAX_BODY_BYTES": "2048",
        },
    )
    client = await make_client(config, secrets)
    payload = am_payload(alerts=[am_alert(f"f{i}") for i in range(40)])
    response = await client.post(AM, json=payload, headers=AUTH)
    assert response.status == 413
    assert (await response.json())["error"] == "body_too_large"


async def test_unknown_path_and_method_are_json(client: TestClient[Any, Any]) -> None:
    missing = await client.get("/nope")
    wrong_method = await client.get(AM)
    assert (missing.status, (await missing.json())["error"]) == (404, "not_found")
    assert (wrong_method.status, (await wrong_method.json())["error"]) == (
        405,
        "method_not_allowed",
    )


class BrokenStore:
    """A store whose commits fail, as when the disk is full or the database is down."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def run(self, unit: Any) -> Any:
        raise StoreError("disk I/O error")

    async def ping(self) -> None:
        raise StoreError("disk I/O error")


async def test_store_failure_is_503_so_senders_retry(
    make_client: Any, config: RouterConfig, secrets: Secrets, store: Store
) -> None:
    from router.adapters.store import open_store

    client = await make_client(config, secrets, store=BrokenStore(open_store("sqlite:///:memory:")))
    response = await client.post(AM, json=am_payload(), headers=AUTH)
    assert response.status == 503
    assert (await response.json())["error"] == "store_unavailable"
    ready = await client.get("/readyz")
    assert ready.status == 503


async def test_health_and_metrics(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert "router_http_requests_total" in await response.text()


async def test_info_logs_carry_ids_not_alert_text_or_secrets(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # even the debug lines carry no alert text
    await client.post(AM, json=am_payload(), headers=AUTH)
    await client.post(AM, json=am_payload(), headers={"Authorization": "Bearer leaked?"})
    await inbox_drained(store_of(client))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "intake source=alertmanager" in text
    for secret_or_text in ("p99 > 1s", "HighLatency", "api-1", AM_TOKEN, "leaked?"):
        assert secret_or_text not in text


# -- PagerDuty ---------------------------------------------------------------


def pd_headers(body: bytes, webhook_id: str = "wh-1") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": "v1=0000," + sign(PD_SECRET.encode(), body),
        "X-Webhook-Id": webhook_id,
    }


async def test_pagerduty_signed_event_is_accepted_with_202(client: TestClient[Any, Any]) -> None:
    body = pd_event()
    response = await client.post(PD, data=body, headers=pd_headers(body))
    assert response.status == 202
    assert (await response.json())["new"] == 1
    assert await count_alerts(client) == 1


async def test_pagerduty_retry_with_same_webhook_id_is_deduplicated(
    client: TestClient[Any, Any],
) -> None:
    body = pd_event("incident.triggered", "ev-1")
    first = await client.post(PD, data=body, headers=pd_headers(body, "wh-7"))
    again = await client.post(PD, data=body, headers=pd_headers(body, "wh-7"))
    assert (await first.json())["status"] == "accepted"
    assert again.status == 202
    assert (await again.json())["status"] == "duplicate"


async def test_pagerduty_resolve_updates_the_alert(client: TestClient[Any, Any]) -> None:
    fired, resolved = pd_event("incident.triggered"), pd_event("incident.resolved")
    await client.post(PD, data=fired, headers=pd_headers(fired, "wh-a"))
    response = await client.post(PD, data=resolved, headers=pd_headers(resolved, "wh-b"))
    assert (await response.json())["resolved"] == 1
    assert await count_alerts(client) == 1


async def test_pagerduty_missing_signature_400_bad_signature_403(
    client: TestClient[Any, Any],
) -> None:
    body = pd_event()
    missing = await client.post(PD, data=body, headers={"Content-Type": "application/json"})
    bad = await client.post(
        PD,
        data=body,
        headers={"Content-Type": "application/json", "X-PagerDuty-Signature": "v1=00"},
    )
    assert (missing.status, (await missing.json())["error"]) == (400, "signature_missing")
    assert (bad.status, (await bad.json())["error"]) == (403, "signature_invalid")
    assert await count_alerts(client) == 0


async def test_pagerduty_secret_rotation_accepts_either(
    make_client: Any, config: RouterConfig
) -> None:
    client = await make_client(config, Secrets(PAGERDUTY_WEBHOOK_SECRET="old-secret,new-secret"))
    body = pd_event()
    headers = {"Content-Type": "application/json",
               "X-PagerDuty-Signature": sign(b"old-secret", body)}  # fmt: skip
    assert (await client.post(PD, data=body, headers=headers)).status == 202


async def test_pagerduty_not_configured_is_404(make_client: Any, config: RouterConfig) -> None:
    client = await make_client(config, Secrets())
    body = pd_event()
    response = await client.post(PD, data=body, headers=pd_headers(body))
    assert response.status == 404


async def test_units_that_fail_do_not_undo_their_batch_neighbours(store: Store) -> None:
    """Group commit: one failing unit rolls back alone (its SAVEPOINT)."""
    import asyncio

    from router.adapters.store.sql import SqlTx as _Tx

    def good(tx: _Tx) -> bool:
        return tx.remember_delivery("t", "good", _now())

    def bad(tx: SqlTx) -> bool:
        tx.remember_delivery("t", "bad", _now())
        raise RuntimeError("bug in a unit")

    results = await asyncio.gather(store.run(good), store.run(bad), return_exceptions=True)
    assert results[0] is True
    assert isinstance(results[1], RuntimeError)
    assert await store.run(lambda tx: tx.remember_delivery("t", "good", _now())) is False
    assert await store.run(lambda tx: tx.remember_delivery("t", "bad", _now())) is True


def _now() -> Any:
    from tests.conftest import T0

    return T0


# -- big groups ----------------------------------------------------------------


def big_group(alerts: int) -> dict[str, Any]:
    """An Alertmanager group as a cluster sends it: labels and annotations of a pod."""
    payload = am_payload(
        alerts=[
            am_alert(
                f"{i:016x}",
                instance=f"10.2.{i // 250}.{i % 250}:9100",
                namespace="checkout",
                pod=f"checkout-api-7d9f8b6c5-{i:05d}",
                container="api",
                cluster="prod-eu-west-1",
                job="kubernetes-pods",
            )
            for i in range(alerts)
        ]
    )
    for alert in payload["alerts"]:
        alert["annotations"]["description"] = (
            f"p99 latency of {alert['labels']['pod']} has been above 1s for 10 minutes"
        )
    return payload


async def test_a_group_of_5000_alerts_is_accepted_with_the_default_config(
    client: TestClient[Any, Any], config: RouterConfig
) -> None:
    body = json.dumps(big_group(5000)).encode()
    assert len(body) > 2_500_000 and len(body) < config.server.max_body_bytes
    response = await client.post(AM, data=body, headers=AUTH | JSON)
    assert response.status == 200, await response.text()
    assert await response.json() == {"status": "accepted", "alerts": 5000}
    assert await count_alerts(client) == 5000


async def test_a_body_over_the_limit_is_a_counted_json_413(
    make_client: Any, tmp_path: Any, secrets: Secrets, metrics: Metrics
) -> None:
    config = load_config(None, {"ROUTER__STORE__URL": f"sqlite:///{tmp_path}/r.db",
                                "ROUTER__SERVER__MAX_BODY_BYTES": "100000"})  # fmt: skip
    client = await make_client(config, secrets, metrics=metrics)
    exposed = await (await client.get("/metrics")).text()
    assert 'endpoint="/webhooks/alertmanager",reason="body_too_large"} 0.0' in exposed
    response = await client.post(AM, data=json.dumps(big_group(500)), headers=AUTH | JSON)
    assert response.status == 413
    assert (await response.json())["error"] == "body_too_large"
    assert metric(metrics, "router_http_rejections_total", endpoint=AM,
                  reason="body_too_large") == 1  # fmt: skip
    assert await count_alerts(client) == 0


async def test_bodies_over_the_memory_budget_wait_then_get_503(
    client: TestClient[Any, Any], metrics: Metrics
) -> None:
    budget = client.server.app[SERVICES].body_budget
    budget.wait_seconds = 0.05
    budget.held = budget.limit  # big bodies being checked right now fill the budget
    response = await client.post(AM, json=am_payload(), headers=AUTH)
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    assert (await response.json())["error"] == "too_busy"  # Alertmanager retries a 5xx
    assert metric(metrics, "router_http_rejections_total", endpoint=AM, reason="too_busy") == 1
    budget.held = 0
    assert (await client.post(AM, json=am_payload(), headers=AUTH)).status == 200
    assert await count_alerts(client) == 1


async def test_a_bad_body_is_refused_before_anything_is_accepted(
    client: TestClient[Any, Any],
) -> None:
    bad = am_payload(alerts=[am_alert("a") | {"startsAt": "yesterday"}])
    response = await client.post(AM, json=bad, headers=AUTH)
    assert response.status == 422
    assert (await response.json())["field"] == "alerts.0.startsAt"
    assert (await store_of(client).run(lambda tx: tx.inbox_stats(T0))).pending == 0
