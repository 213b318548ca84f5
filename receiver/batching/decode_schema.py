"""The message the batching path decodes OTLP log requests as: the real OTLP descriptors, less
what ingest never reads, so the native decoder (``ptars``) builds fewer Arrow columns.

Two changes, both invisible to the outcome:

- scalar fields nobody reads are dropped (``severity_number``, ``flags``, the
  ``dropped_attributes_count`` fields, ``key_strindex``): the decoder skips them as unknown
  fields, which checks their wire framing as strictly as decoding them would; string and message
  fields stay (their UTF-8 and framing are what makes upb refuse a body, and the two paths must
  refuse the same bodies);
- ``AnyValue.array_value`` and ``kvlist_value`` are read as bytes, not as nested messages: the
  fast path only asks whether they are set (a request holding one goes to the reference
  pipeline, which decodes the body with upb and so also refuses malformed nested bytes).

Measured on the bench's requests (512 records of 12 attributes): 2.4 → 2.1 µs a record.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

#: message → scalar fields the batching path never reads
DROPPED: dict[str, frozenset[str]] = {
    "KeyValue": frozenset({"key_strindex"}),
    "LogRecord": frozenset({"severity_number", "flags", "dropped_attributes_count"}),
    "Resource": frozenset({"dropped_attributes_count"}),
    "InstrumentationScope": frozenset({"dropped_attributes_count"}),
}
#: AnyValue's nested kinds, read as opaque bytes
AS_BYTES = frozenset({"array_value", "kvlist_value"})
_SCALARS = {
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32,
    descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
}


def _trimmed(module: object) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(proto)  # type: ignore[attr-defined]
    for message in proto.message_type:
        dropped = DROPPED.get(message.name, frozenset())
        kept = [f for f in message.field if f.name not in dropped]
        if any(f.type not in _SCALARS for f in message.field if f.name in dropped):
            raise AssertionError(f"{message.name}: only scalar fields may be dropped")
        del message.field[:]
        message.field.extend(kept)
        if message.name == "AnyValue":
            for f in message.field:
                if f.name in AS_BYTES:
                    f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                    f.ClearField("type_name")
    return proto


def export_logs_request() -> Descriptor:
    """ExportLogsServiceRequest as the batching path decodes it (its own descriptor pool)."""
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2, logs_pb2, logs_service_pb2):
        pool.Add(_trimmed(module))
    return pool.FindMessageTypeByName(logs_service_pb2.ExportLogsServiceRequest.DESCRIPTOR.full_name)
