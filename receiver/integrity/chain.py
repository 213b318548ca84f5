"""The hash chain, assigned by the single writer thread right before each insert.

One chain per tenant per receiver instance: ``chain_id = "<tenant>/<instance id>"``. Several
receivers writing the same store each extend their own chains, so no two processes ever race
for the same sequence number. Within a chain, ``seq`` runs 1, 2, 3… without gaps and

    hash = SHA-256(prev_hash ‖ canonical(row))      prev_hash of seq 1 = 32 zero bytes

The heads (last seq and hash per chain) live in memory and are recovered from the store at
start: an acknowledged insert is durable, so after a kill -9 the store's newest row of each
chain *is* the head. A failed insert leaves the heads untouched (they advance only on success)
and makes the next commit re-read them, in case the engine kept the rows after all.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from receiver.integrity.canonical import canonical_column

GENESIS = bytes(32)
HASH_TYPE = pa.binary(32)
CHAIN_SEPARATOR = "/"


def chain_id_for(tenant_id: str, instance_id: str) -> str:
    return f"{tenant_id}{CHAIN_SEPARATOR}{instance_id}"


def link(prev_hash: bytes, canonical_bytes: bytes) -> bytes:
    """One step of the chain (the reference definition)."""
    return hashlib.sha256(prev_hash + canonical_bytes).digest()


def chain_hashes(prev_hash: bytes, canonicals: Iterable[bytes]) -> Iterator[bytes]:
    """The hash of each row in turn, starting after ``prev_hash``."""
    sha256 = hashlib.sha256
    for data in canonicals:
        prev_hash = sha256(prev_hash + data).digest()
        yield prev_hash


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: bytes


class HeadSource(Protocol):
    def chain_heads(self, instance_id: str) -> dict[str, Head]: ...


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


class Chainer:
    """Assigns chain columns to a deduplicated batch; used only by the writer thread."""

    def __init__(self, store: HeadSource, instance_id: str) -> None:
        if not instance_id or CHAIN_SEPARATOR in instance_id:
            raise ValueError(f"instance id {instance_id!r} must be non-empty and contain no '/'")
        self.instance_id = instance_id
        self._store = store
        self._heads: dict[str, Head] = {}
        self._stale = True

    def heads(self) -> dict[str, Head]:
        if self._stale:
            self._heads = dict(self._store.chain_heads(self.instance_id))
            self._stale = False
        return dict(self._heads)

    def assign(self, table: pa.Table) -> tuple[pa.Table, dict[str, Head]]:
        """``table`` with chain_id, seq, prev_hash and hash appended (rows regrouped by tenant,
        arrival order kept within a tenant), and the heads to :meth:`advance` to once stored."""
        heads = self.heads()
        if table.num_rows == 0:
            return table, {}
        order = pc.sort_indices(table, sort_keys=[("tenant_id", "ascending")])  # stable
        table = table.take(order)
        tenants = table.column("tenant_id").combine_chunks()
        n = table.num_rows
        changes = (
            pc.not_equal(tenants.slice(1), tenants.slice(0, n - 1)) if n > 1 else pa.array([], pa.bool_())
        )
        starts = [0] + [int(i) + 1 for i in pc.indices_nonzero(changes).to_numpy()]
        chain_ids: list[str] = []
        seq = np.empty(n, dtype=np.uint64)
        first_prev: list[bytes] = []
        run_bounds = list(zip(starts, starts[1:] + [n], strict=True))
        for begin, end in run_bounds:
            chain_id = chain_id_for(tenants[begin].as_py(), self.instance_id)
            head = heads.get(chain_id, Head(0, GENESIS))
            chain_ids.append(chain_id)
            seq[begin:end] = np.arange(head.seq + 1, head.seq + 1 + end - begin, dtype=np.uint64)
            first_prev.append(head.hash)
        chain_col = pa.array(
            np.repeat(np.array(chain_ids, dtype=object), [e - b for b, e in run_bounds]), pa.string()
        )
        table = table.append_column("chain_id", chain_col).append_column("seq", pa.array(seq, pa.uint64()))
        canon = canonical_column(table).to_pylist()
        hashes: list[bytes] = []
        prevs: list[bytes] = []
        new_heads: dict[str, Head] = {}
        for (begin, end), chain_id, prev in zip(run_bounds, chain_ids, first_prev, strict=True):
            run = list(chain_hashes(prev, canon[begin:end]))
            prevs.append(prev)
            prevs.extend(run[:-1])
            hashes.extend(run)
            new_heads[chain_id] = Head(int(seq[end - 1]), run[-1])
        table = table.append_column("prev_hash", pa.array(prevs, HASH_TYPE)).append_column(
            "hash", pa.array(hashes, HASH_TYPE)
        )
        return table, new_heads

    def advance(self, new_heads: dict[str, Head]) -> None:
        self._heads.update(new_heads)

    def invalidate(self) -> None:
        """An insert failed: re-read the heads from the store before the next batch."""
        self._stale = True
