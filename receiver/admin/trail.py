"""The audit trail of the audit log (PCI DSS 10.2.1.3): every search, detail view, compliance
view and export through the admin API is itself an audit event, ``audit.audit_log.read`` or
``audit.audit_log.export``, with the admin token's name as the actor.

The events are built as OTLP log records and handed to the same ingest path as any emitter's
(pipeline → writer → store), so they are validated, enriched and stored exactly alike.
Recording is fail-closed: the API answers only once the event is durable — fsync'd in the
receiver's journal with ``ingest.ack: journal`` (the default; it reaches the store within the
commit interval), inserted in the store with ``ingest.ack: store`` — and refuses (503) when it
cannot be recorded (journal full or failing, store down in store mode).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otel_audit import attributes as A
from receiver.admin.access import Access
from receiver.pipeline.auth import IngestIdentity

READ_EVENT = "audit.audit_log.read"
EXPORT_EVENT = "audit.audit_log.export"
RESOURCE_TYPE = "audit_log"
SERVICE_NAME = "otel-audit"
#: where an all-tenant token's access lands when it read no tenant's rows
SYSTEM_TENANT = "_otel_audit"

#: (request, identity) → None once durable (journal or store); raises when it cannot be recorded
Ingest = Callable[[ExportLogsServiceRequest, IngestIdentity], object]


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One access to the audit log, before it is split per tenant read."""

    access: Access
    action: str  # "read" or "export"
    tenants: tuple[str, ...]
    outcome: str = "success"
    resource_id: str = ""
    reason: str = ""
    client_address: str = ""
    user_agent: str = ""
    http_method: str = "GET"
    http_route: str = ""
    http_status: int = 200
    attributes: Mapping[str, str] = field(default_factory=dict)


def tenants_read(access: Access, asked: str | None, seen: Iterable[str] = ()) -> tuple[str, ...]:
    """The tenants an access is recorded under: the tenant asked for, else the tenants whose rows
    were returned, else the token's own tenants (or the system tenant for an all-tenant token)."""
    if asked:
        if access.tenants is None or asked in access.tenants:
            return (asked,)
    found = tuple(sorted(set(seen)))
    if found:
        return found
    return access.tenants if access.tenants else (SYSTEM_TENANT,)


def _value(value: str | int) -> AnyValue:
    return AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)


def to_request(event: AccessEvent, now_ns: int | None = None) -> ExportLogsServiceRequest:
    """One OTLP log record per tenant read, as an emitter would send it."""
    now_ns = now_ns or time.time_ns()
    name = EXPORT_EVENT if event.action == "export" else READ_EVENT
    records = []
    for tenant in event.tenants:
        attrs: dict[str, str | int] = {
            A.EVENT_ID: str(uuid.uuid4()),
            A.TENANT_ID: tenant,
            A.USER_ID: event.access.name,
            A.ACTOR_TYPE: "user",
            A.ACTION: event.action,
            A.OUTCOME: event.outcome,
            A.RESOURCE_TYPE: RESOURCE_TYPE,
            A.RESOURCE_ID: event.resource_id,
            A.CLIENT_ADDRESS: event.client_address,
            A.USER_AGENT: event.user_agent,
            A.HTTP_METHOD: event.http_method,
            A.HTTP_ROUTE: event.http_route,
            A.HTTP_STATUS: event.http_status,
            "audit.admin.role": event.access.role,
        }
        if event.access.token_id:  # a viewer token (receiver/viewer/): which one, for whom
            attrs["audit.viewer.token_id"] = event.access.token_id
            attrs["audit.viewer.actor"] = event.access.actor or ""
        attrs.update(event.attributes)
        records.append(
            LogRecord(
                time_unix_nano=now_ns,
                event_name=name,
                body=AnyValue(string_value=event.reason),
                attributes=[KeyValue(key=k, value=_value(v)) for k, v in attrs.items() if v != ""],
            )
        )
    resource = Resource(attributes=[KeyValue(key=A.SERVICE_NAME, value=_value(SERVICE_NAME))])
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )


class AccessTrail:
    """Records accesses through ``ingest``; with ``ingest=None`` nothing is recorded."""

    def __init__(self, ingest: Ingest | None) -> None:
        self._ingest = ingest

    @property
    def enabled(self) -> bool:
        return self._ingest is not None

    def ingest(self, request: ExportLogsServiceRequest) -> None:
        """Store events the receiver itself makes (alert reviews), each with its own tenant;
        blocks until durable, raises if they cannot be stored."""
        if self._ingest is not None:
            self._ingest(request, IngestIdentity(tenant=None))

    def record(self, event: AccessEvent) -> None:
        """Blocks until the events are durable; raises if they cannot be stored."""
        if self._ingest is None:
            return
        request = to_request(event)
        # The tenant of each record is the tenant read; the open identity keeps each record's own
        # audit.tenant.id (the admin path is authenticated already, by the admin token).
        self._ingest(request, IngestIdentity(tenant=None))


#: the resource id of reads and exports of the events table in access events
EVENTS_RESOURCE = "audit_events"


def query_attributes(
    params: Mapping[str, str | list[str]], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The filters of a read, as attributes of its audit event (``audit.query.<name>``; repeated
    values comma-joined)."""
    out = {
        f"audit.query.{k}": (v if isinstance(v, str) else ",".join(v))[:256] for k, v in params.items() if v
    }
    out.update(extra or {})
    return out
