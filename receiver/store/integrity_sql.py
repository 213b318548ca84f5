"""The statements of the verifiable log (tiles, leaves, signed checkpoints) and the store
methods that run them; :class:`SqlStore` mixes :class:`IntegrityQueries` in, so both engines
run the same SQL. Everything here reads through the engine's read-only path except the two
inserts (tiles, checkpoints)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from receiver.model import COLUMNS
from receiver.store.sql import EVENTS_TABLE, Statement, check_identifier

if TYPE_CHECKING:
    from receiver.integrity.tiles import Tile

TILES_TABLE = "audit_log_tiles"
CHECKPOINTS_TABLE = "audit_log_checkpoints"
LOG_PREFIX = "otel-audit/"
CHECKPOINT_COLUMNS = ("origin", "tenant_id", "tree_size", "root_hash", "key_id", "note", "created_at")
#: what verify and proofs read of each row: every stored column (id as text) and the log columns
_LEAF_SELECT = ", ".join(
    ["toString(id) AS id" if c == "id" else c for c in COLUMNS] + ["chain_id", "seq", "hash"]
)
_TILE_SCHEMA = pa.schema(
    [
        ("origin", pa.string()),
        ("level", pa.uint8()),
        ("idx", pa.uint64()),
        ("width", pa.uint16()),
        ("hashes", pa.binary()),
    ]
)
_CHECKPOINT_SCHEMA = pa.schema(
    [
        ("origin", pa.string()),
        ("tenant_id", pa.string()),
        ("tree_size", pa.uint64()),
        ("root_hash", pa.string()),
        ("key_id", pa.string()),
        ("note", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True, slots=True)
class LogSummary:
    """The stored events of one (origin, tenant) pair."""

    origin: str
    tenant_id: str
    rows: int
    min_seq: int
    max_seq: int
    distinct_seqs: int


def _events(database: str) -> str:
    return f"{check_identifier(database)}.{EVENTS_TABLE}"


def _table(database: str, name: str) -> str:
    return f"{check_identifier(database)}.{name}"


def _scope(tenants: tuple[str, ...] | None, column: str = "tenant_id") -> tuple[str, dict[str, Any]]:
    if tenants is None:
        return "1", {}
    return f"{column} IN {{tenants:Array(String)}}", {"tenants": list(tenants)}


def log_summaries(database: str, tenants: tuple[str, ...] | None) -> Statement:
    cond, params = _scope(tenants)
    return Statement(
        "SELECT chain_id AS origin, tenant_id AS tenant, count() AS rows, min(seq) AS min_seq,"
        " max(seq) AS max_seq, uniqExact(seq) AS distinct_seqs"
        f" FROM {_events(database)} WHERE {cond} GROUP BY chain_id, tenant_id ORDER BY origin, tenant",
        params,
    )


def log_sizes(database: str, suffix: str) -> Statement:
    """Next leaf index per log of one instance, from the events."""
    return Statement(
        f"SELECT chain_id AS origin, max(seq) + 1 AS next FROM {_events(database)}"
        " WHERE startsWith(chain_id, {prefix:String}) AND endsWith(chain_id, {suffix:String}) GROUP BY chain_id",
        {"prefix": LOG_PREFIX, "suffix": suffix},
    )


def last_tiles(database: str, suffix: str | None, origin: str | None = None) -> Statement:
    """The widest copy of the last tile of every level of every log of one instance (or one log)."""
    if origin is not None:
        cond, params = "origin = {origin:String}", {"origin": origin}
    else:
        cond = "startsWith(origin, {prefix:String}) AND endsWith(origin, {suffix:String})"
        params = {"prefix": LOG_PREFIX, "suffix": suffix}
    return Statement(
        "SELECT origin, level, idx, hex(argMax(hashes, width)) AS hashes"
        f" FROM {_table(database, TILES_TABLE)} WHERE {cond} GROUP BY origin, level, idx"
        " ORDER BY origin, level, idx DESC LIMIT 1 BY origin, level",
        params,
    )


def tiles(database: str, origin: str, level: int, lo: int, hi: int) -> Statement:
    """The widest copy of tiles lo..hi (inclusive) of one level of one log, by index."""
    return Statement(
        "SELECT idx, hex(argMax(hashes, width)) AS hashes"
        f" FROM {_table(database, TILES_TABLE)} WHERE origin = {{origin:String}} AND level = {{level:UInt8}}"
        " AND idx >= {lo:UInt64} AND idx <= {hi:UInt64} GROUP BY idx ORDER BY idx",
        {"origin": origin, "level": level, "lo": lo, "hi": hi},
    )


def tiles_at(database: str, origin: str, coords: set[tuple[int, int]]) -> Statement:
    """The widest copy of each of these (level, index) tiles of one log, in one query."""
    by_level: dict[int, list[int]] = {}
    for level, index in coords:
        by_level.setdefault(int(level), []).append(int(index))
    conds, params = [], {"origin": origin}
    for level, indexes in sorted(by_level.items()):
        conds.append(f"(level = {level:d} AND idx IN {{l{level:d}:Array(UInt64)}})")
        params[f"l{level:d}"] = indexes  # type: ignore[assignment]
    return Statement(
        "SELECT level, idx, hex(argMax(hashes, width)) AS hashes"
        f" FROM {_table(database, TILES_TABLE)} WHERE origin = {{origin:String}} AND ({' OR '.join(conds) or '0'})"
        " GROUP BY level, idx",
        params,
    )


def checkpoint_covering(database: str, origin: str, leaf: int) -> Statement:
    return Statement(
        f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM {_table(database, CHECKPOINTS_TABLE)}"
        " WHERE origin = {origin:String} AND tree_size > {leaf:UInt64} ORDER BY tree_size DESC, created_at DESC LIMIT 1",
        {"origin": origin, "leaf": leaf},
    )


def leaves(database: str, origin: str, lo: int, hi: int, columns: str = _LEAF_SELECT) -> Statement:
    """Rows of one log with lo <= seq <= hi, in leaf order."""
    return Statement(
        f"SELECT {columns} FROM {_events(database)}"
        " WHERE chain_id = {origin:String} AND seq >= {lo:UInt64} AND seq <= {hi:UInt64}"
        " ORDER BY seq, hash",
        {"origin": origin, "lo": lo, "hi": hi},
    )


RESTORED_TABLE = "audit_events_restored"


def recomputed_leaves(database: str, origin: str, lo: int, hi: int) -> Statement:
    """Leaf index and the leaf hash the engine recomputes from each stored row, in leaf order."""
    return Statement(
        f"SELECT seq, SHA256(concat('\\0', {canonical_sql()})) AS leaf FROM {_events(database)}"
        " WHERE chain_id = {origin:String} AND seq >= {lo:UInt64} AND seq <= {hi:UInt64} ORDER BY seq, hash",
        {"origin": origin, "lo": lo, "hi": hi},
    )


def leaf_of(
    database: str, event_id: str, tenants: tuple[str, ...] | None, table: str = EVENTS_TABLE
) -> Statement:
    cond, params = _scope(tenants)
    return Statement(
        f"SELECT {_LEAF_SELECT} FROM (SELECT * FROM {_table(database, table)}"
        f" WHERE id = {{event_id:UUID}} AND {cond} LIMIT 1)",
        {**params, "event_id": event_id},
    )


def table_exists(database: str, name: str) -> Statement:
    return Statement(
        "SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {name:String}",
        {"db": database, "name": name},
    )


def checkpoints(database: str, tenants: tuple[str, ...] | None, origin: str | None = None) -> Statement:
    cond, params = _scope(tenants)
    if origin is not None:
        cond += " AND origin = {origin:String}"
        params["origin"] = origin
    return Statement(
        f"SELECT {', '.join(CHECKPOINT_COLUMNS)} FROM {_table(database, CHECKPOINTS_TABLE)}"
        f" WHERE {cond} ORDER BY tree_size DESC, created_at DESC",
        params,
    )


def retention_leaves(database: str, tenant: str, origin: str) -> Statement:
    from receiver.integrity.retention_records import ACTION, LEAVES_ATTR, ORIGIN_ATTR

    return Statement(
        f"SELECT attributes[{{leaves_key:String}}] AS leaves FROM {_events(database)}"
        " WHERE tenant_id = {tenant:String} AND action = {action:String}"
        " AND attributes[{origin_key:String}] = {origin:String}",
        {
            "tenant": tenant,
            "action": ACTION,
            "origin": origin,
            "origin_key": ORIGIN_ATTR,
            "leaves_key": LEAVES_ATTR,
        },
    )


def expiring_leaves(
    database: str, horizon: object, tenants: list[str], days: list[int], default_days: int, held: list[str]
) -> Statement:
    """Leaves of every log whose row the TTL drops by ``horizon`` (the table TTL's expression
    with the current policies, or the row's own retain_until), per (tenant, origin)."""
    return Statement(
        "SELECT tenant_id AS tenant, chain_id AS origin, groupArray(seq) AS leaves"
        f" FROM {_events(database)} WHERE startsWith(chain_id, {{prefix:String}})"
        " AND NOT has({held:Array(String)}, toString(tenant_id)) AND ("
        " toDate(created_at) + toIntervalDay(transform(toString(tenant_id), {tenants:Array(String)},"
        " {days:Array(UInt32)}, {default:UInt32})) <= {horizon:Date} OR retain_until <= {horizon:Date})"
        " GROUP BY tenant_id, chain_id ORDER BY tenant, origin",
        {
            "prefix": LOG_PREFIX,
            "held": held,
            "tenants": tenants,
            "days": days,
            "default": default_days,
            "horizon": horizon,
        },
    )


class IntegrityQueries:
    """Store methods of the verifiable log; relies on SqlStore's primitives."""

    database: str
    _query_arrow: Any
    _stream_arrow: Any
    _insert_arrow: Any

    def log_summaries(self, tenants: tuple[str, ...] | None) -> list[LogSummary]:
        rows = self._query_arrow(log_summaries(self.database, tenants)).to_pylist()
        return [
            LogSummary(
                r["origin"],
                r["tenant"],
                int(r["rows"]),
                int(r["min_seq"]),
                int(r["max_seq"]),
                int(r["distinct_seqs"]),
            )
            for r in rows
        ]

    def log_sizes(self, instance_id: str) -> dict[str, int]:
        rows = self._query_arrow(log_sizes(self.database, "/" + instance_id)).to_pylist()
        return {r["origin"]: int(r["next"]) for r in rows}

    def last_tiles(self, instance_id: str | None = None, origin: str | None = None) -> list[Tile]:
        from receiver.integrity.tiles import Tile

        suffix = None if instance_id is None else "/" + instance_id
        rows = self._query_arrow(last_tiles(self.database, suffix, origin)).to_pylist()
        return [Tile(r["origin"], int(r["level"]), int(r["idx"]), bytes.fromhex(r["hashes"])) for r in rows]

    def tile_range(self, origin: str, level: int, lo: int, hi: int) -> dict[int, bytes]:
        rows = self._query_arrow(tiles(self.database, origin, level, lo, hi)).to_pylist()
        return {int(r["idx"]): bytes.fromhex(r["hashes"]) for r in rows}

    def tiles_at(self, origin: str, coords: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not coords:
            return {}
        rows = self._query_arrow(tiles_at(self.database, origin, coords)).to_pylist()
        return {(int(r["level"]), int(r["idx"])): bytes.fromhex(r["hashes"]) for r in rows}

    def checkpoint_covering(self, origin: str, leaf: int) -> dict[str, Any] | None:
        rows = self._query_arrow(checkpoint_covering(self.database, origin, leaf)).to_pylist()
        return rows[0] if rows else None

    def insert_tiles(self, tiles: list[Tile]) -> None:
        if not tiles:
            return
        table = pa.Table.from_pydict(
            {
                "origin": [t.origin for t in tiles],
                "level": [t.level for t in tiles],
                "idx": [t.index for t in tiles],
                "width": [t.width for t in tiles],
                "hashes": [t.hashes for t in tiles],
            },
            schema=_TILE_SCHEMA,
        )
        self._insert_arrow(_table(self.database, TILES_TABLE), table)

    def leaf_hashes(self, origin: str, lo: int, hi: int) -> list[tuple[int, bytes]]:
        table = self._query_arrow(leaves(self.database, origin, lo, hi, "seq, hash"))
        return list(zip(table.column("seq").to_pylist(), table.column("hash").to_pylist(), strict=True))

    def iter_leaves(self, origin: str, lo: int, hi: int, chunk: int = 65536) -> Iterator[pa.RecordBatch]:
        """Rows lo..hi of a log in leaf order, one index range at a time (bounded memory)."""
        start = lo
        while start <= hi:
            end = min(hi, start + chunk - 1)
            yield from self._stream_arrow(leaves(self.database, origin, start, end))
            start = end + 1

    def iter_recomputed_leaves(self, origin: str, lo: int, hi: int) -> Iterator[pa.RecordBatch]:
        """(seq, leaf) of every stored row of lo..hi, re-hashed by the engine."""
        yield from self._stream_arrow(recomputed_leaves(self.database, origin, lo, hi))

    def leaf_row(self, event_id: str, tenants: tuple[str, ...] | None) -> pa.Table | None:
        """The event's row with its log columns, from the events or, once archived and
        restored for an investigation, from the restored table (its proof still holds)."""
        table = self._query_arrow(leaf_of(self.database, event_id, tenants))
        if (
            not table.num_rows
            and self._query_arrow(table_exists(self.database, RESTORED_TABLE)).column("n")[0].as_py()
        ):
            table = self._query_arrow(leaf_of(self.database, event_id, tenants, RESTORED_TABLE))
        return table.slice(0, 1) if table.num_rows else None

    def retention_leaves(self, tenant: str, origin: str) -> list[str]:
        rows = self._query_arrow(retention_leaves(self.database, tenant, origin)).to_pylist()
        return [r["leaves"] for r in rows]

    def checkpoint_rows(
        self, tenants: tuple[str, ...] | None, origin: str | None = None
    ) -> list[dict[str, Any]]:
        return self._query_arrow(checkpoints(self.database, tenants, origin)).to_pylist()

    def insert_checkpoint(self, row: dict[str, Any]) -> None:
        self._insert_arrow(
            _table(self.database, CHECKPOINTS_TABLE), pa.Table.from_pylist([row], schema=_CHECKPOINT_SCHEMA)
        )


def event_digests_sql(python_table: str) -> str:
    """SHA-256(canonical()) of every row of a Python Arrow table, in row order (chDB's
    ``Python()`` table function finds the table by its variable name)."""
    if not python_table.isidentifier():
        raise ValueError(python_table)
    return f"SELECT SHA256(concat('\\0', {canonical_sql()})) AS digest FROM Python({python_table})"


def canonical_sql() -> str:
    """canonical() as a ClickHouse expression over a row of ``audit_events`` (or any SELECT
    with its columns): the same bytes as receiver.integrity.canonical, for engine-side hashing
    (``SHA256(concat('\\0', <this>))`` is a row's leaf hash) and for cross-checks."""
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
