"""The retention job's own audit events (an archive written, archive files deleted, a legal hold
set or lifted), recorded through the same ingest path as every event an application sends:
an OTLP log record → ``IngestConsumer.ingest`` (decode/validate/enrich → group-commit writer),
as the admin API's access trail does.

Each event has a deterministic id (UUID v5 of what it describes), so a job that is interrupted
after recording and reruns records the same id again and the writer's dedupe keeps one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otel_audit import attributes as A
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.run import PipelineResult

SERVICE_NAME = "otel-audit"
ACTOR = "otel-audit-retention"
_NAMESPACE = uuid.UUID("6f1d0a52-4c1e-4f0e-9a57-0b6a1f3c5e21")
#: the consumer's ingest for an authenticated request (returns once the rows are durable)
Ingest = Callable[[ExportLogsServiceRequest, IngestIdentity], PipelineResult]


class RecordError(RuntimeError):
    """The pipeline refused a system event (a bug) or the store did not take it."""


def event_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


class SystemEvents:
    def __init__(self, ingest: Ingest) -> None:
        self._ingest = ingest

    def record(
        self,
        *,
        key: tuple[str, ...],
        tenant: str,
        action: str,
        resource_type: str,
        resource_id: str,
        reason: str,
        attributes: Mapping[str, str | int] | None = None,
        actor: str = ACTOR,
        actor_type: str = "system",
    ) -> str:
        """Store one event and return its id once it is durable."""
        attrs: dict[str, str | int] = {
            A.EVENT_ID: event_id(*key),
            A.TENANT_ID: tenant,
            A.USER_ID: actor,
            A.ACTOR_TYPE: actor_type,
            A.ACTION: action,
            A.RESOURCE_TYPE: resource_type,
            A.RESOURCE_ID: resource_id,
            **(attributes or {}),
        }
        record = LogRecord(
            time_unix_nano=time.time_ns(),
            event_name=f"audit.{resource_type}.{action}",
            attributes=[KeyValue(key=k, value=_value(v)) for k, v in attrs.items()],
        )
        record.body.string_value = reason
        request = ExportLogsServiceRequest(
            resource_logs=[
                ResourceLogs(
                    resource=Resource(
                        attributes=[KeyValue(key=A.SERVICE_NAME, value=AnyValue(string_value=SERVICE_NAME))]
                    ),
                    scope_logs=[ScopeLogs(log_records=[record])],
                )
            ]
        )
        try:
            result = self._ingest(request, IngestIdentity(tenant=tenant))
        except Exception as exc:
            raise RecordError(f"cannot record {record.event_name} for {tenant}: {exc}") from exc
        if result.rejected:
            raise RecordError(result.error_message())
        return str(attrs[A.EVENT_ID])


def _value(value: str | int) -> AnyValue:
    return AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=str(value))
