"""Stage 3b: event schemas (SPEC section 12). Records whose event name has a schema are checked;
a violation rejects the record (reported through OTLP partial success, naming the schema and the
failing path) or flags it (stored with the ``audit.schema.violation`` attribute). Event names
without a schema are not looked at beyond one dict lookup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from otel_audit.event_schemas import VIOLATION_ATTRIBUTE, EventSchema
from receiver.pipeline.decode import attribute_values
from receiver.pipeline.validate import Rejected

#: result labels of the per-schema counts
VALID, FLAGGED, REJECTED = "valid", "flagged", "rejected"


class SchemaStage:
    """The configured schemas by event name, and the per-schema outcome counts of one request."""

    def __init__(self, schemas: Iterable[EventSchema]) -> None:
        self.by_name = {s.event_name: s for s in schemas}

    def __bool__(self) -> bool:
        return bool(self.by_name)

    def check(self, record: LogRecord, name: str, counts: Counter[tuple[str, str, str]]) -> None:
        """Raise ``Rejected`` for a ``reject`` violation; mark the record for a ``flag`` one."""
        schema = self.by_name.get(name)
        if schema is None:
            return
        problem = schema.violation(attribute_values(record))
        if problem is None:
            counts[(schema.event_name, schema.version, VALID)] += 1
            return
        message = f"schema {schema.label}: {problem}"
        if schema.on_violation == "reject":
            counts[(schema.event_name, schema.version, REJECTED)] += 1
            raise Rejected(message)
        counts[(schema.event_name, schema.version, FLAGGED)] += 1
        record.attributes.append(KeyValue(key=VIOLATION_ATTRIBUTE, value=AnyValue(string_value=message)))
