"""OTLP/gRPC: ``opentelemetry.proto.collector.logs.v1.LogsService/Export`` on a grpcio server.

Thin: read the authorization metadata, hand the request to the consumer, map errors.
"""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from receiver.ingest import IngestConsumer
from receiver.transport.errors import ExportError, grpc_trailers

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"


class _LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, consumer: IngestConsumer) -> None:
        self._consumer = consumer

    def Export(  # noqa: N802 - the generated servicer's name
        self, request: ExportLogsServiceRequest, context: grpc.ServicerContext
    ) -> ExportLogsServiceResponse:
        authorization = None
        for key, value in context.invocation_metadata():
            if key == "authorization":
                authorization = value if isinstance(value, str) else value.decode("latin-1")
                break
        try:
            return self._consumer.consume(request, authorization, "grpc")
        except ExportError as exc:
            trailers = grpc_trailers(exc)
            if trailers:
                context.set_trailing_metadata(trailers)
            context.abort(exc.grpc_code, str(exc))
            raise  # unreachable: abort raises


class GrpcReceiver:
    def __init__(
        self,
        consumer: IngestConsumer,
        listen: str,
        *,
        max_workers: int = 16,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="otlp-grpc"),
            options=[("grpc.max_receive_message_length", max_message_bytes)],
            compression=None,
        )
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsService(consumer), self._server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self.port = self._server.add_insecure_port(listen)
        if self.port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {listen}")

    def start(self) -> None:
        self._server.start()
        for service in ("", _LOGS_SERVICE):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 5.0) -> None:
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
