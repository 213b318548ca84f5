"""The consumer both OTLP transports hand their requests to (the Collector's shape: thin
transports, one consumer): protobuf bodies raw, to the batching path (receiver/batching: many
requests decoded and validated at once), OTLP JSON and the receiver's own events decoded, one
at a time. Authenticates, runs the pipeline, hands the rows to the writer
and waits until they are durable — fsync'd in the journal (``ingest.ack: journal``) or inserted
by the group commit (``ingest.ack: store``) — then answers with OTLP partial success; failures
are raised as :mod:`receiver.transport.errors` kinds, which each transport maps to its status
codes."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from receiver import pipeline
from receiver.batching.batcher import Pending, RequestBatcher
from receiver.batching.process import Outcome, process
from receiver.config import Config
from receiver.journal import JournalError
from receiver.pipeline.auth import IngestAuthenticator, IngestIdentity, Unauthenticated
from receiver.pipeline.schemas import SchemaStage
from receiver.store.base import StoreUnavailable
from receiver.telemetry import ReceiverMetrics
from receiver.transport.errors import ExportError, RetryLater, Unauthorized
from receiver.writer import EventWriter, Overloaded

log = logging.getLogger("otel_audit.receiver")


class MismatchLog:
    """Logs events dropped because their tenant is not their token's: at most once a minute per
    (token tenant, claimed tenant), with the count since the last line (the metric alone is silent)."""

    def __init__(self, interval_seconds: float = 60.0) -> None:
        self.interval = interval_seconds
        self._lock = threading.Lock()  # transports call in from several threads
        self._last: dict[tuple[str | None, str], float] = {}
        self._pending: dict[tuple[str | None, str], int] = {}

    def note(self, token_tenant: str | None, claimed: str, count: int) -> None:
        key = (token_tenant, claimed)
        now = time.monotonic()
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + count
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                return
            if len(self._last) > 10_000:  # bounded: a sender cycling through tenant ids
                self._last.clear()
                self._pending = {key: self._pending[key]}
            self._last[key] = now
            dropped = self._pending.pop(key)
        log.warning(
            "dropped %d audit event(s) claiming tenant %r sent with an ingest token of tenant %r: "
            "audit.tenant.id must match the token's tenant (or be left out); "
            "logged at most once a minute for this pair",
            dropped,
            claimed[:256],
            token_tenant,
        )


class IngestConsumer:
    def __init__(self, config: Config, writer: EventWriter, metrics: ReceiverMetrics) -> None:
        self._auth = IngestAuthenticator((t.token, t.tenant) for t in config.ingest_tokens)
        self._retention = config.retention
        self._commit_timeout = config.ingest.commit_timeout_seconds
        self._writer = writer
        self.metrics = metrics
        rules = [rule.to_schema() for rule in config.schemas]
        self._schemas = SchemaStage(rules) if rules else None  # type: ignore[arg-type]
        for rule in config.schemas:  # every configured schema shows in /metrics, at 0 until used
            for result in ("valid", "flagged", "rejected"):
                metrics.schema_events.labels(rule.event_name, rule.version, result)
        self._mismatch_log = MismatchLog()
        self._batcher = RequestBatcher(self._process_batch, writer, self._count_batched)

    def _process_batch(self, bodies: list[bytes], identities: list[IngestIdentity]) -> list[Outcome]:
        return process(bodies, identities, self._retain_days, self._hot_days, self._schemas)

    def _count_batched(self, pending: Pending, result: pipeline.PipelineResult) -> None:
        self._count(result, pending.identity, pending.transport)

    def _count(self, result: pipeline.PipelineResult, identity: IngestIdentity, transport: str) -> None:
        m = self.metrics
        for labels, n in result.schema_counts.items():
            m.schema_events.labels(*labels).inc(n)
        m.received.labels(transport).inc(result.received)
        m.dropped_non_audit.inc(result.dropped_non_audit)
        for reason, n in result.rejected_by_reason.items():
            m.rejected.labels(reason).inc(n)
        for claimed, n in result.tenant_mismatches.items():
            self._mismatch_log.note(identity.tenant, claimed, n)

    def close(self) -> None:
        """Stop the batching worker (requests still queued are answered first)."""
        self._batcher.close()

    def _retain_days(self, tenant: str) -> int:
        return self._retention.policy_for(tenant).retain_days

    def authenticate(self, authorization: str | None) -> IngestIdentity:
        """The tenant the credential fixes; transports call it before reading a body."""
        try:
            return self._auth.authenticate(authorization)
        except Unauthenticated as exc:
            raise Unauthorized(str(exc)) from exc

    def count_refused(self, error: ExportError) -> None:
        """Every transport counts a refused request here, once, by reason."""
        self.metrics.refused_requests.labels(error.reason).inc()

    def _hot_days(self, tenant: str) -> int:
        return self._retention.policy_for(tenant).hot_days

    def ingest(
        self, request: ExportLogsServiceRequest, identity: IngestIdentity, transport: str
    ) -> pipeline.PipelineResult:
        """Pipeline + writer for an already authenticated request; returns once its rows are
        durable. The receiver's own audit events (reads of the audit log) come in here too."""
        result = pipeline.run(request, identity, self._retain_days, self._hot_days, self._schemas)
        self._count(result, identity, transport)
        if result.accepted:
            pending = None
            try:
                pending = self._writer.submit(result.table)
                pending.result(timeout=self._commit_timeout)
            except Exception as exc:
                if isinstance(exc, FutureTimeout) and pending is not None:
                    # Not yet taken by the writer: withdraw it, so the client's retry is the only
                    # copy. Already being written: the retry is absorbed by the idempotency check.
                    pending.cancel()
                raise _retry_error(exc) from exc
        return result

    def consume_protobuf(
        self, body: bytes, authorization: str | None, transport: str
    ) -> ExportLogsServiceResponse:
        """A raw OTLP protobuf body through the batching path (receiver/batching): decoded and
        validated with the requests queued beside it; answers once its rows are durable."""
        identity = self.authenticate(authorization)
        pending = self._batcher.submit(body, identity, transport)
        try:
            result: pipeline.PipelineResult = pending.future.result(timeout=self._commit_timeout)
        except ExportError:
            raise
        except Exception as exc:
            if isinstance(exc, FutureTimeout) and not pending.future.cancel():
                pending.abandon()
            raise _retry_error(exc) from exc
        return _response(result)

    def consume(
        self, request: ExportLogsServiceRequest, authorization: str | None, transport: str
    ) -> ExportLogsServiceResponse:
        identity = self.authenticate(authorization)
        return _response(self.ingest(request, identity, transport))


def _response(result: pipeline.PipelineResult) -> ExportLogsServiceResponse:
    response = ExportLogsServiceResponse()
    if result.rejected:
        response.partial_success.CopyFrom(
            ExportLogsPartialSuccess(
                rejected_log_records=result.rejected, error_message=result.error_message()
            )
        )
    return response


def _retry_error(exc: BaseException) -> ExportError:
    """What a client is told when its rows are not known to be durable: retry later, with why."""
    if isinstance(exc, FutureTimeout):
        return RetryLater("audit store is slow; retry later", retry_after=5.0, reason="store_timeout")
    if isinstance(exc, Overloaded):
        return RetryLater(f"receiver overloaded ({exc}); retry later", retry_after=1.0, reason="overloaded")
    if isinstance(exc, JournalError):
        log.error("journal append failed: %s", str(exc)[:500])
        return RetryLater(
            "audit journal failed to write; retry later", retry_after=5.0, reason="journal_error"
        )
    if isinstance(exc, StoreUnavailable):
        return RetryLater("audit store unavailable; retry later", retry_after=5.0, reason="store_unavailable")
    # Whatever failed, these rows are not known to be stored: the client must send them again (a
    # retry of rows that did land is absorbed by the idempotency check).
    log.error("store insert failed: %s", str(exc)[:500])
    return RetryLater("audit store failed to write; retry later", retry_after=5.0, reason="store_error")
