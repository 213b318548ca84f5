"""The writer's step of the verifiable log: each event's origin, leaf index and leaf hash, and
the tree tiles that grow with them; used by the single writer thread right before each insert.

One log per tenant per receiver instance: origin ``otel-audit/<tenant>/<instance id>``. Several
receivers writing the same store each extend their own logs, so no two processes race for a
leaf index. Within a log, leaf indexes run 0, 1, 2… without gaps; the leaf hash is
SHA-256(0x00 ‖ canonical(row)), computed for a whole batch at once, 16 k rows at a
time (pyarrow + hashlib; the embedded engine computes the same bytes, tested, at more CPU).
The tree's interior hashes cost about one more SHA-256 per event (a full tile of 256 leaves
takes 255), written as tiles.

Order of writes: the events first, then their tiles. After a failed insert or a kill between
the two, :meth:`Chainer.heads` rebuilds each log's tree edge from the stored tiles and appends
the leaf hashes of stored events that the tiles lack, so the two always meet again. A new log
is registered (a signed checkpoint of size 0, see :mod:`receiver.integrity.checkpoints`) before
its first leaf is stored, so verify can tell it from a forged one.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from receiver.integrity.canonical import event_digests
from receiver.integrity.tiles import Tile, TreeEdge

log = logging.getLogger("otel_audit.integrity")
HASH_TYPE = pa.binary(32)
LOG_PREFIX = "otel-audit/"


def origin_for(tenant_id: str, instance_id: str) -> str:
    return f"{LOG_PREFIX}{tenant_id}/{instance_id}"


def instance_of(origin: str) -> str:
    return origin.rpartition("/")[2]


#: from this many rows a batch's leaf hashes would be computed by the engine rather than here
#: (pyarrow + hashlib); None: never. Measured on chDB: 1 row 0.9 vs 14 ms, 512 rows 2.6 vs
#: 10.8 ms, 8192 rows 25.6 vs 28.9 ms, and 102 k rows 3.0-3.7 vs 3.9-4.5 µs of process CPU per
#: event (the engine's threads finish sooner in wall time but cost more CPU): here is cheaper
#: at every size a group commit takes (bench/commit_path.py, docs/BENCHMARKS.md)
ENGINE_DIGEST_MIN_ROWS: int | None = None


class LogStore(Protocol):
    """What the Chainer needs of a store. A store may also offer ``event_digests(table) ->
    list[bytes] | None`` (leaf hashes computed by its engine)."""

    def last_tiles(self, instance_id: str | None = None, origin: str | None = None) -> list[Tile]: ...
    def log_sizes(self, instance_id: str) -> dict[str, int]: ...
    def leaf_hashes(self, origin: str, lo: int, hi: int) -> list[tuple[int, bytes]]: ...
    def insert_tiles(self, tiles: list[Tile]) -> None: ...


def load_instance_id(state_dir: Path) -> str:
    """This receiver's id, made once and kept in ``state_dir/instance-id``."""
    path = state_dir / "instance-id"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        instance_id = secrets.token_hex(6)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(instance_id + "\n", encoding="ascii")
        os.replace(tmp, path)
        return instance_id


@dataclass(slots=True)
class Pending:
    """A batch's grown tree edges and the tiles to write once its events are stored."""

    edges: dict[str, TreeEdge] = field(default_factory=dict)
    tiles: list[Tile] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.edges)


class Chainer:
    """Assigns log columns to a deduplicated batch; used only by the writer thread.

    ``register(origin, tenant)`` is called once for a log that has no leaf yet, before the
    batch that starts it is stored (it signs the log's size-0 checkpoint)."""

    def __init__(
        self,
        store: LogStore,
        instance_id: str,
        register: Callable[[str, str], Any] | None = None,
    ) -> None:
        if not instance_id or "/" in instance_id:
            raise ValueError(f"instance id {instance_id!r} must be non-empty and contain no '/'")
        self.instance_id = instance_id
        self._store = store
        self._register = register
        self._edges: dict[str, TreeEdge] = {}
        self._stale = True
        #: called with {log: size} once a batch's events are stored (log streams wake on it)
        self.listeners: list[Callable[[dict[str, int]], Any]] = []

    def heads(self) -> dict[str, TreeEdge]:
        """Each log's tree edge (recovered from the store after a start or a failed insert)."""
        if self._stale:
            self._edges = self._recover()
            self._stale = False
        return self._edges

    def _recover(self) -> dict[str, TreeEdge]:
        by_origin: dict[str, list[Tile]] = {}
        for tile in self._store.last_tiles(self.instance_id):
            by_origin.setdefault(tile.origin, []).append(tile)
        edges = {o: TreeEdge.from_last_tiles(o, t) for o, t in by_origin.items()}
        for origin, size in self._store.log_sizes(self.instance_id).items():
            edge = edges.setdefault(origin, TreeEdge(origin))
            if size > edge.size:  # events stored, their tiles not (a kill or a failed tile insert)
                found = self._store.leaf_hashes(origin, edge.size, size - 1)
                if [i for i, _ in found] != list(range(edge.size, size)):
                    raise RuntimeError(
                        f"log {origin}: stored leaves {edge.size}..{size - 1} are not contiguous"
                    )
                self._store.insert_tiles(edge.append([bytes(h) for _, h in found]))
        return edges

    def assign(self, table: pa.Table) -> tuple[pa.Table, Pending]:
        """``table`` with chain_id (origin), seq (leaf index) and hash (leaf hash) appended,
        rows in their order (the retired v1 chain's prev_hash is left to the column's default,
        32 zero bytes); and the grown edges to :meth:`advance` to once the rows are stored."""
        edges = self.heads()
        n = table.num_rows
        if n == 0:
            return table, Pending()
        encoded = table.column("tenant_id").combine_chunks().dictionary_encode()
        tenant_index = encoded.indices.to_numpy(zero_copy_only=False)
        tenants = encoded.dictionary.to_pylist()
        origins = [origin_for(t, self.instance_id) for t in tenants]
        seq = np.empty(n, dtype=np.uint64)
        rows_of = []
        for k, origin in enumerate(origins):
            edge = edges.get(origin)
            if edge is None or edge.size == 0:
                if self._register is not None:
                    self._register(origin, tenants[k])
            start = edge.size if edge is not None else 0
            rows = np.flatnonzero(tenant_index == k)
            rows_of.append(rows)
            seq[rows] = np.arange(start, start + len(rows), dtype=np.uint64)
        origin_col = pa.DictionaryArray.from_arrays(encoded.indices, pa.array(origins, pa.string()))
        table = table.append_column("chain_id", origin_col.cast(pa.string())).append_column(
            "seq", pa.array(seq, pa.uint64())
        )
        big = ENGINE_DIGEST_MIN_ROWS is not None and n >= ENGINE_DIGEST_MIN_ROWS
        engine = getattr(self._store, "event_digests", None) if big else None
        digests = engine(table) if engine is not None else None
        if digests is None:
            digests = event_digests(table)
        pending = Pending()
        for k, origin in enumerate(origins):
            old = edges.get(origin) or TreeEdge(origin)
            grown = TreeEdge(origin, list(old.full), [list(p) for p in old.partial])
            pending.tiles += grown.append([digests[i] for i in rows_of[k].tolist()])
            pending.edges[origin] = grown
        # straight from buffers: a list of 100 k bytes objects through pa.array costs ~0.1 µs each
        leaves = pa.FixedSizeBinaryArray.from_buffers(HASH_TYPE, n, [None, pa.py_buffer(b"".join(digests))])
        table = table.append_column("hash", leaves)
        return table, pending

    def advance(self, pending: Pending) -> None:
        """The batch is stored: write its tiles, then move the edges. The events are durable
        either way: a failed tile insert is logged and repaired from them before the next batch."""
        try:
            self._store.insert_tiles(pending.tiles)
        except Exception:  # noqa: BLE001 - the events are stored; the tiles are rebuilt from them
            log.exception("writing tree tiles failed; they are rebuilt from the stored leaves")
            self._stale = True
        else:
            self._edges.update(pending.edges)
        sizes = {origin: edge.size for origin, edge in pending.edges.items()}
        for listener in self.listeners:
            try:
                listener(sizes)
            except Exception:  # noqa: BLE001 - a listener never fails a commit
                log.exception("a commit listener failed")

    def invalidate(self) -> None:
        """An insert failed: re-read the logs from the store before the next batch."""
        self._stale = True
