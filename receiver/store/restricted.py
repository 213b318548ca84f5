"""Read-only SQL sessions for the ClickHouse-HTTP endpoint (``receiver/chhttp``).

Each SQL user gets its own chDB session on the store's data path, prepared *before* it is
locked: current database, per-query limits, metadata and tenant row filters
(``additional_table_filters``, ClickHouse's row-policy stand-in inside chDB, which has no
RBAC), then ``readonly = 1``, after which no query can change any of them (CHDB-NOTES).
Everything this module sends to the engine is built here from constants, checked identifiers
and bound parameters; the user's text is only ever (1) a bound ``{q:String}`` value for
``formatQuerySingleLine`` (a parser, which also refuses multi-statements), (2) the argument
of ``EXPLAIN AST`` (a parser), and (3) run, after ``receiver.chhttp.guard`` accepted its AST.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receiver.store import sql


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-query limits fixed on the session (``SET`` before ``readonly = 1``)."""

    max_execution_time: int = 30
    max_memory_usage: int = 1 << 30
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 << 20
    max_rows_to_read: int = 0  # 0: unlimited (time and memory still bound a scan)
    #: rows per answer block: a streamed answer holds a few blocks (8192 rows: +14 MiB for a
    #: 1 M-row answer, against +84 MiB at the engine's default 65,409)
    max_block_size: int = 8192


class EngineError(Exception):
    """An error the engine raised: ``code`` is ClickHouse's error code, ``text`` its message."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _engine_error(exc: Exception) -> EngineError:
    text = str(exc).removeprefix("Streaming query failed: ")  # chDB's wrapper on streamed errors
    code = 1002
    marker = "Code: "
    if marker in text:
        digits = text.split(marker, 1)[1].split(".", 1)[0]
        if digits.isdigit():
            code = int(digits)
    return EngineError(code, text)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _escape_param(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class Stream:
    """A running query's answer, chunk by chunk; ``close`` cancels what is left."""

    def __init__(self, result: Any, lock: threading.Lock) -> None:
        self._result = result
        self._lock: threading.Lock | None = lock
        #: fetch and close never overlap (a cancelled request closes while a fetch may run)
        self._ops = threading.Lock()
        self.rows_read = 0
        self.bytes_read = 0

    def next_chunk(self) -> bytes | None:
        """The next chunk, or None at the end; engine errors as :class:`EngineError`."""
        with self._ops:
            if self._lock is None:
                return None
            try:
                chunk = self._result.fetch()
            except Exception as exc:
                raise _engine_error(exc) from exc
        if chunk is None:
            return None
        self.rows_read += chunk.rows_read()
        self.bytes_read += chunk.bytes_read()
        return bytes(chunk.bytes())

    def close(self) -> None:
        with self._ops:
            if self._lock is None:
                return
            try:
                self._result.close()
            except Exception:  # noqa: BLE001 - cancelling a finished stream is best effort
                pass
            finally:
                self._lock.release()
                self._lock = None


class RestrictedSession:
    """One locked, read-only session: parse, explain and run SELECTs for one SQL user."""

    def __init__(
        self,
        path: str,
        database: str,
        limits: Limits,
        tenants: tuple[str, ...] | None,
    ) -> None:
        from chdb import session as chdb_session

        self.path = str(path)
        self.database = sql.check_identifier(database)
        self.tenants = tenants
        self._lock = threading.Lock()
        self._session = chdb_session.Session(path)
        tables = self._tables_with_tenant_column()
        #: tables a query may read; a scoped user only those whose rows carry a tenant_id
        self.allowed_tables: frozenset[str] = frozenset(
            name for name, has_tenant in tables.items() if tenants is None or has_tenant
        )
        self.hidden_system_columns = self._hidden_system_columns()
        # metadata of the tables this user may read only (a scoped user's list has no
        # tenant-less side tables)
        readable = "(" + ", ".join(_quote(t) for t in ["", *sorted(self.allowed_tables)]) + ")"
        filters = {
            "system.tables": f"database = {_quote(self.database)} AND name IN {readable}",
            "system.columns": f"database = {_quote(self.database)} AND table IN {readable}",
            "system.databases": f"name = {_quote(self.database)}",
        }
        if tenants is not None:
            scope = "tenant_id IN (" + ", ".join(_quote(t) for t in tenants) + ")" if tenants else "0"
            for name in self.allowed_tables:
                filters[f"{self.database}.{name}"] = scope
        rendered = "{" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in filters.items()) + "}"
        statements = [
            f"USE {self.database}",
            f"SET max_execution_time = {int(limits.max_execution_time)}",
            "SET timeout_overflow_mode = 'throw'",
            f"SET max_memory_usage = {int(limits.max_memory_usage)}",
            f"SET max_result_rows = {int(limits.max_result_rows)}",
            f"SET max_result_bytes = {int(limits.max_result_bytes)}",
            "SET result_overflow_mode = 'throw'",
            f"SET max_rows_to_read = {int(limits.max_rows_to_read)}",
            "SET read_overflow_mode = 'throw'",
            f"SET max_block_size = {int(limits.max_block_size)}",
            f"SET max_joined_block_size_rows = {int(limits.max_block_size)}",
            f"SET additional_table_filters = {rendered}",
        ]
        statements.append("SET readonly = 1")
        for statement in statements:
            self._session.query(statement)
        self.settings: dict[str, str] = self._current_settings()
        info = self._session.query("SELECT timezone() AS tz, version() AS v", "ArrowTable").to_pylist()[0]
        self.timezone: str = info["tz"]
        self.version: str = info["v"]

    def _tables_with_tenant_column(self) -> dict[str, bool]:
        text = (
            "SELECT t.name AS name, countIf(c.name = 'tenant_id') > 0 AS has_tenant"
            " FROM system.tables AS t LEFT JOIN system.columns AS c"
            " ON c.database = t.database AND c.table = t.name"
            " WHERE t.database = {db:String} GROUP BY t.name"
        )
        rows = self._session.query(text, "ArrowTable", params={"db": self.database}).to_pylist()
        return {row["name"]: bool(row["has_tenant"]) for row in rows}

    def _hidden_system_columns(self) -> frozenset[str]:
        """Columns of the readable metadata tables that the guard keeps out of queries."""
        from receiver.chhttp.guard import SYSTEM_COLUMNS, SYSTEM_TABLES

        text = "SELECT DISTINCT name FROM system.columns WHERE database = 'system' AND table IN {t:Array(String)}"
        rows = self._session.query(
            text, "ArrowTable", params={"t": "[" + ",".join(_quote(t) for t in sorted(SYSTEM_TABLES)) + "]"}
        ).to_pylist()
        return frozenset(row["name"] for row in rows) - SYSTEM_COLUMNS

    def _current_settings(self) -> dict[str, str]:
        rows = self._session.query("SELECT name, value FROM system.settings", "ArrowTable").to_pylist()
        return {row["name"]: row["value"] for row in rows}

    def canonical(self, query: str) -> str:
        """ClickHouse's own formatting of ``query``: one statement, comments gone, or an error
        (multi-statements and syntax errors are Code 62)."""
        text = "SELECT formatQuerySingleLine({q:String}) AS q"
        with self._lock:
            try:
                table = self._session.query(text, "ArrowTable", params={"q": _escape_param(query)})
            except Exception as exc:
                error = _engine_error(exc)
                # the message quotes our wrapper; the user's query is all they need to see
                cut = error.text.find(": In scope SELECT formatQuerySingleLine(")
                if cut != -1:
                    error = EngineError(error.code, error.text[:cut] + ". (SYNTAX_ERROR)")
                raise error from exc
        return str(table.column("q")[0].as_py())

    def explain_ast(self, canonical: str, params: Mapping[str, str]) -> str:
        """The AST of an already canonical, single statement (``EXPLAIN AST`` only parses)."""
        with self._lock:
            try:
                result = self._session.query("EXPLAIN AST " + canonical, "TSVRaw", params=self._bind(params))
            except Exception as exc:
                raise _engine_error(exc) from exc
        return bytes(result.bytes()).decode("utf-8", "replace")

    def run(self, canonical: str, fmt: str, params: Mapping[str, str]) -> tuple[bytes, dict[str, Any]]:
        """Run an accepted statement; the answer's bytes and a ClickHouse-style summary."""
        with self._lock:
            try:
                result = self._session.query(canonical, fmt, params=self._bind(params))
            except Exception as exc:
                raise _engine_error(exc) from exc
        summary = {
            "read_rows": str(result.rows_read()),
            "read_bytes": str(result.bytes_read()),
            "elapsed_ns": str(int(result.elapsed() * 1e9)),
        }
        return bytes(result.bytes()), summary

    def open_stream(self, canonical: str, fmt: str, params: Mapping[str, str]) -> Stream:
        """Start an accepted statement as a stream of answer chunks (one per engine block);
        the session is this stream's until :meth:`Stream.close`."""
        self._lock.acquire()
        try:
            result = self._session.send_query(canonical, fmt, params=self._bind(params))
        except Exception as exc:
            self._lock.release()
            raise _engine_error(exc) from exc
        return Stream(result, self._lock)

    @staticmethod
    def _bind(params: Mapping[str, str]) -> dict[str, str] | None:
        # HTTP ``param_<name>`` values are already in ClickHouse's escaped text form, the
        # same form chDB binds: pass them through unchanged.
        return dict(params) or None

    def close(self) -> None:
        try:
            self._session.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
