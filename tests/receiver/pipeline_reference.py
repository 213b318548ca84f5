"""The ingest pipeline as it was before the columnar fast path (issue 8), kept verbatim as the
reference the fast path is compared against (tests/receiver/test_pipeline_equivalence.py).

Not collected by pytest (no ``test_`` prefix); only imported by the tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otel_audit import attributes as A
from receiver.model import AuditEvent, events_to_table  # the conversion of that time, unchanged
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.run import PipelineResult
from receiver.pipeline.validate import Rejected

RetainDays = Any
#: kvlists and arrays nested deeper than this are cut (hostile input must not recurse forever)
MAX_DEPTH = 8


@dataclass(slots=True)
class FlatRecord:
    """A log record with what it needs from its enclosing resource."""

    index: int
    record: LogRecord
    service_name: str


def flatten(request: ExportLogsServiceRequest) -> Iterator[FlatRecord]:
    index = 0
    for resource_logs in request.resource_logs:
        service_name = ""
        for kv in resource_logs.resource.attributes:
            if kv.key == A.SERVICE_NAME:
                service_name = kv.value.string_value
                break
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                yield FlatRecord(index, record, service_name)
                index += 1


def count_records(request: ExportLogsServiceRequest) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


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


MAX_VALUE_CHARS = 16_384
MAX_CHANGES_CHARS = 262_144
MAX_ATTRIBUTES = 256
_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
#: DateTime64(6) holds 1900-01-01 .. 2299-12-31
_MAX_TIME_NS = int((dt.datetime(2299, 12, 31, 23, 59, 59, tzinfo=_UTC) - _EPOCH).total_seconds()) * 10**9
#: already in the form str(uuid.UUID(x)) gives: keep it as is
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_VERB = re.compile(r"^[a-z][a-z_]{0,63}$")
_TRUNCATED = "…[TRUNCATED]"

#: attributes that fill their own column; the rest go to the ``attributes`` map
MAPPED = frozenset(
    {
        A.EVENT_ID,
        A.TENANT_ID,
        A.USER_ID,
        A.USER_ID_ALIAS,
        A.ACTOR_TYPE,
        A.ACTION,
        A.OUTCOME,
        A.RESOURCE_TYPE,
        A.RESOURCE_ID,
        A.CHANGES,
        A.CLIENT_ADDRESS,
        A.USER_AGENT,
        A.SESSION_ID,
        A.HTTP_METHOD,
        A.HTTP_ROUTE,
        A.HTTP_STATUS,
        A.EVENT_NAME_ATTR,
    }
)


def _text(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    if type(value) is str and len(value) <= limit and "\x00" not in value:
        return value  # the common case, first
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, bytes):
        text = value.hex()
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if len(text) > limit:
        text = text[:limit] + _TRUNCATED
    return text


def _changes(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise Rejected(f"{A.CHANGES} is not valid JSON") from exc
    if not isinstance(value, dict):
        raise Rejected(f"{A.CHANGES} must be a JSON object of {{field: {{old, new}}}}")
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    if len(text) > MAX_CHANGES_CHARS:
        raise Rejected(f"{A.CHANGES} is larger than {MAX_CHANGES_CHARS} characters")
    return text.replace("\x00", "\\u0000")


def _time(record: LogRecord) -> dt.datetime:
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    if nanos == 0:
        raise Rejected("time_unix_nano is 0 (the event time is required)")
    if nanos > _MAX_TIME_NS:
        raise Rejected("time_unix_nano is after 2299-12-31, outside the storable range")
    return _EPOCH + dt.timedelta(microseconds=nanos // 1000)


def to_event(record: LogRecord, event_name: str, identity: IngestIdentity) -> AuditEvent:
    attrs: dict[str, Any] = {}
    extra: dict[str, str] = {}
    dropped = 0
    for kv in record.attributes:
        key = kv.key
        value = kv.value
        # string values are nearly all of them: skip any_value's dispatch for those
        decoded = value.string_value if value.WhichOneof("value") == "string_value" else any_value(value)
        if key in MAPPED:
            attrs[key] = decoded
        elif len(extra) < MAX_ATTRIBUTES:
            extra[_text(key, 256)] = _text(decoded)
        else:
            dropped += 1
    if dropped:
        extra["otel_audit.dropped_attributes"] = str(dropped)

    raw_id = attrs.get(A.EVENT_ID)
    if not raw_id:
        raise Rejected(f"{A.EVENT_ID} is missing")
    try:
        if isinstance(raw_id, str) and _CANONICAL_UUID.match(raw_id):
            event_id = raw_id
        else:
            event_id = str(uuid.UUID(str(raw_id)))
    except ValueError as exc:
        raise Rejected(f"{A.EVENT_ID} {str(raw_id)[:64]!r} is not a UUID") from exc

    claimed = _text(attrs.get(A.TENANT_ID), 256)
    if identity.tenant is not None:
        if claimed and claimed != identity.tenant:
            raise Rejected(f"{A.TENANT_ID} does not match the tenant of the ingest token")
        tenant = identity.tenant
    elif claimed:
        tenant = claimed
    else:
        raise Rejected(f"{A.TENANT_ID} is missing (required when ingest is not token-authenticated)")

    if A.USER_ID in attrs:
        user_id = _text(attrs[A.USER_ID], 1024)
    elif A.USER_ID_ALIAS in attrs:
        user_id = _text(attrs[A.USER_ID_ALIAS], 1024)
    else:
        raise Rejected(f'{A.USER_ID} is missing (send "" for an anonymous actor)')

    action = _text(attrs.get(A.ACTION), 64)
    if not action:
        raise Rejected(f"{A.ACTION} is missing")
    if not _VERB.match(action):
        raise Rejected(f"{A.ACTION} {action!r} must be lowercase letters and '_'")
    outcome = _text(attrs.get(A.OUTCOME), 64) or A.DEFAULT_OUTCOME
    if outcome not in A.OUTCOMES:
        raise Rejected(f"{A.OUTCOME} {outcome!r} must be one of {', '.join(A.OUTCOMES)}")
    actor_type = _text(attrs.get(A.ACTOR_TYPE), 64) or A.DEFAULT_ACTOR_TYPE
    if not _VERB.match(actor_type):
        raise Rejected(f"{A.ACTOR_TYPE} {actor_type!r} must be lowercase letters and '_'")
    resource_type = _text(attrs.get(A.RESOURCE_TYPE), 256)
    if not resource_type:
        raise Rejected(f"{A.RESOURCE_TYPE} is missing")

    status = attrs.get(A.HTTP_STATUS)
    try:
        http_status = int(status) if status not in (None, "") else 0
    except (TypeError, ValueError):
        http_status = 0
    if not 0 <= http_status <= 65535:
        http_status = 0
    body = any_value(record.body) if record.HasField("body") else None

    return AuditEvent(
        id=event_id,
        tenant_id=tenant,
        user_id=user_id,
        actor_type=actor_type,
        action=action,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=_text(attrs.get(A.RESOURCE_ID), 1024),
        event_name=_text(event_name, 256),
        changes=_changes(attrs.get(A.CHANGES)),
        ip_address=_text(attrs.get(A.CLIENT_ADDRESS), 64),
        user_agent=_text(attrs.get(A.USER_AGENT), 1024),
        created_at=_time(record),
        trace_id=record.trace_id.hex() if len(record.trace_id) == 16 else "",
        span_id=record.span_id.hex() if len(record.span_id) == 8 else "",
        session_id=_text(attrs.get(A.SESSION_ID), 256),
        http_method=_text(attrs.get(A.HTTP_METHOD), 16).upper(),
        http_route=_text(attrs.get(A.HTTP_ROUTE), 1024),
        http_status=http_status,
        reason=_text(body) if isinstance(body, str) else "",
        attributes=extra,
    )


def enrich(
    event: AuditEvent,
    *,
    service_name: str,
    received_at: dt.datetime,
    retain_days: RetainDays,
    hot_days: RetainDays | None = None,
) -> None:
    event.received_at = received_at
    event.service_name = service_name[:256]
    day = event.created_at.date()
    event.retain_until = day + dt.timedelta(days=retain_days(event.tenant_id))
    event.hot_until = day + dt.timedelta(days=hot_days(event.tenant_id)) if hot_days else event.retain_until


def run(
    request: ExportLogsServiceRequest,
    identity: IngestIdentity,
    retain_days: RetainDays,
    hot_days: RetainDays | None = None,
) -> PipelineResult:
    now = dt.datetime.now(dt.timezone.utc)
    events: list[AuditEvent] = []
    result_counts = {"received": 0, "dropped": 0}
    reasons: list[str] = []
    by_reason: Counter[str] = Counter()
    for flat in flatten(request):
        result_counts["received"] += 1
        name = audit_event_name(flat.record)
        if name is None:
            result_counts["dropped"] += 1
            continue
        try:
            event = to_event(flat.record, name, identity)
        except Rejected as exc:
            reason = str(exc)
            reasons.append(f"record {flat.index}: {reason}")
            by_reason[reason.split(" ", 1)[0] if reason else "invalid"] += 1
            continue
        enrich(
            event, service_name=flat.service_name, received_at=now, retain_days=retain_days, hot_days=hot_days
        )
        _flag_bidi(event)  # issue 13 item 13, added after the fact
        events.append(event)
    return PipelineResult(
        table=events_to_table(events),
        received=result_counts["received"],
        dropped_non_audit=result_counts["dropped"],
        rejected=len(reasons),
        reasons=reasons,
        rejected_by_reason=by_reason,
    )


_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _flag_bidi(event: AuditEvent) -> None:
    """Issue 13 item 13: any text of the event with a bidirectional control → otel_audit.flags."""
    texts = [v for v in dataclasses.astuple(event) if isinstance(v, str)]
    texts += [text for kv in event.attributes.items() for text in kv]
    if any(ch in _BIDI for text in texts for ch in text):
        event.attributes.pop("otel_audit.flags", None)
        event.attributes["otel_audit.flags"] = "bidi_control"
