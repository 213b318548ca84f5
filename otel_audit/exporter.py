"""Export pipeline construction: the OTLP exporter and the batching processor in front of it.

``build_exporter()`` is the one place an exporter is made. Unless disabled, the OTLP exporter is
wrapped in the on-disk spool (``otel_audit.spool``): events it cannot deliver are kept locally and
replayed in order when the receiver is back, also after the application restarts.
The OTLP exporters are imported lazily: importing ``otel_audit`` does not load gRPC.
"""

from __future__ import annotations

import os

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter

from otel_audit.config import PROTOCOL_GRPC, AuditSettings
from otel_audit.partial_success import PartialSuccessLog, grpc_interceptor


def build_exporter(settings: AuditSettings) -> LogRecordExporter:
    """The OTLP log exporter for ``settings``, behind the spool when ``settings.spool_dir`` is set."""
    exporter = build_otlp_exporter(settings)
    if settings.spool_dir is None:
        return exporter
    from otel_audit.spool import SpoolingExporter

    return SpoolingExporter(exporter, settings.spool_dir, settings.spool_max_bytes)


#: one per process: a reason is logged once, whichever exporter heard it
PARTIAL_SUCCESS = PartialSuccessLog()


def build_otlp_exporter(settings: AuditSettings) -> LogRecordExporter:
    """The OTLP log exporter for ``settings`` (gRPC or HTTP/protobuf); partial-success rejections
    in its responses are logged (``otel_audit.partial_success``)."""
    if settings.protocol == PROTOCOL_GRPC:
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter

        class ObservedGrpcExporter(GrpcExporter):  # type: ignore[misc]
            def _initialize_channel_and_stub(self) -> None:
                # the SDK (re)makes its stub here; ours goes through a channel with the interceptor
                super()._initialize_channel_and_stub()
                channel = grpc.intercept_channel(self._channel, grpc_interceptor(PARTIAL_SUCCESS))
                self._client = self._stub(channel)

        return ObservedGrpcExporter(
            endpoint=settings.endpoint,
            insecure=settings.insecure,
            headers=settings.header_dict() or None,
            timeout=settings.timeout,
        )
    import requests
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

    session = requests.Session()
    session.hooks["response"].append(PARTIAL_SUCCESS.observe_http)
    return HttpExporter(
        endpoint=settings.endpoint,
        headers=settings.header_dict() or None,
        timeout=settings.timeout,
        session=session,
    )


#: in-memory queue in front of the spool: it must hold what arrives while one export waits out its
#: timeout against a receiver that just went away (after that, batches go straight to disk)
SPOOLED_QUEUE_SIZE = 32_768


def build_processor(exporter: LogRecordExporter) -> LogRecordProcessor:
    """Batching in a worker thread: ``emit`` only enqueues, it never waits on the network.

    Queue size, batch size and delay follow the SDK's ``OTEL_BLRP_*`` variables; in front of the
    spool the queue defaults to ``SPOOLED_QUEUE_SIZE`` instead of the SDK's 2048.
    """
    from otel_audit.spool import SpoolingExporter

    if isinstance(exporter, SpoolingExporter) and not os.environ.get("OTEL_BLRP_MAX_QUEUE_SIZE"):
        return BatchLogRecordProcessor(exporter, max_queue_size=SPOOLED_QUEUE_SIZE)
    return BatchLogRecordProcessor(exporter)
