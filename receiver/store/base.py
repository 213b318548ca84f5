"""The store contract: the only place that speaks SQL, with two engines behind it.

Engines differ only in how they run a statement and load an Arrow table
(:class:`SqlStore` subclasses implement three methods); every statement comes from
``sql.py`` so chDB and a ClickHouse server run the very same SQL.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, Protocol

import pyarrow as pa

from receiver.filters import Cursor, EventFilter
from receiver.model import row_to_api
from receiver.store import compliance, migrations, sql, synthetic
from receiver.store.integrity_sql import IntegrityQueries
from receiver.store.stats import stats_report
from receiver.store.synthetic import SyntheticSpec

log = logging.getLogger("otel_audit.store")


class StoreUnavailable(RuntimeError):
    """The store cannot take or serve data right now (retryable)."""


class AuditStore(Protocol):
    """What the pipeline, the admin API and the CLI need from a store."""

    database: str

    def migrate(self) -> None: ...
    def insert(self, table: pa.Table) -> None: ...
    def existing_ids(
        self, tenant_ids: list[str], event_ids: list[str] | pa.Array
    ) -> set[tuple[str, str]]: ...
    def search(self, flt: EventFilter, limit: int, cursor: Cursor | None = None) -> list[dict[str, Any]]: ...
    def get_event(self, event_id: str, tenants: tuple[str, ...] | None) -> dict[str, Any] | None: ...
    def count(self, flt: EventFilter) -> int: ...
    def iter_batches(self, flt: EventFilter) -> Iterator[pa.RecordBatch]: ...
    def iter_csv(self, flt: EventFilter) -> Iterator[bytes]: ...
    def iter_jsonl(self, flt: EventFilter) -> Iterator[bytes]: ...
    def tenants(self, flt: EventFilter) -> list[str]: ...
    def tenant_counts(self, flt: EventFilter) -> dict[str, int]: ...
    def compliance(self, tenant: str, now: dt.datetime) -> dict[str, Any]: ...
    def stats(self, flt: EventFilter, buckets: int) -> dict[str, Any]: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


def stored_pairs(result: pa.Table) -> set[tuple[str, str]]:
    """An ``existing_ids`` answer as (tenant, lower-case id) pairs."""
    tenants = result.column("stored_tenant").to_pylist()
    ids = result.column("stored_id").to_pylist()
    return {(str(t), str(i).lower()) for t, i in zip(tenants, ids, strict=True)}


class SqlStore(IntegrityQueries, abc.ABC):
    """Shared logic over an engine that can run a statement and load Arrow (and, mixed in,
    the tamper-evidence queries of ``integrity_sql.py``)."""

    def __init__(self, database: str = sql.DEFAULT_DATABASE) -> None:
        self.database = sql.check_identifier(database)

    # -- the three engine primitives -------------------------------------------------
    @abc.abstractmethod
    def _command(self, statement: sql.Statement) -> None: ...

    @abc.abstractmethod
    def _query_arrow(self, statement: sql.Statement) -> pa.Table: ...

    @abc.abstractmethod
    def _insert_arrow(self, table_name: str, table: pa.Table) -> None: ...

    @abc.abstractmethod
    def _stream_arrow(self, statement: sql.Statement) -> Iterator[pa.RecordBatch]:
        """The answer as record batches, read as the engine produces them."""

    @abc.abstractmethod
    def _stream_text(self, statement: sql.Statement, fmt: str) -> Iterator[bytes]:
        """The answer in the engine's output format ``fmt`` (e.g. ``CSV``), chunk by chunk."""

    # -- the contract ----------------------------------------------------------------
    #: a ClickHouse cluster name: DDL in its cluster form (``migrations.cluster_statement``)
    cluster: str | None = None
    #: what the store's own start applied (engines migrate when they open)
    applied_on_open: list[str] = []

    def migrate(self) -> list[str]:
        """Apply the schema versions not yet recorded; returns what was applied (``NNN_name``)."""
        db = self.database
        try:
            # read first: a store user without DDL grants (SPEC 6: INSERT and SELECT only)
            # opens an up-to-date schema without issuing a single CREATE
            rows = self._query_arrow(migrations.applied_versions(db)).to_pylist()
        except StoreUnavailable:
            raise
        except Exception:  # noqa: BLE001 - no migrations table yet (or no database)
            for text in migrations.bootstrap_statements(self.cluster):
                self._command(sql.Statement(text.replace("{db}", db)))
            rows = self._query_arrow(migrations.applied_versions(db)).to_pylist()
        applied = {int(row["version"]): row["last_checksum"] for row in rows}
        done: list[str] = []
        for migration in migrations.load_migrations():
            label = f"{migration.version:03d}_{migration.name}"
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    log.warning("schema file %s changed after it was applied; not re-applied", label)
                continue
            for text in migrations.statements_for(migration, db, self.cluster):
                self._command(sql.Statement(text))
            self._command(migrations.record(db, migration))
            done.append(label)
        return done

    def schema_status(self) -> list[dict[str, Any]]:
        """Every known version and whether (and when) it was applied."""
        rows = self._query_arrow(migrations.status(self.database)).to_pylist()
        applied = {int(r["version"]): r["last_applied"] for r in rows}
        return [
            {"version": m.version, "name": m.name, "applied_at": applied.get(m.version)}
            for m in migrations.load_migrations()
        ]

    def insert(self, table: pa.Table) -> None:
        if table.num_rows:
            self._insert_arrow(f"{self.database}.{sql.EVENTS_TABLE}", table)

    def existing_ids(self, tenant_ids: list[str], event_ids: list[str] | pa.Array) -> set[tuple[str, str]]:
        """The (tenant, id) pairs of these tenants and ids that are stored (a superset of the
        pairs asked about: the caller intersects)."""
        if isinstance(event_ids, pa.Array):
            event_ids = event_ids.to_pylist()
        if not event_ids:
            return set()
        found: set[tuple[str, str]] = set()
        for start in range(0, len(event_ids), sql.EXISTING_IDS_CHUNK):
            chunk = event_ids[start : start + sql.EXISTING_IDS_CHUNK]
            result = self._query_arrow(sql.existing_ids(self.database, tenant_ids, chunk))
            found.update(stored_pairs(result))
        return found

    def search(self, flt: EventFilter, limit: int, cursor: Cursor | None = None) -> list[dict[str, Any]]:
        if flt.visible_nothing():
            return []
        table = self._query_arrow(sql.search(self.database, flt, limit, cursor))
        return [row_to_api(row) for row in table.to_pylist()]

    def get_event(self, event_id: str, tenants: tuple[str, ...] | None) -> dict[str, Any] | None:
        rows = self._query_arrow(sql.get_event(self.database, event_id, tenants)).to_pylist()
        return row_to_api(rows[0]) if rows else None

    def count(self, flt: EventFilter) -> int:
        if flt.visible_nothing():
            return 0
        return int(self._query_arrow(sql.count(self.database, flt)).column("n")[0].as_py())

    def iter_batches(self, flt: EventFilter) -> Iterator[pa.RecordBatch]:
        """Every matching event in export order (tenant, created_at, id, all descending); ``id`` as text."""
        if flt.visible_nothing():
            return iter(())
        return self._stream_arrow(sql.export_rows(self.database, flt))

    def iter_csv(self, flt: EventFilter) -> Iterator[bytes]:
        """The CSV rows (no header) of every matching event, in export order, made by the engine."""
        if flt.visible_nothing():
            return iter(())
        return self._stream_text(sql.export_csv(self.database, flt), "CSV")

    def iter_jsonl(self, flt: EventFilter) -> Iterator[bytes]:
        """JSON lines (the API's event objects) of every matching event, made by the engine."""
        if flt.visible_nothing():
            return iter(())
        return self._stream_text(sql.export_jsonl(self.database, flt), "TSVRaw")

    def tenants(self, flt: EventFilter) -> list[str]:
        if flt.visible_nothing():
            return []
        return [
            str(t) for t in self._query_arrow(sql.tenants(self.database, flt)).column("tenant").to_pylist()
        ]

    def tenant_counts(self, flt: EventFilter) -> dict[str, int]:
        """Matching events per tenant, in tenant order (one scan: a count and the tenants)."""
        if flt.visible_nothing():
            return {}
        table = self._query_arrow(sql.tenant_counts(self.database, flt))
        tenants, counts = table.column("tenant").to_pylist(), table.column("n").to_pylist()
        return {str(t): int(n) for t, n in zip(tenants, counts, strict=True)}

    def stats(self, flt: EventFilter, buckets: int) -> dict[str, Any]:
        """SPEC section 8: the total, a histogram of ``buckets`` equal buckets over the filter's
        range (or the matching events' own range) and the top values of each facet."""
        return stats_report(self, flt, buckets)

    def compliance(self, tenant: str, now: dt.datetime) -> dict[str, Any]:
        rows = self._query_arrow(compliance.summary(self.database, tenant, now)).to_pylist()
        return compliance.to_report(tenant, now, rows[0])

    def ping(self) -> None:
        self._query_arrow(sql.Statement("SELECT 1 AS ok"))

    def event_digests(self, table: pa.Table) -> list[bytes] | None:
        """The leaf hash per row (SHA-256(0x00 ‖ canonical())) computed by the engine; None:
        compute them in Python."""
        return None

    # -- for maintenance jobs (retention): statements from store/*_sql.py only ----------
    def execute(self, statement: sql.Statement) -> None:
        """Run a statement that changes the store (DDL, ALTER, INSERT ... SELECT)."""
        self._command(statement)

    def query_table(self, statement: sql.Statement) -> pa.Table:
        return self._query_arrow(statement)

    def insert_into(self, table_name: str, table: pa.Table) -> None:
        """Load Arrow rows into another table of this database (e.g. the restored events)."""
        if table.num_rows:
            self._insert_arrow(f"{self.database}.{sql.check_identifier(table_name)}", table)

    def generate_synthetic(self, spec: SyntheticSpec, chunk_rows: int = 2_000_000) -> None:
        """Fill the store with ``spec.rows`` synthetic events, generated by the engine (benchmarks)."""
        for offset in range(0, spec.rows, chunk_rows):
            part = replace(spec, rows=min(chunk_rows, spec.rows - offset))
            self._command(synthetic.insert_statement(self.database, part, offset))
