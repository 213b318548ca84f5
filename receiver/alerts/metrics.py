"""The alert evaluator's and deliverer's series in the receiver's /metrics registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class AlertMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.fired = Counter("otel_audit_alerts_fired", "Alerts fired", ["rule"], registry=r)
        self.deliveries = Counter(
            "otel_audit_alert_deliveries", "Alert delivery attempts", ["destination", "result"], registry=r
        )
        self.dead_letters = Counter(
            "otel_audit_alert_dead_letters",
            "Alert deliveries given up after alerts.give_up_after (the alert stays in /api/alerts)",
            ["destination"],
            registry=r,
        )
        self.pending = Gauge(
            "otel_audit_alert_deliveries_pending", "Alert deliveries not yet accepted", registry=r
        )
        self.evaluation_seconds = Histogram(
            "otel_audit_alert_evaluation_seconds",
            "Time of one evaluation of every rule",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.evaluation_errors = Counter(
            "otel_audit_alert_evaluation_errors",
            "Evaluations that failed (retried next interval)",
            registry=r,
        )
