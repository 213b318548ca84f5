"""Failure kinds of an export request and their OTLP status codes, in one place
(opentelemetry-proto docs/specification.md: "Failures")."""

from __future__ import annotations

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2


class ExportError(Exception):
    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int = 500
    retry_after: float | None = None


class Unauthorized(ExportError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class BadRequest(ExportError):
    """Undecodable payload: permanent, never retried."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class TooLarge(ExportError):
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 413


class RetryLater(ExportError):
    """Store down or receiver overloaded: retryable, with a hint of when."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def grpc_trailers(error: ExportError) -> tuple[tuple[str, bytes], ...]:
    """``google.rpc.retryinfo-bin`` plus the full ``grpc-status-details-bin`` for retryable errors."""
    if error.retry_after is None:
        return ()
    seconds = int(error.retry_after)
    delay = Duration(seconds=seconds, nanos=int((error.retry_after - seconds) * 1e9))
    info = error_details_pb2.RetryInfo(retry_delay=delay)
    status = status_pb2.Status(code=error.grpc_code.value[0], message=str(error))
    status.details.add().Pack(info)
    return (
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
        ("grpc-status-details-bin", status.SerializeToString()),
    )
