# syntax=docker/dockerfile:1
#
# The incident router as a container image.
#
#   docker build -t incident-router .
#   docker run --rm -p 8080:8080 -v router-data:/data \
#       -e ALERTMANAGER_TOKEN=change-me incident-router
#
# The image runs `router serve` as uid 10001 with the example config at
# /etc/router/router.yaml (mount your own there, or point ROUTER_CONFIG elsewhere)
# and the SQLite store in the /data volume. Secrets come only from the environment
# (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, GITHUB_TOKEN, PAGERDUTY_WEBHOOK_SECRET,
# PAGERDUTY_ROUTING_KEY, ALERTMANAGER_TOKEN, or NAME_FILE pointing at a file);
# `serve` refuses to start without ALERTMANAGER_TOKEN unless alertmanager.auth is none.
# Any config key can be overridden with ROUTER__SECTION__KEY, e.g.
# ROUTER__STORE__URL=postgresql://router@db/router for several replicas.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# builder: build the wheel and install it, with its dependencies, into a venv
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# .dockerignore lets in only what the wheel needs (pyproject.toml, README, router/).
COPY . .

# A real (non-editable) install: the venv must not point back at /src.
# pip compiles the .pyc files while installing, so the final image never needs to
# write them (its root filesystem may be read-only).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade "pip>=24" \
    && /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
    && /opt/venv/bin/pip install --no-cache-dir /tmp/wheels/*.whl \
    && /opt/venv/bin/router --help >/dev/null

# ---------------------------------------------------------------------------
# final: the slim base plus the venv and the example config, nothing else
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="incident-router" \
      org.opencontainers.image.description="Routes monitoring alerts to the on-call engineer and runs the incident-response policy" \
      org.opencontainers.image.licenses="Apache-2.0"

# uid/gid 10001: above the host's system and login ranges, matches runAsUser in
# deploy/kubernetes. /data is the SQLite volume and must belong to it.
RUN groupadd --system --gid 10001 router \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin router \
    && mkdir -p /data /app \
    && chown 10001:10001 /data

COPY --from=builder /opt/venv /opt/venv
COPY config/router.example.yaml /etc/router/router.yaml

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ROUTER_CONFIG=/etc/router/router.yaml \
    ROUTER__SERVER__HOST=0.0.0.0 \
    ROUTER__STORE__URL=sqlite:////data/router.db

WORKDIR /app
VOLUME ["/data"]
EXPOSE 8080
USER 10001:10001

# Liveness only (/healthz: the process answers). There is no curl in the slim
# image, so ask with Python's urllib; follows ROUTER__SERVER__PORT if it is changed.
# Kubernetes ignores HEALTHCHECK: the manifests in deploy/kubernetes have probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('ROUTER__SERVER__PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["router"]
CMD ["serve"]
