"""The stages in order, over one request: what to store, what was rejected and why."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from receiver.model import RECORD_COLUMNS, rows_to_table
from receiver.pipeline import enrich
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.decode import batches
from receiver.pipeline.enrich import RetainDays
from receiver.pipeline.filter import audit_event_name
from receiver.pipeline.flags import flag_bidi
from receiver.pipeline.schemas import SchemaStage
from receiver.pipeline.validate import Rejected, Row, TenantMismatch, to_row
from receiver.pipeline.window import TimeWindow

#: how many rejection reasons the partial-success message names
MAX_REASONS_REPORTED = 5
_TENANT = RECORD_COLUMNS.index("tenant_id")
_CREATED = RECORD_COLUMNS.index("created_at")


@dataclass
class PipelineResult:
    table: pa.Table
    received: int = 0
    dropped_non_audit: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    #: (event name, schema version, valid|flagged|rejected) → records
    schema_counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: claimed tenant → records rejected because it is not the ingest token's tenant
    tenant_mismatches: Counter[str] = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        return self.table.num_rows

    def error_message(self) -> str:
        if not self.rejected:
            return ""
        shown = "; ".join(self.reasons[:MAX_REASONS_REPORTED])
        more = (
            f"; and {self.rejected - len(self.reasons[:MAX_REASONS_REPORTED])} more"
            if self.rejected > MAX_REASONS_REPORTED
            else ""
        )
        return f"rejected {self.rejected} audit log record(s): {shown}{more}"


def run(
    request: ExportLogsServiceRequest,
    identity: IngestIdentity,
    retain_days: RetainDays,
    hot_days: RetainDays | None = None,
    schemas: SchemaStage | None = None,
) -> PipelineResult:
    received_at = enrich.received_at_us(dt.datetime.now(dt.timezone.utc))
    window = TimeWindow(received_at, retain_days)
    rows: list[Row] = []
    services: list[str] = []
    reasons: list[str] = []
    by_reason: Counter[str] = Counter()
    mismatches: Counter[str] = Counter()
    received = dropped = 0
    schema_counts: Counter[tuple[str, str, str]] = Counter()
    for raw_service, records in batches(request):
        kept = len(rows)
        service = enrich.service_name(raw_service)
        for index, record in enumerate(records, received):
            name = audit_event_name(record)
            if name is None:
                dropped += 1
                continue
            try:
                if schemas is not None and name in schemas.by_name:
                    schemas.check(record, name, schema_counts)
                row = to_row(record, name, identity)
                window.check(row[_TENANT], row[_CREATED])
                rows.append(flag_bidi(row, service))
            except Rejected as exc:
                reason = str(exc)
                reasons.append(f"record {index}: {reason}")
                by_reason[reason.split(" ", 1)[0] if reason else "invalid"] += 1
                if isinstance(exc, TenantMismatch):
                    mismatches[exc.claimed] += 1
        received += len(records)
        services += [service] * (len(rows) - kept)
    tenants = [row[_TENANT] for row in rows]
    created = [row[_CREATED] for row in rows]
    retain_until, hot_until = enrich.retention_days(tenants, created, retain_days, hot_days)
    return PipelineResult(
        table=rows_to_table(
            rows,
            received_at_us=received_at,
            service_names=services,
            retain_until=retain_until,
            hot_until=hot_until,
        ),
        received=received,
        dropped_non_audit=dropped,
        rejected=len(reasons),
        reasons=reasons,
        rejected_by_reason=by_reason,
        schema_counts=schema_counts,
        tenant_mismatches=mismatches,
    )
