"""Shared fixtures: a config, a frozen clock, the app on a test server, payloads."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from router.adapters.store import Store, open_store
from router.app.clock import FrozenClock
from router.bootstrap import create_app
from router.config import RouterConfig, Secrets, load_config
from router.metrics import Metrics

AM_TOKEN = "test-am-token"
PD_SECRET = "test-pd-secret"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning

AM_PAYLOAD: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="HighLatency"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "oncall",
    "groupLabels": {"alertname": "HighLatency"},
    "commonLabels": {"alertname": "HighLatency", "severity": "critical"},
    "commonAnnotations": {"summary": "p99 > 1s"},
    "externalURL": "http://am:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighLatency", "severity": "critical", "instance": "api-1"},
            "annotations": {"summary": "p99 > 1s", "runbook_url": "https://runbooks/latency"},
            "startsAt": "2024-05-01T10:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom:9090/graph?g0.expr=x",
            "fingerprint": "5c1e2a1f0d9b7e44",
        }
    ],
}


def am_payload(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(AM_PAYLOAD)
    payload.update(changes)
    return payload


def am_alert(fingerprint: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    alert = copy.deepcopy(AM_PAYLOAD["alerts"][0])
    alert["fingerprint"] = fingerprint
    alert["status"] = status
    alert["labels"].update(labels)
    if status == "resolved":
        alert["endsAt"] = "2024-05-01T10:05:00Z"
    return alert


def pd_event(event_type: str = "incident.triggered", event_id: str | None = None) -> bytes:
    body = {
        "event": {
            "id": event_id or str(uuid.uuid4()),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2020-10-02T18:45:22.169Z",
            "agent": None,
            "client": None,
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                "number": 2,
                "status": "resolved" if event_type == "incident.resolved" else "triggered",
                "incident_key": "d3640fbd41094207a1c11e58e46b1662",
                "created_at": "2020-04-09T15:16:27Z",
                "title": "A little bump",
                "service": {"id": "PF9KMXH", "type": "service_reference", "summary": "API"},
                "assignees": [],
                "escalation_policy": {"id": "PUS0KTE", "type": "escalation_policy_reference"},
                "teams": [],
                "priority": None,
                "urgency": "high",
                "resolve_reason": None,
            },
        }
    }
    return json.dumps(body).encode()


def postgres_url() -> str:
    return os.environ.get("ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A store URL on the test PostgreSQL in a schema of its own, dropped afterwards
    (the server is shared: nothing else of it is touched)."""
    import psycopg

    schema = prefix + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url() else "?"
    try:
        yield f"{postgres_url()}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url(), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def secrets() -> Secrets:
    return Secrets(ALERTMANAGER_TOKEN=AM_TOKEN, PAGERDUTY_WEBHOOK_SECRET=PD_SECRET)


@pytest.fixture
def config(tmp_path: Path) -> RouterConfig:
    return load_config(None, {"ROUTER__STORE__URL": f"sqlite:///{tmp_path}/router.db"})


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def store(config: RouterConfig) -> AsyncIterator[Store]:
    opened = open_store(config.store.url)
    await opened.open()
    yield opened
    await opened.close()


ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[TestClient[Any, Any]] = []

    async def factory(
        config: RouterConfig, secrets: Secrets, **kwargs: Any
    ) -> TestClient[Any, Any]:
        app = create_app(config, secrets, **kwargs)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def client(
    make_client: ClientFactory,
    config: RouterConfig,
    secrets: Secrets,
    metrics: Metrics,
    clock: FrozenClock,
) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await make_client(config, secrets, metrics=metrics, clock=clock)
    return client


def skip_unless_ci(reason: str) -> None:
    """Skip on a developer's machine; in CI (CI=true) a missing part is a failure,
    so a green CI run never hides a missing install step."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def _postgres_available() -> bool:
    try:
        psycopg.connect(postgres_url(), connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each engine in turn: a SQLite file, or a PostgreSQL schema of the test's own."""
    if request.param == "sqlite":
        store = open_store(f"sqlite:///{tmp_path}/contract.db")
        await store.open()
        yield store
        await store.close()
        return
    if not _postgres_available():
        skip_unless_ci(f"no PostgreSQL at {postgres_url()}")
    schema = "router_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url() else "?"
    store = open_store(f"{postgres_url()}{separator}options=-csearch_path%3D{schema}")
    await store.open()
    yield store
    await store.close()
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "rule(id): the rule of tests/rules.py this test holds (docs/rules.md)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from tests.rules import RULES

    for item in items:
        for mark in item.iter_markers("rule"):
            unknown = [r for r in mark.args if r not in RULES]
            if unknown:
                raise pytest.UsageError(f"{item.nodeid}: unknown rule {unknown} (tests/rules.py)")
