"""What the verifiable log costs: ingest with and without it in the same run, the retired v1
hash chain's step as a same-run baseline, verify speed and proof latency.

    python bench/chain_cost.py [--events 100000] [--batch 100000] [--proofs 200] [--data DIR]

Builds realistic events (12 attributes, a diff, a user agent) as the pipeline's Arrow tables,
then, on a fresh embedded store: inserts them plain (the slice's writer path); runs the v1
chain's step (SHA-256 of the canonical bytes per row, then SHA-256(prev ‖ digest) in a loop:
the code the Merkle log replaced, kept here as the baseline); runs Chainer.assign + advance
(leaf hashes, tree tiles written); inserts; seals a checkpoint; verifies every log; and times
``event_proof`` for random events. CPU time is the process's (chDB runs in-process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hashlib  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from receiver.integrity.canonical import canonical_column  # noqa: E402
from receiver.integrity.chain import ENGINE_DIGEST_MIN_ROWS, Chainer  # noqa: E402
from receiver.integrity.checkpoints import Checkpointer, Signer  # noqa: E402
from receiver.integrity.proofs import event_proof  # noqa: E402
from receiver.integrity.verify import verify_store  # noqa: E402
from receiver.model import AuditEvent, events_to_table  # noqa: E402


def make_batches(events: int, batch: int) -> list[pa.Table]:
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for start in range(0, events, batch):
        rows = [
            AuditEvent(
                id=str(uuid.uuid4()),
                tenant_id=("acme", "globex", "initech")[i % 3],
                user_id=f"user-{i % 500}",
                action="update",
                resource_type="invoice",
                resource_id=f"inv-{i}",
                event_name="audit.invoice.update",
                created_at=now + dt.timedelta(microseconds=i),
                received_at=now,
                changes='{"amount":{"old":10,"new":12},"status":{"old":"open","new":"paid"}}',
                ip_address="203.0.113.9",
                user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
                service_name="billing",
                trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
                span_id="00f067aa0ba902b7",
                session_id="s-42",
                http_method="PUT",
                http_route="/invoices/{id}",
                http_status=200,
                reason="customer refund",
                attributes={f"app.attr{k}": f"value-{k}-{i % 97}" for k in range(12)},
                retain_until=(now + dt.timedelta(days=365)).date(),
            )
            for i in range(start, min(events, start + batch))
        ]
        out.append(events_to_table(rows))
    return out


def timed(fn, label: str = "") -> tuple[float, float]:
    """Wall and CPU seconds of ``fn()``, with a spinner on a terminal."""
    from contextlib import nullcontext

    from rich.console import Console

    console = Console(stderr=True)
    status = console.status(label) if console.is_terminal and label else nullcontext()
    with status:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100_000, help="rows per group commit (default 100000)")
    parser.add_argument("--proofs", type=int, default=200, help="event proofs to time")
    parser.add_argument("--data", default="/tmp/otel-audit-chain-bench")
    args = parser.parse_args()
    shutil.rmtree(args.data, ignore_errors=True)
    from receiver.store.chdb_store import ChdbStore

    plain_store = ChdbStore(args.data, database="plain")
    chained_store = ChdbStore(args.data, database="chained")
    batches = make_batches(args.events, args.batch)
    n = args.events
    print(
        f"{n:,} events in batches of {args.batch:,}, 3 tenants, {sum(b.nbytes for b in batches) / n:.0f} B/event in Arrow"
    )

    def plain() -> None:
        for table in batches:
            plain_store.insert(table)

    signer = Signer(Ed25519PrivateKey.generate())
    sealer = Checkpointer(chained_store, signer)
    chainer = Chainer(chained_store, "bench", sealer.register)
    assigned: list = []

    def log_step() -> None:
        for table in batches:
            assigned.append(chainer.assign(table))

    def tiles_step() -> None:
        for _, pending in assigned:
            chainer.advance(pending)  # writes the batch's tiles

    def chained_insert() -> None:
        for table, _ in assigned:
            chained_store.insert(table)

    def v1_chain() -> None:
        """The retired chain's step on the same tables, as its Chainer did it: per-row digests
        (the engine's for batches of 32,768 rows or more, else pyarrow + hashlib), then the
        per-tenant running SHA-256(prev ‖ digest)."""
        sha256 = hashlib.sha256
        for table in batches:
            with_pos = table.append_column(
                "chain_id", pa.array(["acme/bench"] * table.num_rows)
            ).append_column("seq", pa.array(range(1, table.num_rows + 1), pa.uint64()))
            if ENGINE_DIGEST_MIN_ROWS is not None and table.num_rows >= ENGINE_DIGEST_MIN_ROWS:
                digests = plain_store.event_digests(with_pos)
            else:
                encoded = canonical_column(with_pos)
                bounds = np.frombuffer(encoded.buffers()[1], dtype=np.int32)[: len(encoded) + 1].tolist()
                data = memoryview(encoded.buffers()[2])
                digests = [sha256(data[bounds[i] : bounds[i + 1]]).digest() for i in range(len(encoded))]
            last: dict[str, bytes] = {}
            for tenant, digest in zip(table.column("tenant_id").to_pylist(), digests, strict=True):
                last[tenant] = sha256(last.get(tenant, bytes(32)) + digest).digest()

    p_wall, p_cpu = timed(plain, "inserting without the log")
    b_wall, b_cpu = timed(v1_chain, "v1 chain step (baseline)")
    c_wall, c_cpu = timed(log_step, "leaf hashes + tree")
    t_wall, t_cpu = timed(tiles_step, "writing tiles")
    i_wall, i_cpu = timed(chained_insert, "inserting logged rows")
    print(f"insert without log   : {n / p_wall:>10,.0f} events/s wall  {n / p_cpu:>10,.0f} events/CPU-s")
    print(f"v1 chain step        : {b_cpu / n * 1e6:>10.2f} µs CPU/event (same-run baseline)")
    print(f"leaf hashes + tree   : {c_cpu / n * 1e6:>10.2f} µs CPU/event (Chainer.assign, tiles built)")
    print(f"tile insert          : {t_cpu / n * 1e6:>10.2f} µs CPU/event ({t_wall * 1e3:.0f} ms wall)")
    print(f"insert logged rows   : {n / i_wall:>10,.0f} events/s wall  {n / i_cpu:>10,.0f} events/CPU-s")
    for origin in sorted({o for t, _ in assigned for o in set(t.column("chain_id").to_pylist())}):
        sealer.seal(origin, origin.split("/")[1])
    reports: list = []
    v_wall, v_cpu = timed(
        lambda: reports.extend(verify_store(chained_store, verifiers=[signer.verifier])), "verifying"
    )
    print(f"verify, engine re-hash: {n / v_wall:>9,.0f} events/s wall  {n / v_cpu:>10,.0f} events/CPU-s")
    for report in reports:
        print("  " + report.summary())
    chained_store.engine_in_process = False  # the server-store path: every column re-encoded here
    py_wall, py_cpu = timed(
        lambda: verify_store(chained_store, verifiers=[signer.verifier]), "verifying (Python)"
    )
    print(f"verify, Python re-hash: {n / py_wall:>9,.0f} events/s wall  {n / py_cpu:>10,.0f} events/CPU-s")
    del chained_store.engine_in_process
    ids = [
        t.column("id")[k].as_py() for t, _ in assigned for k in range(0, t.num_rows, max(1, t.num_rows // 50))
    ]
    times, cpus = [], []
    for event_id in random.choices(ids, k=args.proofs):
        start, cpu = time.perf_counter(), time.process_time()
        event_proof(chained_store, event_id, None)
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    if times:
        q = statistics.quantiles(times, n=20)
        print(
            f"event proof          : p50 {statistics.median(times) * 1e3:.1f} ms wall, p95 {q[18] * 1e3:.1f} ms,"
            f" p50 {statistics.median(cpus) * 1e3:.1f} ms CPU ({len(times)} proofs, load {os.getloadavg()[0]:.1f})"
        )
    plain_store.close()
    chained_store.close()
    return 0 if all(r.status == "intact" for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
