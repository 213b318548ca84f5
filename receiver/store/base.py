"""The store contract: the only place that speaks SQL, with two engines behind it.

Engines differ only in how they run a statement and load an Arrow table
(:class:`SqlStore` subclasses implement three methods); every statement comes from
``sql.py`` so chDB and a ClickHouse server run the very same SQL.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, Protocol

import pyarrow as pa

from receiver.filters import Cursor, EventFilter
from receiver.model import row_to_api
from receiver.store import sql
from receiver.store.integrity_sql import IntegrityQueries


class StoreUnavailable(RuntimeError):
    """The store cannot take or serve data right now (retryable)."""


class AuditStore(Protocol):
    """What the pipeline, the admin API and the CLI need from a store."""

    database: str

    def migrate(self) -> None: ...
    def insert(self, table: pa.Table) -> None: ...
    def existing_ids(self, tenant_ids: list[str], event_ids: list[str]) -> set[str]: ...
    def search(self, flt: EventFilter, limit: int, cursor: Cursor | None = None) -> list[dict[str, Any]]: ...
    def get_event(self, event_id: str, tenants: tuple[str, ...] | None) -> dict[str, Any] | None: ...
    def count(self, flt: EventFilter) -> int: ...
    def iter_batches(self, flt: EventFilter) -> Iterator[pa.RecordBatch]: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


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

    def _stream_arrow(self, statement: sql.Statement) -> Iterator[pa.RecordBatch]:
        """Engines that can stream override this; the fallback reads the whole answer."""
        yield from self._query_arrow(statement).to_batches()

    # -- the contract ----------------------------------------------------------------
    def migrate(self) -> None:
        for text in sql.schema_statements(self.database):
            self._command(sql.Statement(text))

    def insert(self, table: pa.Table) -> None:
        if table.num_rows:
            self._insert_arrow(f"{self.database}.{sql.EVENTS_TABLE}", table)

    def existing_ids(self, tenant_ids: list[str], event_ids: list[str]) -> set[str]:
        if not event_ids:
            return set()
        result = self._query_arrow(sql.existing_ids(self.database, tenant_ids, event_ids))
        return set(result.column("stored_id").to_pylist())

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
        if flt.visible_nothing():
            return iter(())
        return self._stream_arrow(sql.stream_all(self.database, flt))

    def ping(self) -> None:
        self._query_arrow(sql.Statement("SELECT 1 AS ok"))

    def event_digests(self, table: pa.Table) -> list[bytes] | None:
        """SHA-256(canonical()) per row computed by the engine; None: compute them in Python."""
        return None
