"""SDK log records ⇄ JSON lines, for the on-disk spool (stdlib + the OTel SDK only).

One line a record, with everything the OTLP exporter sends: times, trace context, severity,
event name, body, attributes, resource and instrumentation scope. ``bytes`` values are tagged
(``{"$b": base64}``) because JSON has no bytes; everything else is plain JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import TraceFlags

FORMAT_VERSION = 1
_BYTES = "$b"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _BYTES in value:
            return base64.b64decode(value[_BYTES])
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    """Attribute sequences go back as tuples, as the SDK keeps them."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def encode_record(item: ReadableLogRecord) -> str:
    rec = item.log_record
    scope = item.instrumentation_scope
    doc = {
        "t": rec.timestamp,
        "ot": rec.observed_timestamp,
        "tid": rec.trace_id,
        "sid": rec.span_id,
        "tf": int(rec.trace_flags) if rec.trace_flags is not None else None,
        "st": rec.severity_text,
        "sn": rec.severity_number.value if rec.severity_number is not None else None,
        "e": rec.event_name,
        "b": _plain(rec.body),
        "a": _plain(dict(rec.attributes or {})),
        "r": _plain(dict(item.resource.attributes)) if item.resource is not None else {},
        "rs": item.resource.schema_url if item.resource is not None else "",
        "s": [scope.name, scope.version, scope.schema_url] if scope is not None else None,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def decode_record(line: str) -> ReadableLogRecord:
    doc = json.loads(line)
    attributes = {k: _tuples(v) for k, v in _typed(doc["a"]).items()}
    record = LogRecord(
        timestamp=doc["t"],
        observed_timestamp=doc["ot"],
        trace_id=doc["tid"],
        span_id=doc["sid"],
        trace_flags=TraceFlags(doc["tf"]) if doc["tf"] is not None else None,
        severity_text=doc["st"],
        severity_number=SeverityNumber(doc["sn"]) if doc["sn"] is not None else None,
        body=_typed(doc["b"]),
        attributes=attributes,
        event_name=doc["e"],
    )
    scope = InstrumentationScope(*doc["s"]) if doc["s"] is not None else None
    resource = Resource(_typed(doc["r"]), doc["rs"] or None)
    return ReadableLogRecord(log_record=record, resource=resource, instrumentation_scope=scope)


def encode_batch(batch: Sequence[ReadableLogRecord]) -> bytes:
    header = json.dumps({"v": FORMAT_VERSION, "n": len(batch)})
    return "\n".join([header, *(encode_record(item) for item in batch)]).encode("utf-8") + b"\n"


def decode_batch(data: bytes) -> list[ReadableLogRecord]:
    """Raises ValueError for a segment that is not a complete spool batch."""
    lines = data.decode("utf-8").splitlines()
    if not lines:
        raise ValueError("empty spool segment")
    header = json.loads(lines[0])
    if header.get("v") != FORMAT_VERSION or header.get("n") != len(lines) - 1:
        raise ValueError(f"spool segment header {lines[0][:80]!r} does not match its content")
    return [decode_record(line) for line in lines[1:]]
