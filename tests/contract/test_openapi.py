"""The OpenAPI description (router/adapters/http/openapi.yaml, served at GET /openapi.json) is
valid OpenAPI 3.1, documents exactly the app's routes, and accepts the senders'
payloads that the router accepts (the fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from router.adapters.store import open_store
from router.bootstrap import create_app
from router.config import RouterConfig, Secrets
from tests.conftest import AM_PAYLOAD, pd_event

SPEC_FILE = Path(__file__).parents[2] / "router/adapters/http/openapi.yaml"
FIXTURES = Path(__file__).parents[1] / "fixtures"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text())
    return document


def app_routes() -> set[tuple[str, str]]:
    app = create_app(RouterConfig(), Secrets(), store=open_store("sqlite:///:memory:"),
                     adapters=[], run_worker=False)  # fmt: skip
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        # aiohttp answers HEAD wherever it answers GET; the description lists GET.
        if route.resource is not None and route.method != "HEAD"
    }


def test_it_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_route_is_documented_and_nothing_else(spec: dict[str, Any]) -> None:
    documented = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    }
    routes = app_routes()
    assert routes - documented == set(), "routes the description does not document"
    assert documented - routes == set(), "documented operations the app does not serve"


def test_every_operation_names_its_auth_and_documents_4xx_as_the_error_shape(
    spec: dict[str, Any],
) -> None:
    error = "#/components/schemas/Error"
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert "security" in operation, f"{method} {path}: say which auth (or [])"
            for code, response in operation["responses"].items():
                if not code.startswith(("4", "5")) or path == "/readyz":
                    continue
                if "$ref" in response:
                    response = spec["components"]["responses"][response["$ref"].split("/")[-1]]
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": error}, f"{method} {path} {code}"


def _validator(spec: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(root)


@pytest.mark.parametrize(
    ("pattern", "schema"),
    [
        ("alertmanager/*.json", "AlertmanagerMessage"),
        ("grafana/*.json", "GrafanaMessage"),
        ("pagerduty/*.json", "PagerDutyEnvelope"),
    ],
)
def test_the_senders_fixtures_match_their_documented_body(
    spec: dict[str, Any], pattern: str, schema: str
) -> None:
    files = sorted(FIXTURES.glob(pattern))
    assert files
    validator = _validator(spec, schema)
    for path in files:
        errors = list(validator.iter_errors(json.loads(path.read_text())))
        assert not errors, f"{path.name}: {errors[0].message} at {list(errors[0].path)}"


def test_the_descriptions_refuse_what_the_router_refuses(spec: dict[str, Any]) -> None:
    am = _validator(spec, "AlertmanagerMessage")
    assert am.is_valid(AM_PAYLOAD)
    assert not am.is_valid({**AM_PAYLOAD, "version": "3"})
    assert not am.is_valid({**AM_PAYLOAD, "alerts": [{"status": "firing"}]})
    assert not am.is_valid({**AM_PAYLOAD, "truncatedAlerts": -1})
    assert _validator(spec, "PagerDutyEnvelope").is_valid(json.loads(pd_event()))
    assert not _validator(spec, "PagerDutyEnvelope").is_valid({"event": []})


async def test_it_is_served_as_json(make_client: Any, config: RouterConfig) -> None:
    client: TestClient[Any, Any] = await make_client(config, Secrets())
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == yaml.safe_load(SPEC_FILE.read_text())
