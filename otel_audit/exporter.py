"""Export pipeline construction: the OTLP exporter and the batching processor in front of it.

``build_exporter()`` is the one place an exporter is made. The on-disk spool (events the exporter
could not deliver are kept locally and replayed) will wrap its result here, so nothing else changes.
The OTLP exporters are imported lazily: importing ``otel_audit`` does not load gRPC.
"""

from __future__ import annotations

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter

from otel_audit.config import PROTOCOL_GRPC, AuditSettings


def build_exporter(settings: AuditSettings) -> LogRecordExporter:
    """The OTLP log exporter for ``settings`` (gRPC or HTTP/protobuf)."""
    if settings.protocol == PROTOCOL_GRPC:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter

        return GrpcExporter(
            endpoint=settings.endpoint,
            insecure=settings.insecure,
            headers=settings.header_dict() or None,
            timeout=settings.timeout,
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

    return HttpExporter(
        endpoint=settings.endpoint,
        headers=settings.header_dict() or None,
        timeout=settings.timeout,
    )


def build_processor(exporter: LogRecordExporter) -> LogRecordProcessor:
    """Batching in a worker thread: ``emit`` only enqueues, it never waits on the network.

    Queue size, batch size and delay follow the SDK's ``OTEL_BLRP_*`` variables.
    """
    return BatchLogRecordProcessor(exporter)
