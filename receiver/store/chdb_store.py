"""The embedded engine: chDB (ClickHouse in-process, persistent on disk).

One process owns one data directory (CHDB-NOTES): ``serve`` opens it, everything else talks
to ``serve`` over HTTP while it runs. Writes go through one session, reads through a second,
read-only one (``readonly=1`` cannot be lifted on that session), so the admin paths cannot
change data even through a bug, and a long export does not stall inserts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from receiver.store import sql
from receiver.store.base import SqlStore, StoreUnavailable, stored_pairs

_UTC = dt.timezone.utc
#: chDB paths this process has opened: their status lock is ours, not another process's
_OPENED_HERE: set[str] = set()


def _escape_text(value: str) -> str:
    # chDB parses parameter values as escaped text: a raw tab or newline is refused and
    # a backslash starts an escape (CHDB-NOTES "an escaping trap").
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _param_text(value: Any) -> str:
    """A Python value → the text form chDB binds into ``{name:Type}``."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, (list, tuple)):
        items = (
            "'" + _escape_text(str(v)).replace("'", "\\'") + "'" if not isinstance(v, int) else str(v)
            for v in value
        )
        return "[" + ",".join(items) + "]"
    if isinstance(value, bool):
        return "1" if value else "0"
    return _escape_text(str(value))


class ChdbStore(SqlStore):
    """chDB at ``path``; ``chdb://./otel-audit-data`` or ``chdb:///abs/path``."""

    #: the engine runs in this process (our code, not a server that could lie): verify may let
    #: it re-hash the stored rows (canonical_sql, tested equal to the reference encoding)
    engine_in_process = True

    def __init__(self, path: str | Path, database: str = sql.DEFAULT_DATABASE) -> None:
        super().__init__(database)
        from chdb import session as chdb_session  # heavy (0.2 s, 240 MB): only when used

        self.path = str(Path(path).resolve())
        Path(self.path).mkdir(parents=True, exist_ok=True)
        if self.path not in _OPENED_HERE and held_by_another_process(self.path):
            raise StoreLocked(
                f"the chDB store at {self.path} is held by another process (a running `otel-audit serve`?)"
            )
        try:
            self._writer = chdb_session.Session(self.path)
            self._reader = chdb_session.Session(self.path)
        except Exception as exc:  # lock held by another process, unreadable directory, ...
            raise StoreUnavailable(f"cannot open chDB store at {self.path}: {exc}") from exc
        _OPENED_HERE.add(self.path)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._maintenance: Any = None
        self._maintenance_lock = threading.Lock()
        self.applied_on_open = self.migrate()
        # a group commit may touch many partitions (late events, many policies)
        self._writer.query(f"SET max_partitions_per_insert_block = {sql.MAX_PARTITIONS_PER_INSERT}")
        self._reader.query("SET readonly = 1")

    @staticmethod
    def _bind(statement: sql.Statement) -> dict[str, str] | None:
        if not statement.params:
            return None
        return {name: _param_text(value) for name, value in statement.params.items()}

    def _command(self, statement: sql.Statement) -> None:
        with self._write_lock:
            self._run(self._writer, statement, "CSV")

    def execute(self, statement: sql.Statement) -> None:
        """Maintenance (ALTER ... MOVE PARTITION, MODIFY TTL) on a session of its own, so a
        long mutation does not hold up the group-commit writer."""
        from chdb import session as chdb_session

        with self._maintenance_lock:
            if self._maintenance is None:
                self._maintenance = chdb_session.Session(self.path)
            self._run(self._maintenance, statement, "CSV")

    def _query_arrow(self, statement: sql.Statement) -> pa.Table:
        with self._read_lock:
            return self._run(self._reader, statement, "ArrowTable")

    @staticmethod
    def _run(session: Any, statement: sql.Statement, fmt: str) -> Any:
        try:
            return session.query(statement.sql, fmt, params=ChdbStore._bind(statement))
        except Exception as exc:
            raise _classify(exc) from exc

    def _insert_arrow(self, table_name: str, table: pa.Table) -> None:
        columns = ", ".join(table.column_names)
        arrow_batch = table  # noqa: F841 - chDB's Python() table function finds it by name
        insert = f"INSERT INTO {table_name} ({columns}) SELECT * FROM Python(arrow_batch)"  # noqa: S608
        with self._write_lock:
            self._run(self._writer, sql.Statement(insert, {}), "CSV")

    def existing_ids(self, tenant_ids: list[str], event_ids: list[str] | pa.Array) -> set[tuple[str, str]]:
        """The writer's idempotency check, with the ids handed over as Arrow (see
        sql.existing_ids_in_table); on the writer session, whose thread is the only caller."""
        if len(event_ids) == 0:
            return set()
        statement = sql.existing_ids_in_table(self.database, tenant_ids, "group_ids")
        ids = event_ids if isinstance(event_ids, pa.Array) else pa.array(event_ids, pa.string())
        group_ids = pa.table({"id": ids})  # noqa: F841 - found by name
        with self._write_lock:
            result = self._run(self._writer, statement, "ArrowTable")
        return stored_pairs(result)

    def event_digests(self, table: pa.Table) -> list[bytes] | None:
        """The leaf hashes of the batch about to be stored, vectorised by the engine."""
        from receiver.store.integrity_sql import event_digests_sql

        arrow_batch = table  # noqa: F841 - chDB's Python() table function finds it by name
        with self._write_lock:
            result = self._run(
                self._writer, sql.Statement(event_digests_sql("arrow_batch"), {}), "ArrowTable"
            )
        return result.column("digest").to_pylist()

    @contextlib.contextmanager
    def _stream_session(self) -> Iterator[Any]:
        # A streaming query holds its session until it is drained or closed; each export gets
        # a dedicated read-only session so searches keep answering meanwhile.
        from chdb import session as chdb_session

        session = chdb_session.Session(self.path)
        try:
            # JSON exports: "a/b", not the engine's default "a\\/b" (both are valid JSON)
            session.query("SET output_format_json_escape_forward_slashes = 0")
            # Exports read in sort order, merging one stream per part, and every stream holds a
            # block of all its columns: the engine's defaults (chunks buffered ahead of the
            # merge, 65 k-row blocks) measured +270-330 MB of RSS for a 200 k-row export and
            # +220-420 MB for 5 M rows, kept by the process afterwards; without the buffering and
            # with 8 k-row blocks (one granule, the size of the chunks streamed anyway) +75-105
            # MB and +190 MB, at the same CPU per row.
            session.query("SET read_in_order_use_buffering = 0")
            session.query("SET max_block_size = 8192")
            session.query("SET readonly = 1")
            yield session
        finally:
            session.close()

    def _stream_arrow(self, statement: sql.Statement) -> Iterator[pa.RecordBatch]:
        try:
            with self._stream_session() as session:
                result = session.send_query(statement.sql, "Arrow", params=self._bind(statement))
                try:
                    yield from result.record_batch(rows_per_batch=16384)
                finally:
                    result.close()
        except GeneratorExit:
            raise
        except Exception as exc:
            raise _classify(exc) from exc

    def _stream_text(self, statement: sql.Statement, fmt: str) -> Iterator[bytes]:
        try:
            with self._stream_session() as session:
                result = session.send_query(statement.sql, fmt, params=self._bind(statement))
                try:
                    for chunk in result:
                        yield chunk.bytes()
                finally:
                    result.close()
        except GeneratorExit:
            raise
        except Exception as exc:
            raise _classify(exc) from exc

    def restricted_session(self, limits: Any, tenants: tuple[str, ...] | None) -> Any:
        """A locked read-only session for one SQL-endpoint user (``store/restricted.py``)."""
        from receiver.store.restricted import RestrictedSession

        return RestrictedSession(self.path, self.database, limits, tenants)

    def close(self) -> None:
        for session in (self._maintenance, self._reader, self._writer):
            if session is None:
                continue
            try:
                session.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


class StoreLocked(StoreUnavailable):
    """Another process owns this chDB directory (one process per path)."""


def held_by_another_process(path: str) -> bool:
    """The engine flock()s ``<path>/status`` while it runs; probe it before chDB tries (and
    prints its own error on stderr). A lock this process holds does not count."""
    status = Path(path) / "status"
    if not status.exists():
        return False
    try:
        with open(status, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def _classify(exc: Exception) -> Exception:
    """Engine errors that mean "try again later" become StoreUnavailable."""
    text = str(exc)
    retryable = ("Code: 241", "Code: 243", "Code: 236", "Code: 74", "Code: 75", "Code: 76", "Code: 1002")
    if any(code in text for code in retryable) or "No space left" in text or "Read-only file system" in text:
        return StoreUnavailable(text)
    return exc
