"""The server engine: a ClickHouse server or cluster through clickhouse-connect (HTTP).

Same statements as chDB (``sql.py``, ``migrations.py``); only the three primitives differ.
Durability: ``async_insert = 0`` (an acknowledged event is in a part on the server), and on a
cluster ``distributed_foreground_insert = 1`` plus ``insert_quorum = 'auto'`` (acknowledged
when a majority of the shard's replicas have it). A batch that fails with a retryable error is
retried with only the events the server does not have yet (an INSERT that failed may still
have stored some partitions), plus an ``insert_deduplication_token`` that ReplicatedMergeTree
honours: a retry never stores an event twice, which the hash chain depends on.

URL: ``clickhouse[s]://user:password@host:port/database?option=value&...``. Options:
``cluster`` (DDL ``ON CLUSTER``, Replicated + Distributed tables), ``verify`` (TLS certificate
check, default true), ``ca_cert``, ``client_cert``, ``client_cert_key``, ``server_host_name``,
``compress`` (true/false or lz4, zstd, gzip), ``connect_timeout``, ``send_receive_timeout``,
``retries`` (default 3), ``insert_quorum``; any other option is a ClickHouse setting.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlparse

import pyarrow as pa

from receiver.store import sql
from receiver.store.base import SqlStore, StoreUnavailable

log = logging.getLogger("otel_audit.store")
T = TypeVar("T")

_BOOL_OPTIONS = {"verify", "secure"}
_INT_OPTIONS = {"connect_timeout", "send_receive_timeout", "query_limit"}
_CLIENT_OPTIONS = {
    "ca_cert",
    "client_cert",
    "client_cert_key",
    "server_host_name",
    "http_proxy",
    "https_proxy",
}
_OWN_OPTIONS = {"cluster", "retries", "database"}
#: ClickHouse error codes worth another try: timeouts, network, overload, replica/keeper trouble
RETRYABLE_CODES = frozenset({3, 159, 202, 209, 210, 236, 241, 242, 252, 319, 425, 999, 1000})


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def connect_args(url: str) -> dict[str, Any]:
    """``clickhouse[s]://user:pass@host:port/db?opt=...`` → clickhouse-connect arguments."""
    parsed = urlparse(url)
    secure = parsed.scheme == "clickhouses"
    settings: dict[str, Any] = {"async_insert": 0}
    args: dict[str, Any] = {
        "host": parsed.hostname or "localhost",
        "port": parsed.port or (8443 if secure else 8123),
        "username": unquote(parsed.username) if parsed.username else "default",
        "password": unquote(parsed.password) if parsed.password else "",
        "secure": secure,
        "database": "default",
        "compress": True,
        "settings": settings,
    }
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    if options.get("cluster"):
        settings["distributed_foreground_insert"] = 1
        settings["insert_quorum"] = "auto"
    for key, value in options.items():
        if key in _OWN_OPTIONS:
            continue
        if key in _BOOL_OPTIONS:
            args[key] = _truthy(value)
        elif key in _INT_OPTIONS:
            args[key] = int(value)
        elif key in _CLIENT_OPTIONS:
            args[key] = value
        elif key == "compress":
            args[key] = value if value in ("lz4", "zstd", "gzip", "br") else _truthy(value)
        else:
            settings[key] = value
    return args


def database_of(url: str) -> str:
    path = urlparse(url).path.strip("/")
    return path or sql.DEFAULT_DATABASE


def _option(url: str, name: str) -> str | None:
    values = parse_qs(urlparse(url).query).get(name)
    return values[-1] if values else None


class ClickHouseStore(SqlStore):
    def __init__(self, url: str, client: Any | None = None, migrate: bool = True) -> None:
        super().__init__(database_of(url))
        import clickhouse_connect

        cluster = _option(url, "cluster")
        self.cluster = sql.check_identifier(cluster) if cluster else None
        self.retries = int(_option(url, "retries") or 3)
        try:
            self._client = client or clickhouse_connect.get_client(**connect_args(url))
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach ClickHouse at {urlparse(url).hostname}: {exc}") from exc
        if migrate:
            self.applied_on_open = self.migrate()

    def _retrying(self, what: Callable[[], T]) -> T:
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                return what()
            except Exception as exc:
                error = _classify(exc)
                if not isinstance(error, StoreUnavailable) or attempt == self.retries:
                    raise error from exc
                log.warning(
                    "ClickHouse: %s; retry %d/%d in %.1fs", str(exc)[:200], attempt + 1, self.retries, delay
                )
                time.sleep(delay)
                delay = min(delay * 3, 5.0)
        raise AssertionError("unreachable")

    def _command(self, statement: sql.Statement) -> None:
        self._retrying(lambda: self._client.command(statement.sql, parameters=statement.params or None))

    def _query_arrow(self, statement: sql.Statement) -> pa.Table:
        return self._retrying(
            lambda: _strings_for_uuids(
                self._client.query_arrow(statement.sql, parameters=statement.params or None)
            )
        )

    def _insert_arrow(self, table_name: str, table: pa.Table) -> None:
        keyed = table_name == f"{self.database}.{sql.EVENTS_TABLE}" and {"id", "tenant_id"} <= set(
            table.column_names
        )
        delay = 0.2
        for attempt in range(self.retries + 1):
            settings = {
                "insert_deduplication_token": dedup_token(table),
                "max_partitions_per_insert_block": sql.MAX_PARTITIONS_PER_INSERT,
            }
            try:
                self._client.insert_arrow(table_name, table, settings=settings)
                return
            except Exception as exc:
                error = _classify(exc)
                if not isinstance(error, StoreUnavailable) or attempt == self.retries:
                    raise error from exc
                log.warning("ClickHouse insert: %s; retry %d/%d", str(exc)[:200], attempt + 1, self.retries)
            time.sleep(delay)
            delay = min(delay * 3, 5.0)
            if keyed:
                # the failed INSERT may have stored some partitions' parts (or all of them, the
                # answer being what was lost): send only the events that are not there
                table = self._missing(table)
                if table.num_rows == 0:
                    return

    def _missing(self, table: pa.Table) -> pa.Table:
        ids = [str(v).lower() for v in table.column("id").to_pylist()]
        tenant_column = [str(t) for t in table.column("tenant_id").to_pylist()]
        present = self.existing_ids(sorted(set(tenant_column)), ids)
        if not present:
            return table
        keys = zip(tenant_column, ids, strict=True)
        return table.filter(pa.array([key not in present for key in keys]))

    def _stream_arrow(self, statement: sql.Statement) -> Iterator[pa.RecordBatch]:
        try:
            with self._client.query_arrow_stream(
                statement.sql, parameters=statement.params or None
            ) as stream:
                for batch in stream:
                    yield from _strings_for_uuids(pa.Table.from_batches([batch])).to_batches()
        except Exception as exc:
            raise _classify(exc) from exc

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


def dedup_token(table: pa.Table) -> str:
    """The same rows give the same token (their ids, in order): Replicated tables drop a
    block they already have."""
    digest = hashlib.sha256()
    if "id" in table.column_names:
        for value in table.column("id").to_pylist():
            digest.update(str(value).encode())
            digest.update(b"\0")
    return "otel-audit-" + digest.hexdigest()[:32]


def _strings_for_uuids(table: pa.Table) -> pa.Table:
    """ClickHouse sends UUID columns over Arrow as 16 raw bytes; the API speaks text UUIDs."""
    import uuid

    for index, field in enumerate(table.schema):
        if pa.types.is_fixed_size_binary(field.type) and field.type.byte_width == 16:
            values = [
                None if v is None else str(uuid.UUID(bytes=_uuid_bytes(v)))
                for v in table.column(index).to_pylist()
            ]
            table = table.set_column(index, pa.field(field.name, pa.string()), pa.array(values, pa.string()))
    return table


def _uuid_bytes(raw: bytes) -> bytes:
    # ClickHouse stores a UUID as two little-endian 64-bit halves
    return raw[7::-1] + raw[15:7:-1]


def _classify(exc: Exception) -> Exception:
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    if isinstance(exc, StoreUnavailable):
        return exc
    if isinstance(exc, OperationalError):
        return StoreUnavailable(str(exc))
    if isinstance(exc, DatabaseError):
        code = getattr(exc, "code", None)
        if code is None:
            text = str(exc)
            marker = "code: "
            if marker in text:
                digits = text.split(marker, 1)[1].split(",", 1)[0].strip()
                code = int(digits) if digits.isdigit() else None
        if code in RETRYABLE_CODES:
            return StoreUnavailable(str(exc))
    return exc
