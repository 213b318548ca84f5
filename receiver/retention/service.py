"""The retention job: policies → TTL, due partitions → verified archive, expired archive days →
deleted (and recorded), legal holds stopping every expiry and deletion of a tenant.

The events table is partitioned by the month of ``hot_until`` (created_at + the tenant's
``hot_days``, fixed at ingest). How rows leave the hot store (every step safe to interrupt and
rerun):

1. once a partition's month is over (every row in it is past its hot_until), ``MOVE PARTITION``
   takes it from ``audit_events`` to the staging table (atomic; a late event for that month
   lands in a new part and goes out with the next run);
2. per tenant and day: the staged rows not yet in that day's archive files (by event id) are
   written as a new Parquet file, which is re-read and compared with the rows, hash and count,
   before the manifest lists it;
3. only when every staged row of the partition is in a verified archive file is the staging
   partition dropped.

A rerun after a kill resumes from the staging table: days whose rows are all archived already
write nothing, so no day is archived twice and none is lost.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import fcntl
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from receiver.config import Config
from receiver.integrity.retention_records import ACTION, covered_ranges, record_attributes, uncovered
from receiver.retention.archive import (
    ArchiveError,
    ArchiveFile,
    ArchiveTarget,
    DayManifest,
    parquet_bytes,
    sha256_hex,
)
from receiver.retention.events import SystemEvents
from receiver.store import retention_sql as R
from receiver.store.base import SqlStore
from receiver.store.sql import EVENTS_TABLE

log = logging.getLogger("otel_audit.retention")
UTC = dt.timezone.utc


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...


class _NoProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


#: seals the tamper-evidence chains of these tenants now; returns the checkpoints (as dicts)
Sealer = Callable[[tuple[str, ...]], list[dict[str, Any]]]


class RetentionError(RuntimeError):
    """A retention operation cannot be done; the message says why."""


@dataclass
class Hold:
    tenant_id: str
    reason: str
    actor: str
    since: str


@dataclass
class RunReport:
    months_archived: list[str] = field(default_factory=list)
    days_archived: int = 0
    rows_archived: int = 0
    archive_days_deleted: list[str] = field(default_factory=list)
    ttl_applied: bool = False
    partitions_expired: int = 0
    held: list[str] = field(default_factory=list)


def month_first_day(month: int) -> dt.date:
    return dt.date(month // 100, month % 100, 1)


def month_last_day(month: int) -> dt.date:
    year, mon = month // 100, month % 100
    return dt.date(year, mon, calendar.monthrange(year, mon)[1])


def utc_today() -> dt.date:
    return dt.datetime.now(UTC).date()


class RetentionService:
    """One per process that owns the store (``serve``, or a CLI command on ``--store``)."""

    def __init__(
        self, store: SqlStore, config: Config, events: SystemEvents, seal: Sealer | None = None
    ) -> None:
        self.store = store
        self.config = config
        self.events = events
        self._seal = seal
        self.target = ArchiveTarget(config.archive.path)
        self._lock = threading.Lock()
        self._tables_ready = False
        #: (tenant, origin) -> (leaf indexes, manifest hashes) archived in the current partition
        self._leaves_archived: dict[tuple[str, str], tuple[list[int], list[str]]] = {}

    # -- helpers ---------------------------------------------------------------------------
    def _rows(self, statement) -> list[dict]:  # type: ignore[no-untyped-def]
        return self.store.query_table(statement).to_pylist()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One retention operation at a time: in this process (lock) and, for a local archive,
        across processes sharing it (flock on ``<archive>/.lock``)."""
        with self._lock:
            if not self.target.local:
                yield
                return
            Path(self.target.root).mkdir(mode=0o700, parents=True, exist_ok=True)  # personal data
            with open(Path(self.target.root) / ".lock", "a+b") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError as exc:
                    raise RetentionError(f"another retention job is running on {self.target.root}") from exc
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_tables(self) -> None:
        """Create the staging/restored tables, following the events table's columns."""
        if self._tables_ready:
            return
        db = self.store.database
        for statement in R.side_tables(db):
            self.store.execute(statement)
        events_cols = [(r["name"], r["type"]) for r in self._rows(R.columns(db, EVENTS_TABLE))]
        for table in (R.STAGING_TABLE, R.RESTORED_TABLE):
            have = {r["name"] for r in self._rows(R.columns(db, table))}
            missing = [(n, t) for n, t in events_cols if n not in have]
            if not missing:
                continue
            if table == R.STAGING_TABLE and not self._rows(R.partitions(db, R.STAGING_TABLE)):
                # MOVE PARTITION needs identical structure: an empty staging table is re-created
                self.store.execute(R.drop_table(db, table))
                for statement in R.side_tables(db):
                    self.store.execute(statement)
            else:
                for name, type_ in missing:
                    self.store.execute(R.add_column(db, table, name, type_))
        self._tables_ready = True

    # -- legal holds and the TTL -------------------------------------------------------------
    def holds(self) -> list[Hold]:
        return [
            Hold(r["tenant_id"], r["reason"], r["actor"], r["since"].isoformat())
            for r in self._rows(R.current_holds(self.store.database))
        ]

    def held(self) -> set[str]:
        return {h.tenant_id for h in self.holds()}

    def set_hold(self, tenant: str, held: bool, reason: str = "", actor: str = "cli") -> bool:
        """Set or lift a hold; returns False when nothing changed. The TTL follows at once."""
        if not tenant:
            raise RetentionError("a legal hold needs a tenant")
        with self._exclusive():
            if (tenant in self.held()) == held:
                return False
            self.store.execute(R.record_hold(self.store.database, tenant, held, reason, actor))
            self._apply_ttl()
            stamp = dt.datetime.now(UTC).isoformat()
            self.events.record(
                key=("legal-hold", tenant, str(held), stamp),
                tenant=tenant,
                action="create" if held else "delete",
                resource_type="legal_hold",
                resource_id=tenant,
                reason=reason or ("legal hold set" if held else "legal hold lifted"),
                actor=actor,
                actor_type="user",
            )
            return True

    def ttl_spec(self, held: set[str]) -> dict:  # type: ignore[type-arg]
        retention = self.config.retention
        tenants = sorted(retention.tenants)
        return {
            "tenants": tenants,
            "days": [retention.policy_for(t).retain_days for t in tenants],
            "default": retention.default.retain_days,
            "held": sorted(held),
        }

    def _apply_ttl(self) -> bool:
        """Make the table TTL match the current policies and holds (only when they changed)."""
        db = self.store.database
        spec = self.ttl_spec(self.held())
        text = json.dumps(spec, sort_keys=True)
        last = self._rows(R.last_ttl_spec(db))
        if last and last[0]["spec"] == text:
            return False
        self.store.execute(R.modify_ttl(db, spec["tenants"], spec["days"], spec["default"], spec["held"]))
        self.store.execute(R.record_ttl_spec(db, text))
        log.info("retention TTL applied: %s", text)
        return True

    def _record_expiring(self, today: dt.date) -> None:
        """A log_retention record for the leaves the TTL drops by tomorrow, so verify accepts
        them as expired rather than deleted (idempotent: a record's id is its content's)."""
        from receiver.store.integrity_sql import expiring_leaves

        spec = self.ttl_spec(self.held())
        horizon = today + dt.timedelta(days=1)
        statement = expiring_leaves(
            self.store.database, horizon, spec["tenants"], spec["days"], spec["default"], spec["held"]
        )
        for row in self._rows(statement):
            covered = covered_ranges(self.store, row["tenant"], row["origin"])
            fresh = uncovered([int(x) for x in row["leaves"]], covered)
            if not fresh:
                continue
            attributes = record_attributes(row["origin"], fresh, "", covered)
            runs = str(attributes["otel_audit.log.leaves"])
            self.events.record(
                key=("log-expiry", row["tenant"], row["origin"], sha256_hex(runs.encode())),
                tenant=row["tenant"],
                action=ACTION,
                resource_type="audit_log",
                resource_id=row["origin"],
                reason=f"{len(row['leaves'])} leaves of {row['origin']} expire (retain_days) by {horizon}",
                attributes=attributes,
            )

    def apply_ttl(self) -> bool:
        with self._exclusive():
            return self._apply_ttl()

    # -- the job -------------------------------------------------------------------------------
    def run(self, progress: Progress | None = None, today: dt.date | None = None) -> RunReport:
        progress = progress or _NoProgress()
        today = today or utc_today()
        report = RunReport()
        with self._exclusive():
            self.ensure_tables()
            self._record_expiring(today)  # before the TTL can drop a leaf
            report.ttl_applied = self._apply_ttl()
            held = self.held()
            report.held = sorted(held)
            db = self.store.database
            # expire first, so a partition about to move carries no row past retain_days
            report.partitions_expired = self._expire_hot(self._rows(R.partitions(db)), held, today)
            tenants_in: dict[int, set[str]] = {}
            staged = set()
            for r in self._rows(R.partitions(db, R.STAGING_TABLE)):
                staged.add(r["month"])
                tenants_in.setdefault(r["month"], set()).add(r["tenant_id"])
            # a partition is due once its month is over: every row in it is past its hot_until
            due = set()
            for r in self._rows(R.partitions(db)):
                if month_last_day(r["month"]) < today:
                    due.add(r["month"])
                    tenants_in.setdefault(r["month"], set()).add(r["tenant_id"])
            units = sorted(staged | due)
            progress.start("archiving partitions", len(units))
            for month in units:
                # an archive boundary: seal the chains first, so verify accepts the gap
                checkpoints = self._checkpoints(tuple(sorted(tenants_in[month])))
                if month in due:
                    self.store.execute(R.move_to_staging(db, month))
                for tenant, (days, rows) in self._archive_staged(month, checkpoints).items():
                    report.months_archived.append(f"{tenant}/{month_first_day(month):%Y-%m}")
                    report.days_archived += days
                    report.rows_archived += rows
                progress.advance()
            report.archive_days_deleted = self._expire_archive(held, today, progress)
        return report

    def _checkpoints(self, tenants: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
        if self._seal is None or not tenants:
            return {}
        out: dict[str, list[dict[str, Any]]] = {}
        for checkpoint in self._seal(tenants):
            out.setdefault(checkpoint["tenant_id"], []).append(checkpoint)
        return out

    def _archive_staged(
        self, month: int, checkpoints: dict[str, list[dict[str, Any]]]
    ) -> dict[str, tuple[int, int]]:
        """Archive every staged tenant-day of one partition, then drop the partition; returns
        files and rows written per tenant."""
        db = self.store.database
        written: dict[str, list[str]] = {}
        counts: dict[str, tuple[int, int]] = {}
        for entry in self._rows(R.staged_days(db, month)):
            tenant, day = entry["tenant_id"], entry["day"]
            # the whole staged tenant-day (it may span partitions if hot_days changed)
            table = self.store.query_table(R.day_rows(db, R.STAGING_TABLE, tenant, day))
            manifest = self.target.manifest(tenant, day) or DayManifest(tenant, day.isoformat())
            if manifest.files:  # a late arrival or a resumed run: keep only rows not archived yet
                archived = self.target.archived_ids(tenant, day, manifest)
                ids = [str(v) for v in table.column("id").to_pylist()]
                table = table.filter(pa.array([i not in archived for i in ids], pa.bool_()))
            if table.num_rows:
                name = self._write_day(tenant, day, manifest, table, checkpoints.get(tenant, []))
                written.setdefault(tenant, []).append(f"{day}/{name}")
                days, rows = counts.get(tenant, (0, 0))
                counts[tenant] = (days + 1, rows + table.num_rows)
        for (tenant, origin), (leaves, manifests) in self._leaves_archived.items():
            # the signed retention record: which leaves of which log left the store (verify)
            self.events.record(
                key=("log-retention", tenant, origin, str(month), *manifests),
                tenant=tenant,
                action=ACTION,
                resource_type="audit_log",
                resource_id=origin,
                reason=f"{len(leaves)} leaves of {origin} moved to the archive",
                attributes=record_attributes(
                    origin, leaves, ",".join(manifests), covered_ranges(self.store, tenant, origin)
                ),
            )
        self._leaves_archived.clear()
        for tenant, files in written.items():
            rows = counts[tenant][1]
            self.events.record(
                key=("archive", tenant, str(month), *files),
                tenant=tenant,
                action="archive",
                resource_type="audit_log",
                resource_id=f"{tenant}/{files[0][:10]}..{files[-1][:10]}",
                reason=f"{rows} events older than hot_days moved to the archive",
                attributes={"otel_audit.rows": rows, "otel_audit.files": ",".join(files)},
            )
        self.store.execute(R.drop_staged(db, month))
        return counts

    def _write_day(
        self,
        tenant: str,
        day: dt.date,
        manifest: DayManifest,
        table: pa.Table,
        checkpoints: list[dict[str, Any]],
    ) -> str:
        """Write, re-read, verify, then list the file in the manifest; returns its name."""
        name = f"events-{len(manifest.files) + 1:04d}.parquet"
        path = f"{self.target.day_dir(tenant, day)}/{name}"
        data = parquet_bytes(table)
        digest = sha256_hex(data)
        self.target.write_atomic(path, data)
        entry = ArchiveFile(
            name=name,
            rows=table.num_rows,
            bytes=len(data),
            sha256=digest,
            first_created_at=table.column("created_at")[0].as_py().isoformat(),
            last_created_at=table.column("created_at")[-1].as_py().isoformat(),
            archived_at=dt.datetime.now(UTC).isoformat(),
        )
        if "chain_id" in table.column_names and "seq" in table.column_names:
            ranges = table.group_by("chain_id").aggregate([("seq", "min"), ("seq", "max")]).to_pylist()
            entry.chains = {r["chain_id"]: [r["seq_min"], r["seq_max"]] for r in ranges if r["chain_id"]}
            entry.checkpoints = [c for c in checkpoints if c["chain_id"] in entry.chains]
        reread = self.target.read_file(tenant, day, entry)  # hash and count against the entry
        if not reread.equals(table):
            raise ArchiveError(f"{tenant} {day} {name}: re-read rows differ from the stored rows")
        manifest.files.append(entry)
        self.target.write_manifest(manifest)
        if "chain_id" in table.column_names and "seq" in table.column_names:
            manifest_sha = sha256_hex(manifest.to_json().encode())
            origins = table.column("chain_id").to_pylist()
            for origin, leaf in zip(origins, table.column("seq").to_pylist(), strict=True):
                if origin.startswith("otel-audit/"):
                    leaves, shas = self._leaves_archived.setdefault((tenant, origin), ([], []))
                    leaves.append(int(leaf))
                    if manifest_sha not in shas:
                        shas.append(manifest_sha)
        return name

    def _expire_hot(self, hot: list[dict], held: set[str], today: dt.date) -> int:  # type: ignore[type-arg]
        """Apply the TTL now to partitions holding an expired row of a tenant not on hold (the
        background TTL merge would get there too, within ``merge_with_ttl_timeout``)."""
        months = set()
        for row in hot:
            tenant = row["tenant_id"]
            retain = self.config.retention.policy_for(tenant).retain_days
            if tenant not in held and row["oldest"] + dt.timedelta(days=retain) <= today:
                months.add(row["month"])
        for month in sorted(months):
            self.store.execute(R.materialize_ttl(self.store.database, month))
        return len(months)

    def _expire_archive(self, held: set[str], today: dt.date, progress: Progress) -> list[str]:
        due: list[tuple[str, dt.date]] = []
        for tenant in self.target.tenants():
            if tenant in held:
                continue
            retain = self.config.retention.policy_for(tenant).retain_days
            due += [(tenant, d) for d in self.target.days(tenant) if d + dt.timedelta(days=retain) <= today]
        progress.start("deleting expired archive days", len(due))
        deleted = []
        for tenant, day in due:
            manifest = self.target.manifest(tenant, day)
            files = manifest.files if manifest else []
            retain = self.config.retention.policy_for(tenant).retain_days
            # recorded first, with a deterministic id: a rerun after a kill records it once
            self.events.record(
                key=("archive-delete", tenant, day.isoformat(), *(f.sha256 for f in files)),
                tenant=tenant,
                action="delete",
                resource_type="audit_archive",
                resource_id=f"{tenant}/{day.isoformat()}",
                reason=f"archived events older than retain_days ({retain}) deleted",
                attributes={
                    "otel_audit.rows": manifest.rows if manifest else 0,
                    "otel_audit.retain_days": retain,
                    "otel_audit.files": ",".join(f"{f.name}:{f.sha256}" for f in files),
                },
            )
            self.target.delete_day(tenant, day)
            deleted.append(f"{tenant}/{day.isoformat()}")
            progress.advance()
        return deleted
