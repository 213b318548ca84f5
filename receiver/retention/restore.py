"""Restore archived days for an investigation, and the per-tenant retention status.

``restore`` loads a tenant's archived days into ``audit_events_restored`` (never back into the
append-only events table): each file is checked against its manifest (SHA-256, row count)
before it is loaded, and the day's restored rows are read back and compared with the archived
rows afterwards. The restored table is a ReplacingMergeTree keyed by event id, so restoring a
day again (or after an interrupted restore) never doubles it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from receiver.retention.archive import ArchiveError
from receiver.retention.service import Progress, RetentionError, RetentionService, _NoProgress
from receiver.store import retention_sql as R

UTC = dt.timezone.utc


@dataclass
class RestoreReport:
    tenant: str
    table: str
    days: list[str] = field(default_factory=list)
    rows: int = 0
    already_restored: int = 0
    verified: bool = False


def _sorted(table: pa.Table) -> pa.Table:
    """Rows by (created_at, id); the id column is a UUID extension type Arrow cannot sort by."""
    ids = table.column("id")
    if isinstance(ids.type, pa.BaseExtensionType):
        ids = pa.chunked_array([c.storage for c in ids.chunks], ids.type.storage_type)
    keys = pa.table({"created_at": table.column("created_at"), "id": ids})
    order = pc.sort_indices(keys, sort_keys=[("created_at", "ascending"), ("id", "ascending")])
    return table.take(order)


def restore(
    service: RetentionService,
    tenant: str,
    since: dt.date,
    until: dt.date,
    progress: Progress | None = None,
) -> RestoreReport:
    """Days ``since`` (inclusive) to ``until`` (exclusive) of ``tenant`` → the restored table."""
    progress = progress or _NoProgress()
    if until <= since:
        raise RetentionError("--until must be after --since")
    report = RestoreReport(tenant=tenant, table=f"{service.store.database}.{R.RESTORED_TABLE}")
    with service._exclusive():
        service.ensure_tables()
        db = service.store.database
        days = [d for d in service.target.days(tenant) if since <= d < until]
        progress.start(f"restoring {tenant}", len(days))
        for day in days:
            manifest = service.target.manifest(tenant, day)
            if manifest is None:
                raise ArchiveError(f"{tenant} {day}: archive day has no manifest")
            archived = _sorted(
                pa.concat_tables([service.target.read_file(tenant, day, f) for f in manifest.files])
            )
            if archived.num_rows != manifest.rows:
                raise ArchiveError(f"{tenant} {day}: {archived.num_rows} rows, manifest says {manifest.rows}")
            have = service.store.query_table(R.day_count(db, R.RESTORED_TABLE, tenant, day, final=True))
            if have.column("n")[0].as_py() == manifest.rows:
                report.already_restored += 1
            else:
                service.store.insert_into(R.RESTORED_TABLE, archived)
            restored = service.store.query_table(R.day_rows(db, R.RESTORED_TABLE, tenant, day, final=True))
            restored = restored.select(archived.column_names)
            if not _sorted(restored).equals(archived):
                raise ArchiveError(f"{tenant} {day}: restored rows differ from the archived rows")
            report.days.append(day.isoformat())
            report.rows += manifest.rows
            progress.advance()
        report.verified = True
    return report


def status(service: RetentionService, tenants: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Per tenant: policy, hot rows and range, archived days and size, next expiry, hold."""
    today = dt.datetime.now(UTC).date()
    holds = {h.tenant_id: h for h in service.holds()}
    hot = {
        r["tenant_id"]: r
        for r in service.store.query_table(R.hot_summary(service.store.database)).to_pylist()
    }
    names = set(hot) | set(service.target.tenants()) | set(holds) | set(service.config.retention.tenants)
    out = []
    for tenant in sorted(names):
        if tenants is not None and tenant not in tenants:
            continue
        policy = service.config.retention.policy_for(tenant)
        retain = dt.timedelta(days=policy.retain_days)
        days = service.target.days(tenant)
        manifests = [m for m in (service.target.manifest(tenant, d) for d in days) if m is not None]
        h = hot.get(tenant)
        oldest_hot = h["oldest"].date() if h else None
        candidates = [d + retain for d in ([oldest_hot] if oldest_hot else []) + days[:1]]
        hold = holds.get(tenant)
        out.append(
            {
                "tenant": tenant,
                "preset": policy.preset,
                "hot_days": policy.hot_days,
                "retain_days": policy.retain_days,
                "hot_rows": h["n"] if h else 0,
                "hot_oldest": h["oldest"].isoformat() if h else None,
                "hot_newest": h["newest"].isoformat() if h else None,
                "archived_days": len(days),
                "archived_rows": sum(m.rows for m in manifests),
                "archived_bytes": sum(m.bytes for m in manifests),
                "archived_first_day": days[0].isoformat() if days else None,
                "archived_last_day": days[-1].isoformat() if days else None,
                "next_expiry": None if hold or not candidates else max(min(candidates), today).isoformat(),
                "legal_hold": asdict(hold) if hold else None,
            }
        )
    return out
