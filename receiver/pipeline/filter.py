"""Stage 3: audit event or not (SPEC section 1): the record's ``event_name`` (or, from older
SDKs, its ``event.name`` attribute) starts with ``audit.``. Everything else is dropped, counted.
"""

from __future__ import annotations

from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otel_audit import attributes as A


def audit_event_name(record: LogRecord) -> str | None:
    """The record's audit event name, or None when it is not an audit event."""
    name = record.event_name
    if not name:
        for kv in record.attributes:
            if kv.key == A.EVENT_NAME_ATTR:
                name = kv.value.string_value
                break
    if name.startswith(A.EVENT_NAME_PREFIX) and len(name) > len(A.EVENT_NAME_PREFIX):
        return name
    return None
