"""The stages in order, over one request: what to store, what was rejected and why."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from receiver.model import AuditEvent, events_to_table
from receiver.pipeline.auth import IngestIdentity
from receiver.pipeline.decode import flatten
from receiver.pipeline.enrich import RetainDays, enrich
from receiver.pipeline.filter import audit_event_name
from receiver.pipeline.validate import Rejected, to_event

#: how many rejection reasons the partial-success message names
MAX_REASONS_REPORTED = 5


@dataclass
class PipelineResult:
    table: pa.Table
    received: int = 0
    dropped_non_audit: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)

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
) -> PipelineResult:
    now = dt.datetime.now(dt.timezone.utc)
    events: list[AuditEvent] = []
    result_counts = {"received": 0, "dropped": 0}
    reasons: list[str] = []
    by_reason: Counter[str] = Counter()
    for flat in flatten(request):
        result_counts["received"] += 1
        name = audit_event_name(flat.record)
        if name is None:
            result_counts["dropped"] += 1
            continue
        try:
            event = to_event(flat.record, name, identity)
        except Rejected as exc:
            reason = str(exc)
            reasons.append(f"record {flat.index}: {reason}")
            by_reason[reason.split(" ", 1)[0] if reason else "invalid"] += 1
            continue
        enrich(
            event, service_name=flat.service_name, received_at=now, retain_days=retain_days, hot_days=hot_days
        )
        events.append(event)
    return PipelineResult(
        table=events_to_table(events),
        received=result_counts["received"],
        dropped_non_audit=result_counts["dropped"],
        rejected=len(reasons),
        reasons=reasons,
        rejected_by_reason=by_reason,
    )
