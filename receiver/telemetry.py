"""The receiver's own metrics, one registry counted the same way by every stage and transport."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

disable_created_metrics()  # the *_created series only add noise to a scrape


class ReceiverMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "otel_audit_received_records", "Log records received", ["transport"], registry=r
        )
        self.accepted = Counter("otel_audit_accepted_events", "Audit events stored", registry=r)
        self.rejected = Counter(
            "otel_audit_rejected_events", "Audit records rejected", ["reason"], registry=r
        )
        self.dropped_non_audit = Counter(
            "otel_audit_dropped_non_audit_records", "Log records that are not audit events", registry=r
        )
        self.duplicates = Counter(
            "otel_audit_duplicate_events", "Events already stored (client retries)", registry=r
        )
        self.expired = Counter(
            "otel_audit_expired_events",
            "Acknowledged events whose retention ran out in the journal before the store took them",
            registry=r,
        )
        self.refused_requests = Counter(
            "otel_audit_refused_requests", "Export requests refused", ["code"], registry=r
        )
        self.insert_latency = Histogram(
            "otel_audit_store_insert_seconds",
            "Store insert latency per group commit",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.insert_rows = Histogram(
            "otel_audit_store_insert_rows",
            "Rows per group commit",
            buckets=(1, 10, 100, 512, 1000, 5000, 10000, 50000, 100000),
            registry=r,
        )
        self.queue_depth = Gauge("otel_audit_writer_queue_rows", "Rows waiting for the store", registry=r)
        self.store_errors = Counter(
            "otel_audit_store_commit_errors",
            "Failed store commits retried from the journal (ingest.ack: journal)",
            registry=r,
        )
        self.quarantined = Counter(
            "otel_audit_quarantined_events",
            "Events the store rejected for good, kept in the journal's quarantine/ (ingest.ack: journal)",
            registry=r,
        )
        self.journal_tamper_findings = Counter(
            "otel_audit_journal_tamper_findings",
            "Journal damage found at start: acknowledged records gone, state file missing or unreadable",
            registry=r,
        )
        self.journal_bytes = Gauge(
            "otel_audit_journal_bytes", "Bytes of journal segments on disk (ingest.ack: journal)", registry=r
        )

        self.schema_events = Counter(
            "otel_audit_schema_events",
            "Audit records checked against an event schema, by result (valid, flagged, rejected)",
            ["event_name", "version", "result"],
            registry=r,
        )

    def schema_counts(self) -> list[dict[str, object]]:
        """Per schema since start: ``{event_name, version, valid, flagged, rejected}``."""
        by_schema: dict[tuple[str, str], dict[str, object]] = {}
        for metric in self.schema_events.collect():
            for sample in metric.samples:
                if not sample.name.endswith("_total"):
                    continue
                key = (sample.labels["event_name"], sample.labels["version"])
                entry = by_schema.setdefault(
                    key, {"event_name": key[0], "version": key[1], "valid": 0, "flagged": 0, "rejected": 0}
                )
                entry[sample.labels["result"]] = int(sample.value)
        return [by_schema[k] for k in sorted(by_schema)]

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
