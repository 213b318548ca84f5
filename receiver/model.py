"""The stored event: its columns, their Arrow types, and the conversions every stage shares."""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

UTC = dt.timezone.utc


@dataclass(slots=True)
class AuditEvent:
    """One audit event as it is stored (SPEC section 1). The ingest pipeline builds its tables
    from column tuples (:func:`rows_to_table`); this and :func:`events_to_table` build them by
    hand (seeds, tests)."""

    id: str
    tenant_id: str
    user_id: str
    action: str
    resource_type: str
    event_name: str
    created_at: dt.datetime
    actor_type: str = "user"
    outcome: str = "success"
    resource_id: str = ""
    changes: str = ""
    ip_address: str = ""
    user_agent: str = ""
    received_at: dt.datetime | None = None
    service_name: str = ""
    trace_id: str = ""
    span_id: str = ""
    session_id: str = ""
    http_method: str = ""
    http_route: str = ""
    http_status: int = 0
    reason: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    retain_until: dt.date | None = None
    #: the day it may leave the hot store for the archive (None: at retain_until)
    hot_until: dt.date | None = None


_TS = pa.timestamp("us", tz="UTC")
_STR = pa.string()

#: Column name → Arrow type, in table order. The DDL in store/schema mirrors it.
ARROW_SCHEMA = pa.schema(
    [
        ("id", _STR),
        ("tenant_id", _STR),
        ("user_id", _STR),
        ("actor_type", _STR),
        ("action", _STR),
        ("outcome", _STR),
        ("resource_type", _STR),
        ("resource_id", _STR),
        ("event_name", _STR),
        ("changes", _STR),
        ("ip_address", _STR),
        ("user_agent", _STR),
        ("created_at", _TS),
        ("received_at", _TS),
        ("service_name", _STR),
        ("trace_id", _STR),
        ("span_id", _STR),
        ("session_id", _STR),
        ("http_method", _STR),
        ("http_route", _STR),
        ("http_status", pa.uint16()),
        ("reason", _STR),
        ("attributes", pa.map_(_STR, _STR)),
        ("retain_until", pa.date32()),
        ("hot_until", pa.date32()),
    ]
)
COLUMNS: tuple[str, ...] = tuple(ARROW_SCHEMA.names)

#: SPEC section 5: the CSV export's columns, in order.
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "created_at",
    "tenant_id",
    "user_id",
    "actor_type",
    "action",
    "outcome",
    "resource_type",
    "resource_id",
    "event_name",
    "ip_address",
    "user_agent",
    "changes",
    "reason",
    "service_name",
    "trace_id",
    "received_at",
)

#: Columns an API answer carries (every stored column but internal bookkeeping).
API_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in ("retain_until", "hot_until"))


_ROW = operator.attrgetter(*COLUMNS)
_ATTRIBUTES = COLUMNS.index("attributes")
_HOT_UNTIL = COLUMNS.index("hot_until")
_RETAIN_UNTIL = COLUMNS.index("retain_until")


def events_to_table(events: Iterable[AuditEvent]) -> pa.Table:
    """Column-wise conversion: one tuple per event, transposed, then one Arrow array a column."""
    rows = [_ROW(ev) for ev in events]
    if not rows:
        return ARROW_SCHEMA.empty_table()
    columns: list[Any] = list(zip(*rows, strict=True))
    columns[_ATTRIBUTES] = [list(attrs.items()) for attrs in columns[_ATTRIBUTES]]
    # hot_until defaults to retain_until
    columns[_HOT_UNTIL] = [
        hot if hot is not None else retain
        for hot, retain in zip(columns[_HOT_UNTIL], columns[_RETAIN_UNTIL], strict=True)
    ]
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, ARROW_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


#: The columns :func:`receiver.pipeline.validate.to_row` gives for one record, in this order
#: (``created_at`` as integer microseconds since the epoch); enrich adds the other four.
RECORD_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in ("received_at", "service_name", "retain_until", "hot_until")
)


def rows_to_table(
    rows: list[tuple[Any, ...]],
    *,
    received_at_us: int,
    service_names: list[str],
    retain_until: list[int],
    hot_until: list[int],
) -> pa.Table:
    """The pipeline's table: ``rows`` in RECORD_COLUMNS order, transposed once, plus the enriched
    columns (timestamps as integer microseconds, dates as day numbers)."""
    if not rows:
        return ARROW_SCHEMA.empty_table()
    data: dict[str, Any] = dict(zip(RECORD_COLUMNS, zip(*rows, strict=True), strict=True))
    data["service_name"] = service_names
    data["retain_until"] = retain_until
    data["hot_until"] = hot_until
    arrays = [
        pa.repeat(pa.scalar(received_at_us, type=_TS), len(rows))
        if f.name == "received_at"
        else pa.array(data[f.name], type=f.type)
        for f in ARROW_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def iso_utc(value: dt.datetime | None) -> str | None:
    """ISO 8601 UTC with microseconds, ``2026-11-26T06:46:47.494864Z`` (SPEC section 5)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def changes_for_api(text: str | None) -> Any:
    """The stored change set as a JSON object; a stored text that is not standard JSON (NaN or
    Infinity stored before ingest refused them) is returned as the raw string, as the engine's
    JSON export does, so that one row cannot break a page of results."""
    if not text:
        return None
    try:
        return json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return text


def row_to_api(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row (as Arrow's to_pylist gives it) → the JSON object the API returns."""
    out: dict[str, Any] = {}
    for name in API_COLUMNS:
        if name not in row:
            continue
        value = row[name]
        if name in ("created_at", "received_at"):
            value = iso_utc(value)
        elif name == "id":
            value = str(value)
        elif name == "attributes":
            value = dict(value or [])
        elif name == "changes":
            value = changes_for_api(value)
        elif name == "http_status":
            value = value or None
        out[name] = value
    return out
