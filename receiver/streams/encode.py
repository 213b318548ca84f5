"""How one event (keyed like /api/events) is written for each destination: an OTLP log record
(the attribute names the receiver itself reads, so an OTLP stream into another otel-audit keeps
every field), an RFC 5424 syslog message in octet-counted framing, and a CEF line."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otel_audit import attributes as A
from receiver.streams.batch import Batch

#: /api/events key -> the OTLP attribute the receiver reads it from
_ATTRIBUTE_OF = {
    "id": A.EVENT_ID,
    "tenant_id": A.TENANT_ID,
    "user_id": A.USER_ID,
    "actor_type": A.ACTOR_TYPE,
    "action": A.ACTION,
    "outcome": A.OUTCOME,
    "resource_type": A.RESOURCE_TYPE,
    "resource_id": A.RESOURCE_ID,
    "ip_address": A.CLIENT_ADDRESS,
    "user_agent": A.USER_AGENT,
    "session_id": A.SESSION_ID,
    "http_method": A.HTTP_METHOD,
    "http_route": A.HTTP_ROUTE,
}
#: RFC 5612's documentation enterprise number: the SD-ID of the structured data element
SD_ID = "otel-audit@32473"


def _nanos(iso: str | None) -> int:
    if not iso:
        return 0
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return (int(when.timestamp()) * 1_000_000 + when.microsecond) * 1000


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _failed(event: dict[str, Any]) -> bool:
    return event.get("outcome") in ("failure", "denied")


def log_record(event: dict[str, Any]) -> LogRecord:
    attrs = [_kv(k, v) for k, v in sorted((event.get("attributes") or {}).items())]
    attrs += [_kv(attr, event[key]) for key, attr in _ATTRIBUTE_OF.items() if event.get(key)]
    if event.get("http_status"):
        attrs.append(_kv(A.HTTP_STATUS, int(event["http_status"])))
    if event.get("changes") is not None:
        changes = event["changes"]
        attrs.append(_kv(A.CHANGES, changes if isinstance(changes, str) else json.dumps(changes)))
    record = LogRecord(
        time_unix_nano=_nanos(event.get("created_at")),
        observed_time_unix_nano=_nanos(event.get("received_at")),
        severity_number=13 if _failed(event) else 9,
        severity_text="WARN" if _failed(event) else "INFO",
        event_name=event.get("event_name") or "",
        body=AnyValue(string_value=event.get("reason") or ""),
        attributes=attrs,
    )
    for field, size in (("trace_id", 16), ("span_id", 8)):
        value = event.get(field) or ""
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) == size:
            setattr(record, field, raw)
    return record


def otlp_request(batch: Batch) -> ExportLogsServiceRequest:
    """One ResourceLogs per run of events from the same service, in the batch's order."""
    out = ExportLogsServiceRequest()
    current: ScopeLogs | None = None
    service: str | None = None
    for event in batch.events:
        if current is None or event.get("service_name") != service:
            service = event.get("service_name") or ""
            resource = Resource(attributes=[_kv(A.SERVICE_NAME, service)] if service else [])
            resource_logs = out.resource_logs.add(resource=resource)
            current = resource_logs.scope_logs.add(scope=InstrumentationScope(name="otel-audit.streams"))
        current.log_records.append(log_record(event))
    return out


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, limit: int) -> str:
    """RFC 5424 header fields: printable US-ASCII without spaces, or ``-``."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return cleaned or "-"


def syslog_frame(event: dict[str, Any], facility: int, hostname: str, as_cef: bool) -> bytes:
    """``<len> <PRI>1 TIMESTAMP HOST otel-audit - MSGID [SD] MSG`` (RFC 5424 in RFC 6587 octet counting)."""
    severity = 4 if _failed(event) else 6
    sd = f'[{SD_ID} id="{_sd_value(str(event.get("id", "")))}" tenant="{_sd_value(str(event.get("tenant_id", "")))}"]'
    head = (
        f"<{facility * 8 + severity}>1 {event.get('created_at') or '-'} {_header_token(hostname, 255)}"
        f" otel-audit - {_header_token(event.get('event_name') or '', 32)} {sd} "
    )
    body = (
        cef(event) if as_cef else json.dumps(event, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    )
    message = head.encode() + (b"" if as_cef else b"\xef\xbb\xbf") + body.encode()
    return str(len(message)).encode() + b" " + message


def _cef_header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _cef_ext(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


def cef(event: dict[str, Any]) -> str:
    """ArcSight CEF:0 with the event's fields in standard keys (tenant in cs1, resource in cs2)."""
    name = event.get("event_name") or "audit.event"
    severity = 7 if _failed(event) else 3
    ext: list[tuple[str, Any]] = [
        ("rt", _nanos(event.get("created_at")) // 1_000_000),
        ("externalId", event.get("id")),
        ("suser", event.get("user_id")),
        ("act", event.get("action")),
        ("outcome", event.get("outcome")),
        ("src", event.get("ip_address")),
        ("requestClientApplication", event.get("user_agent")),
        ("cs1Label", "tenant"),
        ("cs1", event.get("tenant_id")),
        ("cs2Label", "resource"),
        ("cs2", f"{event.get('resource_type') or ''}/{event.get('resource_id') or ''}"),
        ("msg", event.get("reason")),
    ]
    extension = " ".join(f"{k}={_cef_ext(v)}" for k, v in ext if v not in (None, ""))
    return f"CEF:0|otel-audit|otel-audit|1|{_cef_header(name)}|{_cef_header(name)}|{severity}|{extension}"
