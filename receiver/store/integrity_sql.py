"""The statements of tamper evidence (chain heads, chain reads, checkpoints) and the store
methods that run them; :class:`SqlStore` mixes :class:`IntegrityQueries` in, so both engines
run the same SQL. Everything here reads through the engine's read-only path except
:meth:`IntegrityQueries.insert_checkpoint`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from receiver.model import COLUMNS
from receiver.store.sql import EVENTS_TABLE, Statement, check_identifier

if TYPE_CHECKING:
    from receiver.integrity.chain import Head

CHECKPOINTS_TABLE = "audit_checkpoints"
CHECKPOINT_COLUMNS = (
    "chain_id",
    "tenant_id",
    "last_seq",
    "last_hash",
    "created_at",
    "count",
    "prev_signature",
    "key_id",
    "version",
    "signature",
)
#: what verify reads of each row: every stored column (id as text) and the chain columns
_CHAIN_SELECT = ", ".join(
    ["toString(id) AS id" if c == "id" else c for c in COLUMNS] + ["chain_id", "seq", "prev_hash", "hash"]
)


@dataclass(frozen=True, slots=True)
class ChainSummary:
    chain_id: str
    tenant_id: str
    rows: int
    min_seq: int
    max_seq: int
    distinct_seqs: int


def _events(database: str) -> str:
    return f"{check_identifier(database)}.{EVENTS_TABLE}"


def chain_heads(database: str, instance_id: str) -> Statement:
    return Statement(
        f"SELECT chain_id, max(seq) AS head_seq, argMax(hash, seq) AS head_hash FROM {_events(database)}"
        " WHERE endsWith(chain_id, {suffix:String}) GROUP BY chain_id",
        {"suffix": "/" + instance_id},
    )


def chain_summaries(database: str, tenants: tuple[str, ...] | None, chain_id: str | None = None) -> Statement:
    conds = ["chain_id != ''"]
    params: dict[str, Any] = {}
    if tenants is not None:
        conds.append("tenant_id IN {tenants:Array(String)}")
        params["tenants"] = list(tenants)
    if chain_id is not None:
        conds.append("chain_id = {chain:String}")
        params["chain"] = chain_id
    return Statement(
        "SELECT chain_id, any(tenant_id) AS tenant, count() AS rows, min(seq) AS min_seq,"
        " max(seq) AS max_seq, uniqExact(seq) AS distinct_seqs"
        f" FROM {_events(database)} WHERE {' AND '.join(conds)} GROUP BY chain_id ORDER BY chain_id",
        params,
    )


def unchained_counts(database: str, tenants: tuple[str, ...] | None) -> Statement:
    cond, params = "", {}
    if tenants is not None:
        cond = " AND tenant_id IN {tenants:Array(String)}"
        params["tenants"] = list(tenants)
    return Statement(
        f"SELECT tenant_id AS tenant, count() AS n FROM {_events(database)} WHERE chain_id = ''{cond} GROUP BY tenant_id",
        params,
    )


def seq_bounds(
    database: str, chain_id: str, since: dt.datetime | None, until: dt.datetime | None
) -> Statement:
    conds = ["chain_id = {chain:String}"]
    params: dict[str, Any] = {"chain": chain_id}
    if since is not None:
        conds.append("created_at >= {since:DateTime64(6, 'UTC')}")
        params["since"] = since
    if until is not None:
        conds.append("created_at < {until:DateTime64(6, 'UTC')}")
        params["until"] = until
    return Statement(
        f"SELECT count() AS n, min(seq) AS lo_seq, max(seq) AS hi_seq FROM {_events(database)} WHERE {' AND '.join(conds)}",
        params,
    )


def chain_rows(database: str, chain_id: str, lo: int, hi: int) -> Statement:
    """Rows of one chain with lo <= seq <= hi, in sequence order (ties by hash: stable)."""
    return Statement(
        f"SELECT {_CHAIN_SELECT} FROM {_events(database)}"
        " WHERE chain_id = {chain:String} AND seq >= {lo:UInt64} AND seq <= {hi:UInt64}"
        " ORDER BY seq, hash",
        {"chain": chain_id, "lo": lo, "hi": hi},
    )


def seq_of_hash(database: str, chain_id: str, digest: bytes) -> Statement:
    return Statement(
        f"SELECT seq AS found_seq FROM {_events(database)} WHERE chain_id = {{chain:String}}"
        " AND hex(hash) = {digest:String} ORDER BY seq LIMIT 1",
        {"chain": chain_id, "digest": digest.hex().upper()},
    )


def checkpoints(database: str, tenants: tuple[str, ...] | None) -> Statement:
    cond, params = "1", {}
    if tenants is not None:
        cond = "tenant_id IN {tenants:Array(String)}"
        params["tenants"] = list(tenants)
    return Statement(
        f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM {check_identifier(database)}.{CHECKPOINTS_TABLE}"
        f" WHERE {cond} ORDER BY chain_id, last_seq",
        params,
    )


def last_checkpoint(database: str, chain_id: str) -> Statement:
    return Statement(
        f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM {check_identifier(database)}.{CHECKPOINTS_TABLE}"
        " WHERE chain_id = {chain:String} ORDER BY last_seq DESC LIMIT 1",
        {"chain": chain_id},
    )


def head_of(database: str, chain_id: str) -> Statement:
    return Statement(
        f"SELECT max(seq) AS head_seq, argMax(hash, seq) AS head_hash, any(tenant_id) AS tenant FROM {_events(database)}"
        " WHERE chain_id = {chain:String}",
        {"chain": chain_id},
    )


class IntegrityQueries:
    """Store methods for the chain; relies on SqlStore's primitives."""

    database: str
    _query_arrow: Any
    _stream_arrow: Any
    _insert_arrow: Any

    def chain_heads(self, instance_id: str) -> dict[str, Head]:
        from receiver.integrity.chain import Head

        rows = self._query_arrow(chain_heads(self.database, instance_id)).to_pylist()
        return {r["chain_id"]: Head(int(r["head_seq"]), bytes(r["head_hash"])) for r in rows if r["head_seq"]}

    def chain_head(self, chain_id: str) -> tuple[Head, str] | None:
        from receiver.integrity.chain import Head

        row = self._query_arrow(head_of(self.database, chain_id)).to_pylist()[0]
        if not row["head_seq"]:
            return None
        return Head(int(row["head_seq"]), bytes(row["head_hash"])), row["tenant"]

    def chain_summaries(
        self, tenants: tuple[str, ...] | None, chain_id: str | None = None
    ) -> list[ChainSummary]:
        rows = self._query_arrow(chain_summaries(self.database, tenants, chain_id)).to_pylist()
        return [
            ChainSummary(
                r["chain_id"],
                r["tenant"],
                int(r["rows"]),
                int(r["min_seq"]),
                int(r["max_seq"]),
                int(r["distinct_seqs"]),
            )
            for r in rows
        ]

    def unchained_counts(self, tenants: tuple[str, ...] | None) -> dict[str, int]:
        rows = self._query_arrow(unchained_counts(self.database, tenants)).to_pylist()
        return {r["tenant"]: int(r["n"]) for r in rows}

    def seq_bounds(
        self, chain_id: str, since: dt.datetime | None, until: dt.datetime | None
    ) -> tuple[int, int] | None:
        row = self._query_arrow(seq_bounds(self.database, chain_id, since, until)).to_pylist()[0]
        return (int(row["lo_seq"]), int(row["hi_seq"])) if row["n"] else None

    def iter_chain(self, chain_id: str, lo: int, hi: int, chunk: int = 100_000) -> Iterator[pa.RecordBatch]:
        """Rows lo..hi of a chain in sequence order, one seq range at a time (bounded memory)."""
        start = lo
        while start <= hi:
            end = min(hi, start + chunk - 1)
            yield from self._stream_arrow(chain_rows(self.database, chain_id, start, end))
            start = end + 1

    def seq_of_hash(self, chain_id: str, digest: bytes) -> int | None:
        rows = self._query_arrow(seq_of_hash(self.database, chain_id, digest)).to_pylist()
        return int(rows[0]["found_seq"]) if rows else None

    def checkpoint_rows(self, tenants: tuple[str, ...] | None) -> list[dict[str, Any]]:
        return self._query_arrow(checkpoints(self.database, tenants)).to_pylist()

    def last_checkpoint_row(self, chain_id: str) -> dict[str, Any] | None:
        rows = self._query_arrow(last_checkpoint(self.database, chain_id)).to_pylist()
        return rows[0] if rows else None

    def insert_checkpoint(self, row: dict[str, Any]) -> None:
        table = pa.Table.from_pylist(
            [row],
            schema=pa.schema(
                [
                    ("chain_id", pa.string()),
                    ("tenant_id", pa.string()),
                    ("last_seq", pa.uint64()),
                    ("last_hash", pa.string()),
                    ("created_at", pa.timestamp("us", tz="UTC")),
                    ("count", pa.uint64()),
                    ("prev_signature", pa.string()),
                    ("key_id", pa.string()),
                    ("version", pa.uint8()),
                    ("signature", pa.string()),
                ]
            ),
        )
        self._insert_arrow(f"{check_identifier(self.database)}.{CHECKPOINTS_TABLE}", table)


def event_digests_sql(python_table: str) -> str:
    """SHA-256(canonical()) of every row of a Python Arrow table, in row order (chDB's
    ``Python()`` table function finds the table by its variable name)."""
    if not python_table.isidentifier():
        raise ValueError(python_table)
    return f"SELECT SHA256(concat('\\0', {canonical_sql()})) AS digest FROM Python({python_table})"


def canonical_sql() -> str:
    """canonical() as a ClickHouse expression over a row of ``audit_events`` (or any SELECT
    with its columns): the same bytes as receiver.integrity.canonical, for engine-side hashing
    (``SHA256(concat(prev_hash, SHA256(<this>)))`` is a row's hash) and for cross-checks."""
    from receiver.integrity.canonical import FIELDS, PREFIX

    def field(expr: str) -> str:
        return f"toString(length({expr})), ':', {expr}"

    parts = []
    for name in FIELDS:
        if name in ("created_at", "received_at"):
            expr = f"toString(toUnixTimestamp64Micro({name}))"
        elif name == "attributes":
            expr = (
                "arrayStringConcat(arrayMap((k, v) -> concat(toString(length(k)), ':', k,"
                " toString(length(v)), ':', v), mapKeys(attributes), mapValues(attributes)))"
            )
        elif name in ("id", "seq", "http_status", "retain_until"):
            expr = f"toString({name})"
        else:
            expr = name
        parts.append(field(expr))
    prefix = PREFIX.decode("ascii").replace("\n", "\\n")
    return f"concat('{prefix}', " + ", ".join(parts) + ")"
