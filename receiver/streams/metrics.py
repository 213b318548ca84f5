"""Log streams' series in the receiver's /metrics registry, labelled by stream."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.delivered = Counter(
            "otel_audit_stream_delivered_events", "Events a destination accepted", ["stream"], registry=r
        )
        self.batches = Counter(
            "otel_audit_stream_batches", "Delivery attempts of a batch", ["stream", "result"], registry=r
        )
        self.reads = Counter(
            "otel_audit_stream_reads",
            "Reads of the stream's next events: queried, or shared (a sibling stream's result)",
            ["stream", "result"],
            registry=r,
        )
        self.lag_events = Gauge(
            "otel_audit_stream_lag_events",
            "Stored events of the stream not yet delivered",
            ["stream"],
            registry=r,
        )
        self.lag_seconds = Gauge(
            "otel_audit_stream_lag_seconds",
            "Age of the oldest undelivered event (since it was stored)",
            ["stream"],
            registry=r,
        )
        self.backlog_exceeded = Gauge(
            "otel_audit_stream_backlog_exceeded",
            "1 while the stream's undelivered events exceed its backlog_limit",
            ["stream"],
            registry=r,
        )
