"""Test helpers for applications: check emitted events against the receiver's event schemas.

>>> from otel_audit.testing import assert_valid
>>> otel_audit.force_flush()  # events reach the SDK (and the exporter) on a worker thread
>>> assert_valid(exporter.get_finished_logs(), "audit-schemas.yaml")

Teams point this at the file their receiver's ``schemas:`` reads, so schema drift fails the app's
CI rather than being rejected (or flagged) in production. Needs the ``jsonschema`` package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from otel_audit import attributes as attr
from otel_audit.event_schemas import EventSchema, load_schema_file

__all__ = ["assert_valid", "event_name_of"]


def event_name_of(attributes: Mapping[str, Any], record: Any = None) -> str:
    """The record's event name, else the ``event.name`` attribute, else what ``record()`` would name it."""
    name = getattr(record, "event_name", None) or attributes.get(attr.EVENT_NAME_ATTR)
    if name:
        return str(name)
    return attr.event_name_for(
        str(attributes.get(attr.RESOURCE_TYPE, "")), str(attributes.get(attr.ACTION, ""))
    )


def assert_valid(
    events: Iterable[Any],
    schemas: str | Path | Mapping[str, EventSchema],
    *,
    require_schema: bool = False,
) -> int:
    """Raise ``AssertionError`` naming every event that violates its schema; return how many
    events had a schema. ``events``: SDK ``LogData`` or log records (e.g. from
    ``InMemoryLogRecordExporter``), or attribute mappings. ``schemas``: a schema file or
    ``{event_name: EventSchema}``. ``require_schema``: an event without a schema is a failure too.
    """
    by_name = load_schema_file(schemas) if isinstance(schemas, (str, Path)) else schemas
    problems: list[str] = []
    checked = 0
    for index, item in enumerate(events):
        record = getattr(item, "log_record", item)
        attributes = dict(record) if isinstance(record, Mapping) else dict(record.attributes or {})
        name = event_name_of(attributes, None if isinstance(record, Mapping) else record)
        schema = by_name.get(name)
        if schema is None:
            if require_schema:
                problems.append(f"event {index} ({name}): no schema")
            continue
        checked += 1
        problem = schema.violation(attributes)
        if problem is not None:
            problems.append(f"event {index} ({name}): schema {schema.label}: {problem}")
    if problems:
        raise AssertionError("audit events do not match their schemas:\n" + "\n".join(problems))
    return checked
