"""OTLP partial success, made visible: the receiver keeps a request but rejects some of its
events (say, a tenant that is not the token's) and says why in the response, which the OTel
Python exporters discard. This observes those responses — a gRPC client interceptor, a
``requests`` response hook for OTLP/HTTP — and logs each distinct reason once."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

log = logging.getLogger("otel_audit")

#: "rejected 3 audit log record(s): record 0: why; record 2: why; and 1 more" → the whys
_PREFIX = re.compile(r"^rejected \d+ audit log record\(s\): ")
_RECORD = re.compile(r"^record \d+: ")
_MORE = re.compile(r"^and \d+ more$")
#: distinct reasons remembered (bounded: a reason that embeds a value could vary without end)
MAX_REASONS = 256


class PartialSuccessLog:
    """Logs each distinct rejection reason the receiver reports, once per process."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.rejected = 0

    def observe(self, response: Any) -> None:
        """``response``: an ``ExportLogsServiceResponse``."""
        partial = response.partial_success
        if not partial.rejected_log_records and not partial.error_message:
            return
        with self._lock:
            self.rejected += partial.rejected_log_records
            fresh = [r for r in reasons(partial.error_message) if r not in self._seen]
            if len(self._seen) >= MAX_REASONS:
                fresh = []  # enough said: later reasons stay in the rejected count only
            self._seen.update(fresh)
        for reason in fresh:
            log.warning(
                "otel_audit: the receiver rejected audit event(s) of an export (%d in this one): %s "
                "(each reason is logged once)",
                partial.rejected_log_records,
                reason,
            )

    def observe_http(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """A ``requests`` response hook: an OTLP/HTTP 200 carries the same response message."""
        try:
            if response.status_code == 200 and response.content:
                from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

                self.observe(ExportLogsServiceResponse.FromString(response.content))
        except Exception:  # never let observation break an export
            log.debug("otel_audit: unreadable OTLP/HTTP response", exc_info=True)
        return response


def reasons(message: str) -> list[str]:
    parts = [_RECORD.sub("", part.strip()) for part in _PREFIX.sub("", message.strip()).split("; ")]
    return list(dict.fromkeys(p for p in parts if p and not _MORE.match(p))) or ["(no reason given)"]


def grpc_interceptor(sink: PartialSuccessLog) -> Any:
    """A gRPC client interceptor handing each successful Export response to ``sink`` (made on
    demand: importing ``otel_audit`` does not load gRPC)."""
    import grpc

    class PartialSuccessInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
            outcome = continuation(client_call_details, request)
            try:
                response = outcome.result()
            except Exception:  # the call failed: the exporter handles that
                return outcome
            if hasattr(response, "partial_success"):
                sink.observe(response)
            return outcome

    return PartialSuccessInterceptor()
