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
    #: the ``code`` label of ``otel_audit_refused_requests``
    reason: str = "internal"


class Unauthorized(ExportError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401
    reason = "unauthenticated"


class BadRequest(ExportError):
    """Undecodable payload: permanent, never retried."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400
    reason = "invalid_argument"


class TooLarge(ExportError):
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 413
    reason = "too_large"


class UnsupportedMediaType(ExportError):
    """OTLP/HTTP body in a content type other than protobuf or JSON (HTTP only)."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 415
    reason = "unsupported_media_type"


class RetryLater(ExportError):
    """Store down or receiver overloaded: retryable, with a hint of when."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503

    def __init__(self, message: str, retry_after: float = 5.0, reason: str = "unavailable") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


def status_message(error: ExportError) -> status_pb2.Status:
    """The ``google.rpc.Status`` an OTLP/HTTP error response carries as its body."""
    status = status_pb2.Status(code=error.grpc_code.value[0], message=str(error))
    if error.retry_after is not None:
        status.details.add().Pack(_retry_info(error.retry_after))
    return status


def _retry_info(retry_after: float) -> error_details_pb2.RetryInfo:
    seconds = int(retry_after)
    return error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=seconds, nanos=int((retry_after - seconds) * 1e9))
    )


def grpc_trailers(error: ExportError) -> tuple[tuple[str, bytes], ...]:
    """``google.rpc.retryinfo-bin`` plus the full ``grpc-status-details-bin`` for retryable errors."""
    if error.retry_after is None:
        return ()
    info = _retry_info(error.retry_after)
    status = status_message(error)
    return (
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
        ("grpc-status-details-bin", status.SerializeToString()),
    )


class Throttled(RetryLater):
    """One token or client address is over its fair share of in-flight requests: HTTP 429 and
    gRPC RESOURCE_EXHAUSTED, both retryable because a retry delay is sent (OTLP spec "Failures")."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429


class BodyTimeout(ExportError):
    """The body did not arrive within ``limits.body_timeout_seconds`` (a slow or stalled
    sender holding a slot): 408, and the connection is closed."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    http_status = 408
    reason = "body_timeout"
