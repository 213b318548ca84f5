"""The retention job's own audit events (an archive written, archive files deleted, a legal hold
set or lifted), recorded through the same ingest path as every event an application sends:
an OTLP log record → ``IngestConsumer.ingest`` (decode/validate/enrich → group-commit writer),
as the admin API's access trail does.

Each event has a deterministic id, so a job that is interrupted after recording and reruns
records the same id again and the writer's dedupe keeps one. The id is keyed (HMAC-SHA256 of
what the event describes under a secret made once and kept beside the store, 0600): an ingest
client who can guess what the job will record (an archive file's name is predictable) cannot
send that id first and have the job's own event dropped as a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from otel_audit import attributes as A
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.run import PipelineResult

SERVICE_NAME = "otel-audit"
ACTOR = "otel-audit-retention"
#: the key's file, in the store's integrity state directory (``<data dir>/integrity``; for a
#: server store ``./otel-audit-integrity``)
ID_KEY_FILE = "retention-event-id.key"
#: the consumer's ingest for an authenticated request (returns once the rows are durable)
Ingest = Callable[[ExportLogsServiceRequest, IngestIdentity], PipelineResult]


class RecordError(RuntimeError):
    """The pipeline refused a system event (a bug) or the store did not take it."""


def event_id(key: bytes, *parts: str) -> str:
    """The id of the event that ``parts`` describe: unguessable without ``key``, stable with it."""
    digest = hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def load_id_key(directory: Path) -> bytes:
    """The secret keying the job's event ids: 32 random bytes made once in ``directory``."""
    path = directory / ID_KEY_FILE
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = directory / f".{ID_KEY_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def id_key_for(store: Any) -> bytes:
    """The id key of ``store``'s retention job (beside its integrity state)."""
    from receiver.integrity.setup import state_dir

    return load_id_key(state_dir(store) or Path.cwd() / "otel-audit-integrity")


class SystemEvents:
    def __init__(self, ingest: Ingest, id_key: bytes) -> None:
        self._ingest = ingest
        self._id_key = id_key

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
            A.EVENT_ID: event_id(self._id_key, *key),
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
