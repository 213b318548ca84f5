"""The commit path's stages, each alone, in µs per event and as a ratio of the chDB insert alone
measured in the same process: everything after the pipeline has produced its validated tables.

    python -m bench.commit_path [--events 102400] [--batch 102400]

Builds the ingest bench's requests (512 records, 12 attributes), runs them through the pipeline
once (not timed), then times on a fresh embedded store: journal framing (Arrow IPC + CRC) and a
journal append with fsync, per request; and per group commit of ``--batch`` events: concat,
dedupe (the store lookup and the mask), the expiry check, leaf hashing (column-wise encoding +
hashlib, and the engine's), the tree tiles, the events insert, the tiles insert, and the whole
:class:`receiver.writer.StoreCommitter` commit. CPU seconds are the process's (chDB runs in it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.common import RECORDS_PER_REQUEST, fresh_requests, template_request


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    c0 = time.process_time()
    out = fn()
    return time.process_time() - c0, out


def pipeline_tables(events: int, tenants: int) -> list[pa.Table]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from receiver import pipeline
    from receiver.pipeline.auth import OPEN

    template, offsets = template_request(tenants)
    raw = fresh_requests(template, offsets, max(1, events // RECORDS_PER_REQUEST))
    return [pipeline.run(ExportLogsServiceRequest.FromString(b), OPEN, lambda _t: 365).table for b in raw]


def groups_of(tables: list[pa.Table], batch: int) -> list[list[pa.Table]]:
    out: list[list[pa.Table]] = [[]]
    rows = 0
    for t in tables:
        if rows + t.num_rows > batch and out[-1]:
            out.append([])
            rows = 0
        out[-1].append(t)
        rows += t.num_rows
    return out


def run(events: int, batch: int, tenants: int) -> dict[str, Any]:
    from receiver.integrity.canonical import canonical_column, event_digests
    from receiver.integrity.chain import Chainer
    from receiver.integrity.tiles import TreeEdge
    from receiver.journal import framing
    from receiver.journal.journal import Journal
    from receiver.pipeline.window import expired_rows
    from receiver.store.chdb_store import ChdbStore
    from receiver.telemetry import ReceiverMetrics
    from receiver.writer import StoreCommitter

    try:
        from receiver.writer import keep_mask
    except ImportError:
        keep_mask = None

    tables = pipeline_tables(events, tenants)
    n = sum(t.num_rows for t in tables)
    cpu: dict[str, float] = {}

    def add(stage: str, seconds: float) -> None:
        cpu[stage] = cpu.get(stage, 0.0) + seconds

    with tempfile.TemporaryDirectory(prefix="otel-audit-commit-path-") as tmp:
        add(
            "journal framing (IPC + CRC)",
            _cpu(lambda: [framing.payload_crc(framing.serialize(t)) for t in tables])[0],
        )
        journal = Journal(Path(tmp) / "journal", max_bytes=1 << 34)
        journal.open()
        add("journal append (framing + write + fsync)", _cpu(lambda: [journal.append(t) for t in tables])[0])
        journal.close()

        store = ChdbStore(Path(tmp) / "data")
        store.insert(tables[0].slice(0, 1))  # warm up: first part, code paths
        chainer = Chainer(store, "bench0")
        for group in groups_of(tables, batch):
            c, combined = _cpu(lambda g=group: pa.concat_tables(g))
            add("concat", c)

            def dedupe(t: pa.Table = combined) -> None:
                if keep_mask is None:  # the per-row loop of older versions (before/after runs)
                    ids = t.column("id").to_pylist()
                    tenants_ = t.column("tenant_id").to_pylist()
                    seen = store.existing_ids(sorted(set(tenants_)), ids)
                    [k not in seen for k in zip(tenants_, ids, strict=True)]
                    return
                ids_ = t.column("id").combine_chunks()
                tenant_col = t.column("tenant_id").combine_chunks()
                seen = store.existing_ids(pc.unique(tenant_col).to_pylist(), ids_)
                keep_mask(tenant_col, ids_, seen, np.zeros(t.num_rows, dtype=bool))

            add("dedupe (lookup + mask)", _cpu(dedupe)[0])
            add("expiry check", _cpu(lambda t=combined: expired_rows(store, t, dt.datetime.now(dt.UTC)))[0])
            c, (chained, pending) = _cpu(lambda t=combined: chainer.assign(t))
            add("chain assign (all)", c)
            c, encoded = _cpu(lambda t=chained: canonical_column(t, leaf_prefix=True))
            add("  leaf encoding (canonical_column)", c)
            add(
                "  SHA-256 alone (the leaves' bytes, one call)",
                _cpu(lambda e=encoded: hashlib.sha256(e.buffers()[2]).digest())[0],
            )
            c, digests = _cpu(lambda t=chained: event_digests(t))
            add("  leaf hashes (encoding + hashlib)", c)
            add("  leaf hashes by the engine", _cpu(lambda t=chained: store.event_digests(t))[0])
            add("  tree tiles (TreeEdge.append)", _cpu(lambda d=digests: TreeEdge("x").append(d))[0])
            add("events insert", _cpu(lambda t=chained: store.insert(t))[0])
            add("tiles insert", _cpu(lambda p=pending: chainer.advance(p))[0])

        # the whole commit, on fresh ids (a second copy of the requests)
        fresh = pipeline_tables(events, tenants)
        committer = StoreCommitter(store, ReceiverMetrics(), Chainer(store, "bench1"))
        for group in groups_of(fresh, batch):
            add("StoreCommitter.commit (whole)", _cpu(lambda g=group: committer.commit(g))[0])
        # the insert alone on the same rows as plain events (no log columns), the floor
        plain = pipeline_tables(events, tenants)
        for group in groups_of(plain, batch):
            combined = pa.concat_tables(group)
            add("chDB insert alone (no log columns)", _cpu(lambda t=combined: store.insert(t))[0])
        store.close()
    floor = cpu["chDB insert alone (no log columns)"]
    return {
        "events": n,
        "batch": batch,
        "us_per_event": {k: v / n * 1e6 for k, v in cpu.items()},
        "ratio_to_insert_alone": {k: v / floor for k, v in cpu.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=102_400)
    p.add_argument("--batch", type=int, default=102_400, help="rows per group commit")
    p.add_argument("--tenants", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = run(args.events, args.batch, args.tenants)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"commit path, {out['events']:,} events, {out['batch']:,}-row group commits")
    for stage, us in out["us_per_event"].items():
        print(
            f"  {stage:<44} {us:7.2f} µs/event  ×{out['ratio_to_insert_alone'][stage]:.2f} of the insert alone"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
