"""OTLP/gRPC: ``opentelemetry.proto.collector.logs.v1.LogsService/Export`` on a grpcio server.

Thin: read the authorization metadata, hand the raw body to the consumer's batching path, map errors.
The request arrives as raw bytes (no generated deserializer) so that an undecodable payload is
answered INVALID_ARGUMENT, as the OTLP spec asks, instead of grpcio's generic INTERNAL, and so
that the credential is checked before any decoding work. gzip-compressed requests are inflated
by grpcio; ``max_message_bytes`` bounds the inflated message (RESOURCE_EXHAUSTED above it).
Concurrent calls are capped in total (UNAVAILABLE) and per token and peer address
(RESOURCE_EXHAUSTED), both with ``google.rpc.RetryInfo``, so the OTel exporters retry later.
The port is never shared (``grpc.so_reuseport`` off: a second receiver fails to bind).
"""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from receiver.batching.osthread import name_os_thread
from receiver.ingest import IngestConsumer
from receiver.transport.errors import ExportError, grpc_trailers
from receiver.transport.fairness import FairSlots

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: how long a gRPC call over its share (or with every slot taken) waits for a slot before it is
#: refused with RetryInfo: a burst of quick calls from one client is served in turn
SLOT_WAIT_SECONDS = 2.0
_LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"


def peer_host(peer: str) -> str:
    """``ipv4:127.0.0.1:5000`` / ``ipv6:[::1]:5000`` / ``unix:/x`` → the address without port."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0].strip("[]")
    return peer


class _LogsService:
    def __init__(self, consumer: IngestConsumer, slots: FairSlots) -> None:
        self._consumer = consumer
        self._slots = slots

    def export(self, body: bytes, context: grpc.ServicerContext) -> ExportLogsServiceResponse:
        authorization = None
        for key, value in context.invocation_metadata():
            if key == "authorization":
                authorization = value if isinstance(value, str) else value.decode("latin-1")
                break
        try:
            self._consumer.authenticate(authorization)
            with self._slots.slot(authorization, peer_host(context.peer()), wait=SLOT_WAIT_SECONDS):
                return self._consumer.consume_protobuf(body, authorization, "grpc")
        except ExportError as exc:
            self._consumer.count_refused(exc)
            trailers = grpc_trailers(exc)
            if trailers:
                context.set_trailing_metadata(trailers)
            context.abort(exc.grpc_code, str(exc))
            raise  # unreachable: abort raises

    def handler(self) -> grpc.GenericRpcHandler:
        method = grpc.unary_unary_rpc_method_handler(
            self.export,
            request_deserializer=None,  # raw bytes: the batching path maps failures to INVALID_ARGUMENT
            response_serializer=ExportLogsServiceResponse.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(_LOGS_SERVICE, {"Export": method})


class GrpcReceiver:
    def __init__(
        self,
        consumer: IngestConsumer,
        listen: str,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        slots: FairSlots | None = None,
        handshake_timeout: float = 10.0,
    ) -> None:
        slots = slots or FairSlots(32, 32, 32)
        if not slots.max_waiting:
            slots.max_waiting = slots.total
        # workers for the calls in flight, those waiting briefly for a slot, and a few more so
        # that calls beyond both are answered (with RetryInfo) rather than queued; grpcio's own
        # limit (RESOURCE_EXHAUSTED without RetryInfo) is only a backstop
        workers = slots.total + slots.max_waiting + 8
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix="otlp-grpc",
                initializer=name_os_thread,
                initargs=("otlp-grpc",),
            ),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
                ("grpc.server_handshake_timeout_ms", int(handshake_timeout * 1000)),
            ],
            maximum_concurrent_rpcs=workers * 4,
            compression=None,
        )
        self._server.add_generic_rpc_handlers((_LogsService(consumer, slots).handler(),))
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        try:
            self.port = self._server.add_insecure_port(listen)
        except RuntimeError as exc:  # grpcio >= 1.5x raises instead of returning 0
            raise OSError(
                f"cannot listen for OTLP/gRPC on {listen}: address in use or not available"
            ) from exc
        if self.port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {listen}")

    def start(self) -> None:
        self._server.start()
        for service in ("", _LOGS_SERVICE):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = 5.0) -> None:
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()
