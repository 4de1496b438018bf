"""The console's metrics, on the router's registry.

Labels are the page (the route's name, never the path: an incident number must not
make a series), the status code, the sign-in mode and a fixed set of results.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ConsoleMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "router_console_requests",
            "Console requests by page (route name) and status code.",
            ["page", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "router_console_request_duration_seconds",
            "Time to answer a console request, by page.",
            ["page"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.sign_ins = Counter(
            "router_console_sign_ins",
            "Sign-in attempts by mode and result: ok, or why it was refused.",
            ["mode", "result"],
            registry=registry,
        )
