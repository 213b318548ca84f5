"""Verification of the verifiable log: every log, every leaf, every tile, every checkpoint.

Per log (origin), leaf ranges are read in order from the events and the level-0 tiles: each
stored event must re-hash (canonical v2) to its tile's leaf hash at its own index; no index may
appear twice, lie past the tree, or be missing unless a signed retention record covers it.
Each level of tiles must hash to the next. Each checkpoint (stored, and published copies read
from ``--checkpoints`` directories) must carry a signature by an accepted key, match the root
the tiles give at its size, and be consistent (RFC 9162 2.1.4) with the newest one. The set of
logs is signed state: an event in no log, in a log of the retired v1 chain, in another tenant's
log, or in a log no signed checkpoint registers is damage too.

Findings are :class:`Damage` (kind, tenant, origin, leaf, detail), grouped in a
:class:`TenantReport` (:mod:`receiver.integrity.report`); other checks (e.g. source gaps) may
append their own Damage to ``report.damages``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from receiver.integrity.canonical import event_digests
from receiver.integrity.checkpoints import read_published, tile_loader
from receiver.integrity.merkle import consistency_path, verify_consistency
from receiver.integrity.note import CheckpointBody, NoteError, Verifier, open_note, split_note
from receiver.integrity.report import Damage, LogReport, TenantReport
from receiver.integrity.retention_records import covered_ranges
from receiver.integrity.tiles import TILE_WIDTH, TileMissing, TreeEdge, tile_root

__all__ = ["Damage", "LogReport", "TenantReport", "tenant_of", "verify_store"]

LOG_PREFIX = "otel-audit/"
CHUNK_LEAVES = 512 * TILE_WIDTH  # 131,072 leaves per read (whole tiles)


def tenant_of(origin: str) -> str | None:
    if not origin.startswith(LOG_PREFIX) or origin.count("/") < 2:
        return None
    return origin[len(LOG_PREFIX) :].rpartition("/")[0]


@dataclass(slots=True)
class _Signed:
    body: CheckpointBody
    source: str  # "store" or a published file


def _checkpoints(
    notes: Iterable[tuple[str, str]], verifiers: list[Verifier], damages: Callable[[Damage], None]
) -> list[_Signed]:
    """Parse and check the signature of each (source, note); bad ones become damage."""
    out = []
    for source, note in notes:
        try:
            text = open_note(note, verifiers)[0] if verifiers else split_note(note)[0]
            body = CheckpointBody.parse(text)
        except NoteError as exc:
            origin = note.split("\n", 1)[0]
            damages(
                Damage(
                    "bad-signature", tenant_of(origin) or "", origin, None, f"checkpoint from {source}: {exc}"
                )
            )
            continue
        out.append(_Signed(body, source))
    return out


def verify_store(
    store: Any,
    *,
    tenants: tuple[str, ...] | None = None,
    since: dt.datetime | None = None,  # accepted for the old API; logs are always verified whole
    until: dt.datetime | None = None,
    checkpoint_dirs: Iterable[str | Path] = (),
    verifiers: list[Verifier] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[TenantReport]:
    """Every log of ``tenants`` (None: all) in the store, one report per tenant."""
    verifiers = verifiers or []
    reports: dict[str, TenantReport] = {}

    def report(tenant: str) -> TenantReport:
        return reports.setdefault(tenant, TenantReport(tenant, signatures_checked=bool(verifiers)))

    def add(d: Damage) -> None:
        report(d.tenant).damages.append(d)

    stored_notes = [("the store", r["note"]) for r in store.checkpoint_rows(tenants)]
    published_notes: list[tuple[str, str]] = []
    for directory in checkpoint_dirs:
        published_notes += [(f"published copy {p}", n) for p, n in read_published(directory)]
    if tenants is not None:
        published_notes = [(s, n) for s, n in published_notes if tenant_of(n.split("\n", 1)[0]) in tenants]
    signed = _checkpoints(stored_notes, verifiers, add)
    published = _checkpoints(published_notes, verifiers, add)
    external = bool(published_notes)
    if external:
        for tenant in {tenant_of(c.body.origin) for c in published if tenant_of(c.body.origin)}:
            report(tenant).external_copy = True  # type: ignore[arg-type]
    known = {c.body.origin for c in signed + published}
    known_published = {c.body.origin for c in published}
    summaries = store.log_summaries(tenants)
    origins: dict[str, str] = {}
    for s in summaries:
        r = report(s.tenant_id)
        r.external_copy = r.external_copy or external
        owner = tenant_of(s.origin)
        if s.origin == "":
            add(Damage("unchained", s.tenant_id, "", None, f"{s.rows:,} stored events are in no log"))
        elif owner is None:
            add(
                Damage(
                    "v1-chain",
                    s.tenant_id,
                    s.origin,
                    None,
                    f"{s.rows:,} events carry the retired v1 hash chain and are in no verifiable log"
                    " (check them with the previous release's verify; see docs/INTEGRITY.md)",
                )
            )
        elif owner != s.tenant_id:
            add(
                Damage(
                    "wrong-log",
                    s.tenant_id,
                    s.origin,
                    s.min_seq,
                    f"{s.rows:,} events of tenant {s.tenant_id!r} in another tenant's log",
                )
            )
        elif s.origin not in known:
            add(
                Damage(
                    "unknown-log",
                    s.tenant_id,
                    s.origin,
                    s.min_seq,
                    f"{s.rows:,} events in a log that no signed checkpoint registers",
                )
            )
        elif external and s.origin not in known_published:
            add(
                Damage(
                    "unknown-log",
                    s.tenant_id,
                    s.origin,
                    s.min_seq,
                    "log is not in the published checkpoint copy",
                )
            )
        else:
            origins[s.origin] = s.tenant_id
    for c in signed + published:
        tenant = tenant_of(c.body.origin)
        if tenant is not None:
            origins.setdefault(c.body.origin, tenant)
            report(tenant)
    for origin in sorted(origins):
        tenant = origins[origin]
        cps = [c for c in signed + published if c.body.origin == origin]
        max_seq = max((s.max_seq for s in summaries if s.origin == origin), default=-1)
        lg = _verify_log(store, tenant, origin, cps, add, progress, max_seq)
        report(tenant).logs.append(lg)
    return [reports[t] for t in sorted(reports)]


def _verify_log(
    store: Any,
    tenant: str,
    origin: str,
    cps: list[_Signed],
    add: Callable[[Damage], None],
    progress: Callable[[int], None] | None,
    max_seq: int,
) -> LogReport:
    edge = TreeEdge.from_last_tiles(origin, store.last_tiles(origin=origin))
    size = edge.size
    lg = LogReport(
        origin, leaves=size, checkpoints=len(cps), sealed=max((c.body.size for c in cps), default=0)
    )
    found: list[Damage] = []
    covered = covered_ranges(store, tenant, origin)
    hi = max(size - 1, max_seq)
    ups: list[bytes] = []  # level-1 hashes recomputed from full level-0 tiles
    for lo in range(0, hi + 1, CHUNK_LEAVES):
        end = min(hi, lo + CHUNK_LEAVES - 1)
        tiles = store.tile_range(origin, 0, lo // TILE_WIDTH, end // TILE_WIDTH)
        tree = np.zeros((end - lo + 1, 32), dtype=np.uint8)
        have_tree = np.zeros(end - lo + 1, dtype=bool)
        for idx, data in tiles.items():
            a = idx * TILE_WIDTH - lo
            # a commit that landed after this verify took its snapshot of the tree lengthens the
            # last tile: the hashes past the snapshot are the next verify's
            n = min(len(data) // 32, len(tree) - a)
            if n <= 0:
                continue
            data = data[: n * 32]
            tree[a : a + n] = np.frombuffer(data, dtype=np.uint8).reshape(n, 32)
            have_tree[a : a + n] = True
            if n == TILE_WIDTH:
                ups.append(tile_root([data[i : i + 32] for i in range(0, len(data), 32)]))
        seen = np.zeros(end - lo + 1, dtype=np.int64)
        for table in _leaf_batches(store, origin, lo, end):
            if progress is not None:
                progress(table.num_rows)
            lg.events += table.num_rows
            digests = (
                table.column("leaf").to_pylist() if "leaf" in table.column_names else event_digests(table)
            )
            seqs = np.asarray(table.column("seq").to_numpy(), dtype=np.int64)
            np.add.at(seen, seqs - lo, 1)
            mine = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, 32)
            local = seqs - lo
            in_tree = seqs < size
            ok = in_tree & have_tree[local] & np.all(tree[local] == mine, axis=1)
            if not in_tree.all():
                # A commit writes its events, then their tiles: events past this verify's
                # snapshot of the tree are either that instant or damage. The tree growing over
                # them tells which; those are the next verify's to check.
                grown = _grown_size(store, origin, int(seqs[~in_tree].max()))
                if grown > int(seqs[~in_tree].max()):
                    ok |= ~in_tree
            for i in np.flatnonzero(~ok)[:1].tolist():
                leaf = int(seqs[i])
                if leaf >= size:
                    found.append(
                        Damage(
                            "beyond-tree",
                            tenant,
                            origin,
                            leaf,
                            f"an event claims leaf {leaf:,} of a tree of {size:,} leaves",
                        )
                    )
                else:
                    moved = np.flatnonzero(np.all(tree == mine[i], axis=1))
                    detail = (
                        f"the event re-hashes to the tree's leaf {int(moved[0]) + lo:,}: rows were reordered"
                        if len(moved)
                        else "the event's content does not match its leaf hash in the tree"
                    )
                    found.append(
                        Damage("reordered" if len(moved) else "modified", tenant, origin, leaf, detail)
                    )
        dup = np.flatnonzero(seen > 1)
        if len(dup):
            found.append(
                Damage(
                    "duplicate",
                    tenant,
                    origin,
                    int(dup[0]) + lo,
                    "more than one event carries this leaf index",
                )
            )
        limit = min(end, size - 1) - lo + 1
        missing = np.flatnonzero(seen[:limit] == 0) + lo if limit > 0 else np.array([], dtype=np.int64)
        if len(missing):
            mask = np.zeros(end - lo + 1, dtype=bool)
            for a, b in covered:
                if b >= lo and a <= end:
                    mask[max(a, lo) - lo : min(b, end) - lo + 1] = True
            uncovered = (missing[~mask[missing - lo]]).tolist()
            if uncovered:
                first = uncovered[0]
                run = first
                while run + 1 - first < len(uncovered) and uncovered[run + 1 - first] == run + 1:
                    run += 1
                span = f"leaf {first:,}" + (f"–{run:,}" if run > first else "")
                found.append(
                    Damage(
                        "missing",
                        tenant,
                        origin,
                        first,
                        f"{span} missing and no signed retention record covers it",
                    )
                )
        if not have_tree[: max(0, min(end, size - 1) - lo + 1)].all():
            gap = int(np.flatnonzero(~have_tree)[0]) + lo
            found.append(
                Damage("tree-missing", tenant, origin, gap, "the tree's stored hashes lack this leaf")
            )
        if found:
            break
    if not found:
        found += _check_levels(store, tenant, origin, edge, ups)
    if not found:
        found += _check_checkpoints(store, tenant, origin, size, cps)
    for d in found:
        add(d)
    return lg


#: how long verify waits for the tree to catch up with events committed past its snapshot
TREE_CATCH_UP_SECONDS = 5.0


def _grown_size(store: Any, origin: str, leaf: int) -> int:
    """The tree's size once it covers ``leaf``, or after :data:`TREE_CATCH_UP_SECONDS`."""
    deadline = time.monotonic() + TREE_CATCH_UP_SECONDS
    while True:
        size = TreeEdge.from_last_tiles(origin, store.last_tiles(origin=origin)).size
        if size > leaf or time.monotonic() >= deadline:
            return size
        time.sleep(0.2)


def _leaf_batches(store: Any, origin: str, lo: int, hi: int) -> Iterable[pa.Table]:
    """Stored rows of lo..hi: re-hashed by the engine when it runs in this process (only seq
    and the leaf hash leave it), else every column, re-encoded and hashed here (a server could
    lie about what it computed)."""
    if getattr(store, "engine_in_process", False):
        batches = store.iter_recomputed_leaves(origin, lo, hi)
    else:
        batches = store.iter_leaves(origin, lo, hi, CHUNK_LEAVES)
    for batch in batches:
        yield pa.Table.from_batches([batch])


def _check_levels(store: Any, tenant: str, origin: str, edge: TreeEdge, ups: list[bytes]) -> list[Damage]:
    """Each level's stored hashes are the roots of the full tiles of the level below."""
    level = 1
    while level < len(edge.full):
        count = edge.full[level] * TILE_WIDTH + len(edge.partial[level])
        stored = b"".join(
            v
            for _, v in sorted(store.tile_range(origin, level, 0, max(0, (count - 1) // TILE_WIDTH)).items())
        )
        stored_hashes = [stored[i : i + 32] for i in range(0, len(stored), 32)]
        if stored_hashes[: len(ups)] != ups or len(stored_hashes) != len(ups):
            bad = next(
                (i for i, (a, b) in enumerate(zip(stored_hashes, ups, strict=False)) if a != b),
                min(len(ups), len(stored_hashes)),
            )
            return [
                Damage(
                    "tree-mismatch",
                    tenant,
                    origin,
                    bad * TILE_WIDTH**level,
                    f"level-{level} tree hash {bad} does not match the leaves below it",
                )
            ]
        ups = [
            tile_root(stored_hashes[i : i + TILE_WIDTH])
            for i in range(0, len(stored_hashes) - TILE_WIDTH + 1, TILE_WIDTH)
        ]
        level += 1
    return []


def _check_checkpoints(store: Any, tenant: str, origin: str, size: int, cps: list[_Signed]) -> list[Damage]:
    hashes = tile_loader(store, origin)
    out: list[Damage] = []
    newest = max(cps, key=lambda c: c.body.size, default=None)
    for c in sorted(cps, key=lambda c: c.body.size):
        b = c.body
        if b.size > size:
            out.append(
                Damage(
                    "rollback",
                    tenant,
                    origin,
                    size,
                    f"the tree has {size:,} leaves but a checkpoint from {c.source} signed {b.size:,}: newer leaves were removed or the store rolled back",
                )
            )
            continue
        try:
            root = hashes(0, b.size)
        except TileMissing as exc:
            out.append(Damage("tree-missing", tenant, origin, b.size, str(exc)))
            continue
        if root != b.root:
            out.append(
                Damage(
                    "root-mismatch",
                    tenant,
                    origin,
                    b.size,
                    f"the tree's root at size {b.size:,} differs from the checkpoint from {c.source}",
                )
            )
        elif newest is not None and newest.body.size <= size and b.size <= newest.body.size:
            proof = consistency_path(b.size, newest.body.size, hashes)
            if not verify_consistency(b.size, newest.body.size, b.root, newest.body.root, proof):
                out.append(
                    Damage(
                        "inconsistent",
                        tenant,
                        origin,
                        b.size,
                        f"checkpoint from {c.source} is not a prefix of the newest one",
                    )
                )
    return out[:1]
