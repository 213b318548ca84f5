"""Verification: recompute every chain, check every checkpoint, name the first damage.

Rows are read chain by chain in sequence order, in bounded seq ranges (``store.iter_chain``),
re-encoded with :func:`canonical_column` and re-hashed; each row must (1) carry the next
sequence number, (2) point at the previous row's hash and (3) hash to its stored ``hash``.
Checkpoints (from the store and from the auditor's directory of JSON copies) must carry valid
signatures, link to each other by signature and agree with the rows at their sequence number;
a checkpoint past the last row means the newest rows are gone.

Kinds of damage: ``modified`` (a row's content no longer matches its hash), ``deleted`` (a
sequence number is missing), ``inserted`` (a second row with one sequence number), ``reordered``
(a row links to a hash that belongs elsewhere in the chain), ``truncated`` (rows a checkpoint
sealed are gone from the end), ``rewritten`` (the chain is self-consistent but does not match a
signed checkpoint), ``bad-signature``, ``checkpoint-missing``, ``checkpoint-conflict``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from receiver.integrity.canonical import event_digests
from receiver.integrity.chain import GENESIS
from receiver.integrity.checkpoints import Checkpoint, read_directory


@dataclass(frozen=True, slots=True)
class Damage:
    chain_id: str
    seq: int
    kind: str
    detail: str


@dataclass(slots=True)
class ChainReport:
    chain_id: str
    tenant_id: str
    events: int = 0
    checkpoints: int = 0
    first_seq: int = 0
    last_seq: int = 0
    damage: Damage | None = None


@dataclass(slots=True)
class TenantReport:
    tenant: str
    chains: list[ChainReport] = field(default_factory=list)
    unchained: int = 0
    signatures_checked: bool = True

    @property
    def events(self) -> int:
        return sum(c.events for c in self.chains)

    @property
    def checkpoints(self) -> int:
        return sum(c.checkpoints for c in self.chains)

    @property
    def damage(self) -> Damage | None:
        found = [c.damage for c in self.chains if c.damage is not None]
        return min(found, key=lambda d: (d.chain_id, d.seq)) if found else None

    @property
    def status(self) -> str:
        return "damaged" if self.damage else "intact"

    def summary(self) -> str:
        head = f"{self.tenant}: {_plural(self.events, 'event')}, {_plural(self.checkpoints, 'checkpoint')}"
        damage = self.damage
        if damage is None:
            notes = [] if self.signatures_checked else [" (signatures not checked: no public key)"]
            if self.unchained:
                notes.append(f" ({self.unchained:,} events stored before the chain existed)")
            return head + ", intact" + "".join(notes)
        return f"{head}, DAMAGED at seq {damage.seq:,} of chain {damage.chain_id}: {damage.kind} — {damage.detail}"

    def to_json(self) -> dict[str, Any]:
        damage = self.damage
        return {
            "tenant": self.tenant,
            "status": self.status,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "first_bad_seq": damage.seq if damage else None,
            "damage": damage.kind if damage else None,
            "chain_id": damage.chain_id if damage else None,
            "detail": damage.detail if damage else None,
            "unchained": self.unchained,
            "signatures_checked": self.signatures_checked,
            "summary": self.summary(),
            "chains": [
                {
                    "chain_id": c.chain_id,
                    "events": c.events,
                    "checkpoints": c.checkpoints,
                    "first_seq": c.first_seq,
                    "last_seq": c.last_seq,
                    "status": "damaged" if c.damage else "intact",
                }
                for c in self.chains
            ],
        }


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def merge_checkpoints(
    chain_id: str, from_store: Iterable[Checkpoint], from_files: Iterable[Checkpoint]
) -> tuple[list[Checkpoint], Damage | None]:
    """One list by last_seq; a store row and a file that disagree are a conflict."""
    merged: dict[int, Checkpoint] = {}
    conflict: Damage | None = None
    for cp in list(from_files) + list(from_store):
        known = merged.get(cp.last_seq)
        if known is not None and known != cp and conflict is None:
            conflict = Damage(
                chain_id,
                cp.last_seq,
                "checkpoint-conflict",
                "the store's checkpoint differs from the auditor's file copy",
            )
        merged.setdefault(cp.last_seq, cp)
    return [merged[k] for k in sorted(merged)], conflict


def check_checkpoints(
    chain_id: str, checkpoints: list[Checkpoint], public_key: Ed25519PublicKey | None
) -> Damage | None:
    """Signatures, and the links between consecutive checkpoints."""
    previous_signature = ""
    for cp in checkpoints:
        if public_key is not None and not cp.signature_valid(public_key):
            return Damage(chain_id, cp.last_seq, "bad-signature", "checkpoint signature does not verify")
        if cp.prev_signature != previous_signature:
            return Damage(
                chain_id, cp.last_seq, "checkpoint-missing", "checkpoint does not link to the one before it"
            )
        previous_signature = cp.signature
    return None


@dataclass(slots=True)
class _Scan:
    chain_id: str
    expected: int
    prev: bytes | None  # None: take the first row's own prev_hash (an unanchored start)
    sealed: dict[int, Checkpoint]
    locate_hash: Callable[[bytes], int | None]
    last_good_checkpoint: int = 0
    rows: int = 0
    damage: Damage | None = None

    def feed(self, batch: pa.RecordBatch | pa.Table) -> None:
        if self.damage is not None or batch.num_rows == 0:
            return
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        digests = event_digests(table)
        seqs = table.column("seq").to_pylist()
        prevs = table.column("prev_hash").to_pylist()
        hashes = table.column("hash").to_pylist()
        sha256 = hashlib.sha256
        n = len(seqs)
        for i in range(n):
            seq = seqs[i]
            if seq != self.expected or (i + 1 < n and seqs[i + 1] == seq):
                self._gap(seq)
                return
            prev = prevs[i] if self.prev is None else self.prev
            if prevs[i] != prev:
                at = self.locate_hash(prevs[i])
                if at is not None and at != seq - 1:
                    self._fail(
                        seq, "reordered", f"the row at seq {seq} follows the row now at seq {at} (rows moved)"
                    )
                else:
                    self._fail(seq, "modified", "prev_hash does not match the previous row's hash")
                return
            if sha256(prev + digests[i]).digest() != hashes[i]:
                self._fail(seq, "modified", "the row's content does not match its hash")
                return
            cp = self.sealed.get(seq)
            if cp is not None:
                if hashes[i].hex() != cp.last_hash:
                    start = self.last_good_checkpoint + 1
                    self._fail(
                        start,
                        "rewritten",
                        f"rows {start:,}–{seq:,} were recomputed: seq {seq:,} does not match its signed checkpoint",
                    )
                    return
                self.last_good_checkpoint = seq
            self.prev = hashes[i]
            self.expected = seq + 1
            self.rows += 1

    def _gap(self, seq: int) -> None:
        if seq < self.expected or seq == self.expected:
            self._fail(seq, "inserted", f"more than one row carries seq {seq:,}")
        else:
            missing = (
                f"seq {self.expected:,}"
                if seq == self.expected + 1
                else f"seqs {self.expected:,}–{seq - 1:,}"
            )
            self._fail(self.expected, "deleted", f"{missing} missing")

    def _fail(self, seq: int, kind: str, detail: str) -> None:
        self.damage = Damage(self.chain_id, seq, kind, detail)


def verify_chain(
    chain_id: str,
    tenant_id: str,
    batches: Iterable[pa.RecordBatch | pa.Table],
    checkpoints: list[Checkpoint],
    public_key: Ed25519PublicKey | None,
    *,
    lo: int = 1,
    hi: int | None = None,
    locate_hash: Callable[[bytes], int | None] = lambda _digest: None,
    conflict: Damage | None = None,
    all_checkpoints: list[Checkpoint] | None = None,
) -> ChainReport:
    """Verify rows lo..hi of one chain (``batches`` in seq order) against its checkpoints.

    ``lo > 1`` starts unanchored unless a checkpoint seals ``lo - 1``; ``hi`` None means "to
    the end", where a checkpoint past the last row reveals truncation. Signatures and links
    are checked over ``all_checkpoints`` (default: ``checkpoints``).
    """
    every = checkpoints if all_checkpoints is None else all_checkpoints
    report = ChainReport(chain_id, tenant_id, checkpoints=len(every))
    damages = [d for d in (conflict, check_checkpoints(chain_id, every, public_key)) if d]
    by_seq = {cp.last_seq: cp for cp in checkpoints}
    anchor = by_seq.get(lo - 1)
    start_prev: bytes | None = GENESIS if lo == 1 else (bytes.fromhex(anchor.last_hash) if anchor else None)
    scan = _Scan(chain_id, lo, start_prev, by_seq, locate_hash, last_good_checkpoint=lo - 1)
    for batch in batches:
        scan.feed(batch)
        if scan.damage is not None:
            break
    if scan.damage is not None:
        damages.append(scan.damage)
    last = scan.expected - 1
    report.events, report.first_seq, report.last_seq = scan.rows, lo if scan.rows else 0, last
    if scan.damage is None and hi is None:
        beyond = [cp for cp in checkpoints if cp.last_seq > last]
        if beyond:
            cp = beyond[-1]
            gone = f"seq {last + 1:,}" + (f"–{cp.last_seq:,}" if cp.last_seq > last + 1 else "")
            damages.append(
                Damage(
                    chain_id,
                    last + 1,
                    "truncated",
                    f"{gone} sealed by the checkpoint of {cp.created_at} are gone",
                )
            )
    report.damage = min(damages, key=lambda d: d.seq) if damages else None
    return report


def verify_store(
    store: Any,
    *,
    tenants: tuple[str, ...] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    checkpoint_dir: str | Path | None = None,
    public_key: Ed25519PublicKey | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[TenantReport]:
    """Every chain of ``tenants`` (None: all) in the store, one report per tenant."""
    stored = [Checkpoint.from_mapping(r) for r in store.checkpoint_rows(tenants)]
    files = read_directory(checkpoint_dir) if checkpoint_dir else []
    if tenants is not None:
        files = [cp for cp in files if cp.tenant_id in tenants]
    summaries = {s.chain_id: s for s in store.chain_summaries(tenants)}
    chain_tenant = {cid: s.tenant_id for cid, s in summaries.items()}
    for cp in stored + files:
        chain_tenant.setdefault(cp.chain_id, cp.tenant_id)
    reports: dict[str, TenantReport] = {}
    for tenant, count in store.unchained_counts(tenants).items():
        reports.setdefault(tenant, TenantReport(tenant)).unchained = count
    for chain_id in sorted(chain_tenant):
        tenant = chain_tenant[chain_id]
        report = reports.setdefault(tenant, TenantReport(tenant, signatures_checked=public_key is not None))
        report.signatures_checked = public_key is not None
        cps, conflict = merge_checkpoints(
            chain_id,
            [c for c in stored if c.chain_id == chain_id],
            [c for c in files if c.chain_id == chain_id],
        )
        summary = summaries.get(chain_id)
        lo, hi_bound, hi = 1, None, 0
        if summary is not None:
            hi = summary.max_seq
            if since is not None or until is not None:
                bounds = store.seq_bounds(chain_id, since, until)
                if bounds is None:
                    continue
                lo, hi = bounds
                hi_bound = hi if until is not None else None
            elif summary.min_seq > 1 and any(cp.last_seq >= summary.min_seq - 1 for cp in cps):
                lo = summary.min_seq  # the oldest rows were sealed, then expired or archived
        batches = store.iter_chain(chain_id, lo, hi) if summary is not None else iter(())

        def counted(source: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
            for batch in source:
                if progress is not None:
                    progress(batch.num_rows)
                yield batch

        in_range = [
            cp for cp in cps if cp.last_seq >= lo - 1 and (hi_bound is None or cp.last_seq <= hi_bound)
        ]
        chain_report = verify_chain(
            chain_id,
            tenant,
            counted(batches),
            in_range,
            public_key,
            lo=lo,
            hi=hi_bound,
            locate_hash=lambda digest, c=chain_id: store.seq_of_hash(c, digest),
            conflict=conflict,
            all_checkpoints=cps,
        )
        report.chains.append(chain_report)
    return [reports[t] for t in sorted(reports)]
