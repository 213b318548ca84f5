"""The server engine: a ClickHouse server or cluster through clickhouse-connect (HTTP).

Same DDL and statements as chDB (``sql.py``); only the three primitives differ.
Async inserts stay off: an acknowledged event must be durable on the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pyarrow as pa

from receiver.store import sql
from receiver.store.base import SqlStore, StoreUnavailable


def connect_args(url: str) -> dict[str, Any]:
    """``clickhouse[s]://user:pass@host:port/db?opt=...`` → clickhouse-connect arguments."""
    parsed = urlparse(url)
    secure = parsed.scheme == "clickhouses"
    args: dict[str, Any] = {
        "host": parsed.hostname or "localhost",
        "port": parsed.port or (8443 if secure else 8123),
        "username": unquote(parsed.username) if parsed.username else "default",
        "password": unquote(parsed.password) if parsed.password else "",
        "secure": secure,
        "database": "default",
        "compress": True,
        "settings": {"async_insert": 0},
    }
    for key, values in parse_qs(parsed.query).items():
        args[key] = values[-1]
    return args


def database_of(url: str) -> str:
    path = urlparse(url).path.strip("/")
    return path or sql.DEFAULT_DATABASE


class ClickHouseStore(SqlStore):
    def __init__(self, url: str, client: Any | None = None) -> None:
        super().__init__(database_of(url))
        import clickhouse_connect

        try:
            self._client = client or clickhouse_connect.get_client(**connect_args(url))
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach ClickHouse at {urlparse(url).hostname}: {exc}") from exc
        self.migrate()

    def _command(self, statement: sql.Statement) -> None:
        try:
            self._client.command(statement.sql, parameters=statement.params or None)
        except Exception as exc:
            raise _classify(exc) from exc

    def _query_arrow(self, statement: sql.Statement) -> pa.Table:
        try:
            return self._client.query_arrow(statement.sql, parameters=statement.params or None)
        except Exception as exc:
            raise _classify(exc) from exc

    def _insert_arrow(self, table_name: str, table: pa.Table) -> None:
        try:
            self._client.insert_arrow(table_name, table)
        except Exception as exc:
            raise _classify(exc) from exc

    def _stream_arrow(self, statement: sql.Statement) -> Iterator[pa.RecordBatch]:
        with self._client.query_arrow_stream(statement.sql, parameters=statement.params or None) as stream:
            yield from stream

    def _stream_text(self, statement: sql.Statement, fmt: str) -> Iterator[bytes]:
        stream = self._client.raw_stream(statement.sql, parameters=statement.params or None, fmt=fmt)
        try:
            # read in large pieces: iterating the stream goes line by line (100x slower)
            while chunk := stream.read(1 << 20):
                yield chunk
        finally:
            stream.close()

    def close(self) -> None:
        self._client.close()


def _classify(exc: Exception) -> Exception:
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, OperationalError):
        return StoreUnavailable(str(exc))
    return exc
