"""Stage 1: an OTLP ExportLogsServiceRequest → its records, batch by batch, with their resource's
service name.

Also the one place that turns OTLP ``AnyValue`` into Python values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otel_audit import attributes as A

#: kvlists and arrays nested deeper than this are cut (hostile input must not recurse forever)
MAX_DEPTH = 8


@dataclass(slots=True)
class FlatRecord:
    """A log record with what it needs from its enclosing resource."""

    index: int
    record: LogRecord
    service_name: str


def batches(request: ExportLogsServiceRequest) -> Iterator[tuple[str, Sequence[LogRecord]]]:
    """(service name, records) per scope, in request order: the resource is read once a batch."""
    for resource_logs in request.resource_logs:
        service_name = ""
        for kv in resource_logs.resource.attributes:
            if kv.key == A.SERVICE_NAME:
                service_name = kv.value.string_value
                break
        for scope_logs in resource_logs.scope_logs:
            yield service_name, scope_logs.log_records


def flatten(request: ExportLogsServiceRequest) -> Iterator[FlatRecord]:
    index = 0
    for service_name, records in batches(request):
        for record in records:
            yield FlatRecord(index, record, service_name)
            index += 1


def count_records(request: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def attribute_values(record: LogRecord) -> dict[str, Any]:
    """The record's attributes as {key: value}; a repeated key keeps its first place and its last
    value (what assigning them in order gives)."""
    values: dict[str, Any] = {}
    for kv in record.attributes:
        value = kv.value
        # nearly every value is a non-empty string, or else a non-zero integer (a oneof field
        # reads as its default unless it is the one set): no oneof dispatch for those
        values[kv.key] = value.string_value or value.int_value or any_value(value)
    return values


def any_value(value: AnyValue, depth: int = 0) -> Any:
    """OTLP AnyValue → str, bool, int, float, bytes, list, dict or None."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("string_value", "bool_value", "int_value", "double_value", "bytes_value"):
        return getattr(value, kind)
    if depth >= MAX_DEPTH:
        return "[TRUNCATED: nested too deep]"
    if kind == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values]
    return {kv.key: any_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
