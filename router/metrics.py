"""Every metric the router exposes, on one injected registry.

Labels are low-cardinality on purpose: source, endpoint, status code, reason, system,
severity. Never a fingerprint, group key, user or incident id.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from router.core import events

if TYPE_CHECKING:
    from router.core.incident import Incident
    from router.core.policy import Outcome

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_INCIDENT_BUCKETS = (300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200)
_DECISION_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)


class _LoopValue:
    """A metric's value that only the event loop's thread writes, so without a lock.

    prometheus_client's values lock each increment for threads: on the webhook path
    (two counters, two histograms a request) the locks were a few per cent of a
    request's time. Exposition reads ``get`` as before."""

    __slots__ = ("value",)

    def __init__(self, *_: Any) -> None:
        self.value = 0.0

    def inc(self, amount: float) -> None:
        self.value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self.value = value

    def get(self) -> float:
        return self.value

    def set_exemplar(self, exemplar: Any) -> None:
        pass  # the router sets no exemplars

    def get_exemplar(self) -> None:
        return None


class LoopCounter(Counter):
    """A Counter for the hot path, written only on the event loop (``_LoopValue``)."""

    def _metric_init(self) -> None:
        super()._metric_init()
        self._value = _LoopValue()

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._value.value += amount


class LoopHistogram(Histogram):
    """A Histogram for the hot path, written only on the event loop (``_LoopValue``)."""

    def _metric_init(self) -> None:
        super()._metric_init()
        self._sum = _LoopValue()
        self._buckets = [_LoopValue() for _ in self._upper_bounds]

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        self._sum.value += amount
        # The last bound is +Inf: every amount finds its bucket.
        self._buckets[bisect.bisect_left(self._upper_bounds, amount)].value += 1


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # -- intake
        self.alerts_received = LoopCounter(
            "router_alerts_received",
            "Alerts received, by source and status (repeats of a group included).",
            ["source", "status"],
            registry=r,
        )
        self.alerts_recorded = Counter(
            "router_alerts_recorded",
            "Alert changes stored: new, resolved, refired (repeats are not counted).",
            ["source", "change"],
            registry=r,
        )
        self.alerts_not_paged = Counter(
            "router_alerts_not_paged",
            "Alerts recorded but sent to normal remediation (policy), not paged.",
            ["source"],
            registry=r,
        )
        self.webhook_requests = LoopCounter(
            "router_http_requests",
            "HTTP requests by endpoint (route, not URL) and status code.",
            ["endpoint", "code"],
            registry=r,
        )
        self.webhook_latency = LoopHistogram(
            "router_http_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.http_errors = Counter(
            "router_http_errors",
            "Requests answered 500, by endpoint: a bug in the router (its log has the"
            " traceback), never bad input, which gets a 4xx.",
            ["endpoint"],
            registry=r,
        )
        self.rejections = Counter(
            "router_http_rejections",
            "Requests refused, by endpoint and reason (auth, signature, payload...).",
            ["endpoint", "reason"],
            registry=r,
        )
        self.store_latency = LoopHistogram(
            "router_store_transaction_duration_seconds",
            "Time from submitting a unit of work to its commit.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "router_store_errors", "Units of work that failed to commit.", registry=r
        )
        # -- inbox (Alertmanager deliveries accepted, waiting to be applied)
        self.inbox_pending = Gauge(
            "router_inbox_deliveries",
            "Deliveries accepted and waiting to be applied (the inbox's depth).",
            registry=r,
        )
        self.inbox_oldest_age = Gauge(
            "router_inbox_oldest_age_seconds",
            "How long the oldest waiting delivery has waited (0 when none waits).",
            registry=r,
        )
        self.inbox_dead = Gauge(
            "router_inbox_dead_deliveries",
            "Deliveries that could not be applied and were set aside for a person.",
            registry=r,
        )
        self.inbox_processed = Counter(
            "router_inbox_processed",
            "Deliveries applied by this process's inbox processor.",
            registry=r,
        )
        self.inbox_lag = Histogram(
            "router_inbox_lag_seconds",
            "Time from a delivery's acceptance (2xx) to its being applied.",
            buckets=(*_LATENCY_BUCKETS, 10.0, 30.0, 60.0, 300.0),
            registry=r,
        )
        # -- paging and incidents
        self.pages_sent = Counter(
            "router_pages_sent", "Pages delivered, by on-call role.", ["role"], registry=r
        )
        self.time_to_decision = Histogram(
            "router_page_decision_seconds",
            "Time from a page to its decision, by decision.",
            ["decision"],
            buckets=_DECISION_BUCKETS,
            registry=r,
        )
        self.incidents_declared = Counter(
            "router_incidents_declared",
            "Incidents declared, by suggested severity.",
            ["severity"],
            registry=r,
        )
        self.dismissals = Counter(
            "router_pages_dismissed", "Pages answered 'Not an incident'.", registry=r
        )
        self.escalations = Counter(
            "router_escalations",
            "Escalations, by target role and cause (timeout, button, commander).",
            ["role", "cause"],
            registry=r,
        )
        self.pages_opened = Counter(
            "router_pages_opened", "Pages opened (one per alert group).", registry=r
        )
        self.pages_folded = Counter(
            "router_pages_folded",
            "Pages folded into a digest by storm control instead of paging one by one.",
            registry=r,
        )
        self.nobody_on_call = Counter(
            "router_pages_undelivered",
            "Pages with nobody on call to receive them (reported to the operator channel).",
            registry=r,
        )
        self.refusals = Counter(
            "router_unauthorized_actions",
            "Button presses or commands refused because the person may not act.",
            registry=r,
        )
        self.forms = Counter(
            "router_slack_forms",
            "Slack forms (modals) by form (callback id) and outcome: opened, failed (not "
            "opened: trigger expired, Slack away), invalid (answered in the form), "
            "refused, submitted.",
            ["form", "outcome"],
            registry=r,
        )
        self.incidents_open = Gauge(
            "router_incidents_open",
            "Incidents active or mitigated, by current severity.",
            ["severity"],
            registry=r,
        )
        self.postmortems_owed = Gauge(
            "router_postmortems_owed", "Resolved incidents whose post-mortem is not done.",
            registry=r,
        )  # fmt: skip
        self.time_to_mitigate = Histogram(
            "router_incident_mitigation_seconds",
            "Time from declaration to mitigation, by severity at the time.",
            ["severity"],
            buckets=_INCIDENT_BUCKETS,
            registry=r,
        )
        self.time_to_resolve = Histogram(
            "router_incident_resolution_seconds",
            "Time from declaration to resolution, by severity at the time.",
            ["severity"],
            buckets=_INCIDENT_BUCKETS,
            registry=r,
        )
        self.reminders = Counter(
            "router_reminders_sent",
            "Reminders to commanders, by kind (status, escalation, handoff).",
            ["kind"],
            registry=r,
        )
        # -- outbox
        self.outbox_backlog = Gauge(
            "router_outbox_backlog_jobs", "Jobs due now and not yet done.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "router_outbox_oldest_due_age_seconds",
            "How long the oldest due job has waited.",
            registry=r,
        )
        self.outbox_dead = Gauge(
            "router_outbox_dead_jobs", "Jobs that failed permanently.", registry=r
        )
        self.jobs_run = Counter(
            "router_outbox_jobs",
            "Job attempts, by kind and outcome (ok, retry, dead; found: an attempt whose"
            " outcome was unknown had happened after all).",
            ["kind", "outcome"],
            registry=r,
        )
        self.outbound_calls = Counter(
            "router_outbound_calls",
            "Calls to other systems, by system and result (ok, retry, permanent).",
            ["system", "result"],
            registry=r,
        )

    def record_outcome(self, outcome: Outcome, decision_seconds: float | None = None) -> None:
        """Count what a lifecycle step did (after its transaction committed)."""
        for event in outcome.events:
            if isinstance(event, events.PageOpened):
                self.pages_opened.inc()
            elif isinstance(event, events.PageFolded):
                self.pages_folded.inc()
            elif isinstance(event, events.Declared) and outcome.incident is not None:
                self.incidents_declared.labels(outcome.incident.severity.value).inc()
                if decision_seconds is not None:
                    self.time_to_decision.labels("declared").observe(decision_seconds)
            elif isinstance(event, events.Dismissed):
                self.dismissals.inc()
                if decision_seconds is not None:
                    self.time_to_decision.labels("dismissed").observe(decision_seconds)
            elif isinstance(event, events.Escalated) and event.role is not None:
                self.escalations.labels(event.role, event.cause).inc()
            elif isinstance(event, events.EscalatedToLeadership):
                self.escalations.labels("leadership", "commander").inc()
            elif isinstance(event, events.NobodyOnCall):
                self.nobody_on_call.inc()
            elif isinstance(event, events.Reminder):
                self.reminders.labels(event.what).inc()
            elif isinstance(event, events.Mitigated | events.Resolved) and outcome.incident:
                self._observe_duration(event.NAME, outcome.incident)

    def _observe_duration(self, name: str, incident: Incident) -> None:
        at = incident.mitigated_at if name == "mitigated" else incident.resolved_at
        if at is None:
            return
        histogram = self.time_to_mitigate if name == "mitigated" else self.time_to_resolve
        seconds = (at - incident.declared_at).total_seconds()
        histogram.labels(incident.severity.value).observe(seconds)
        if name == "resolved" and incident.mitigated_at == incident.resolved_at:
            # resolved without a separate "mitigated": it was mitigated then too
            self.time_to_mitigate.labels(incident.severity.value).observe(seconds)

    def set_incident_gauges(self, open_by_severity: dict[str, int], postmortems_owed: int) -> None:
        for severity in ("critical", "high", "medium", "low"):
            self.incidents_open.labels(severity).set(open_by_severity.get(severity, 0))
        self.postmortems_owed.set(postmortems_owed)
