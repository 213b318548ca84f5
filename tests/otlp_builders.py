"""Build OTLP log requests by hand, for tests that need exact control of the wire content."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, dict):
        return AnyValue(
            kvlist_value=KeyValueList(values=[KeyValue(key=k, value=any_value(v)) for k, v in value.items()])
        )
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    return AnyValue(string_value=str(value))


def audit_attrs(**overrides: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "audit.event.id": str(uuid.uuid4()),
        "audit.tenant.id": "acme",
        "enduser.id": "alice",
        "audit.action": "read",
        "audit.resource.type": "document",
        "audit.resource.id": "doc-1",
    }
    for key, value in overrides.items():
        attrs[key.replace("__", ".")] = value
    return {k: v for k, v in attrs.items() if v is not None}


def log_record(
    attributes: dict[str, Any],
    event_name: str = "audit.document.read",
    body: Any = None,
    time_ns: int | None = None,
    trace_id: bytes = b"",
    span_id: bytes = b"",
) -> LogRecord:
    record = LogRecord(
        time_unix_nano=time.time_ns() if time_ns is None else time_ns,
        event_name=event_name,
        attributes=[KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()],
        trace_id=trace_id,
        span_id=span_id,
    )
    if body is not None:
        record.body.CopyFrom(any_value(body))
    return record


def request(records: list[LogRecord], service_name: str = "test-svc") -> ExportLogsServiceRequest:
    resource = Resource(attributes=[KeyValue(key="service.name", value=any_value(service_name))])
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(resource=resource, scope_logs=[ScopeLogs(log_records=records)])]
    )


def export(
    endpoint: str, req: ExportLogsServiceRequest, token: str | None = None, timeout: float = 30
) -> ExportLogsServiceResponse:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with grpc.insecure_channel(endpoint) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        return stub.Export(req, metadata=metadata, timeout=timeout)
