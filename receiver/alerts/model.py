"""An alert: what fired, for whom, over which window; its id, its webhook body and its audit event."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otel_audit import attributes as A
from receiver.model import iso_utc

FIRED_EVENT = "audit.alert.fired"
REVIEWED_EVENT = "audit.alert.reviewed"
RESOURCE_TYPE = "alert"
SERVICE_NAME = "otel-audit"
ACTOR = "otel-audit/alerts"


def alert_id(secret: bytes, key: str) -> str:
    """A UUID derived from the alert's identity (rule, tenant, group, window) with a key only the
    receivers hold: every receiver computes the same id for the same alert (the store keeps one,
    once per group and window), and no ingest client can predict it to pre-empt an alert with a
    forged event of the same id."""
    raw = bytearray(hmac.new(secret, key.encode(), hashlib.sha256).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8 (custom)
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return str(uuid.UUID(bytes=bytes(raw)))


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    rule: str
    tenant: str
    severity: str
    window_start: dt.datetime
    window_end: dt.datetime
    count: int
    group: Mapping[str, str]
    sample_event_ids: tuple[str, ...]
    fired_at: dt.datetime
    destinations: tuple[str, ...] = ()
    summary: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, object]:
        """The webhook's JSON body (SPEC section 10)."""
        return {
            "id": self.id,
            "rule": self.rule,
            "tenant": self.tenant,
            "severity": self.severity,
            "window_start": iso_utc(self.window_start),
            "window_end": iso_utc(self.window_end),
            "count": self.count,
            "group": dict(self.group),
            "sample_event_ids": list(self.sample_event_ids),
            "fired_at": iso_utc(self.fired_at),
        }

    def attributes(self) -> dict[str, str]:
        return {
            "alert.rule": self.rule,
            "alert.severity": self.severity,
            "alert.window_start": iso_utc(self.window_start) or "",
            "alert.window_end": iso_utc(self.window_end) or "",
            "alert.count": str(self.count),
            "alert.group": json.dumps(dict(self.group), sort_keys=True, separators=(",", ":")),
            "alert.sample_event_ids": ",".join(self.sample_event_ids),
            "alert.destinations": ",".join(self.destinations),
            **self.extra,
        }

    @classmethod
    def from_event(
        cls, event_id: str, tenant: str, attributes: Mapping[str, str], fired_at: dt.datetime
    ) -> Alert:
        """The alert a stored ``audit.alert.fired`` event records."""

        def when(name: str) -> dt.datetime:
            text = attributes.get(name) or iso_utc(fired_at) or ""
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

        samples = attributes.get("alert.sample_event_ids", "")
        destinations = attributes.get("alert.destinations", "")
        return cls(
            id=event_id,
            rule=attributes.get("alert.rule", ""),
            tenant=tenant,
            severity=attributes.get("alert.severity", ""),
            window_start=when("alert.window_start"),
            window_end=when("alert.window_end"),
            count=int(attributes.get("alert.count", "0") or 0),
            group=json.loads(attributes.get("alert.group", "{}") or "{}"),
            sample_event_ids=tuple(s for s in samples.split(",") if s),
            fired_at=fired_at,
            destinations=tuple(d for d in destinations.split(",") if d),
        )


def _record(
    event_id: str,
    tenant: str,
    name: str,
    user: str,
    actor_type: str,
    action: str,
    resource_id: str,
    reason: str,
    attrs: Mapping[str, str],
    now_ns: int,
) -> LogRecord:
    base: dict[str, str] = {
        A.EVENT_ID: event_id,
        A.TENANT_ID: tenant,
        A.USER_ID: user,
        A.ACTOR_TYPE: actor_type,
        A.ACTION: action,
        A.OUTCOME: "success",
        A.RESOURCE_TYPE: RESOURCE_TYPE,
        A.RESOURCE_ID: resource_id,
        **attrs,
    }
    return LogRecord(
        time_unix_nano=now_ns,
        event_name=name,
        body=AnyValue(string_value=reason),
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in base.items() if v != ""],
    )


def _request(records: list[LogRecord]) -> ExportLogsServiceRequest:
    resource = Resource(attributes=[KeyValue(key=A.SERVICE_NAME, value=AnyValue(string_value=SERVICE_NAME))])
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )


def fired_request(alerts: list[Alert]) -> ExportLogsServiceRequest:
    """The ``audit.alert.fired`` events of these alerts, each in its tenant, its id the alert's."""
    records = [
        _record(
            a.id,
            a.tenant,
            FIRED_EVENT,
            ACTOR,
            "system",
            "alert",
            a.id,
            a.summary,
            a.attributes(),
            int(a.fired_at.timestamp() * 1_000_000) * 1000,
        )
        for a in alerts
    ]
    return _request(records)


def reviewed_request(
    alert_id: str, tenant: str, rule: str, reviewer: str, note: str, status: str, client_address: str = ""
) -> ExportLogsServiceRequest:
    """``audit.alert.reviewed``: who reviewed which alert, with their note (PCI DSS 10.4 evidence)."""
    attrs = {"alert.rule": rule, "alert.status": status, A.CLIENT_ADDRESS: client_address}
    return _request(
        [
            _record(
                str(uuid.uuid4()),
                tenant,
                REVIEWED_EVENT,
                reviewer,
                "user",
                "update",
                alert_id,
                note,
                attrs,
                time.time_ns(),
            )
        ]
    )
