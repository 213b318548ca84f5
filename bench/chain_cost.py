"""What the hash chain costs: ingest with and without it in the same run, and verify speed.

    python bench/chain_cost.py [--events 200000] [--batch 10000] [--data /tmp/chain-bench]

Builds realistic events (12 attributes, a diff, a user agent) as the pipeline's Arrow tables,
then, on a fresh embedded store: inserts them plain (the slice's writer path), inserts them
with Chainer.assign (what the writer does now), and verifies every chain. CPU time is the
process's (chDB runs in-process), so events per CPU-second include the engine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa  # noqa: E402

from receiver.integrity.chain import Chainer  # noqa: E402
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
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000, help="rows per group commit (default 10000)")
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

    chainer = Chainer(chained_store, "bench")
    assigned: list[pa.Table] = []

    def chain_only() -> None:
        for table in batches:
            out, heads = chainer.assign(table)
            chainer.advance(heads)
            assigned.append(out)

    def chained_insert() -> None:
        for table in assigned:
            chained_store.insert(table)

    class PythonDigests:
        """The same chain with per-row digests from pyarrow + hashlib instead of the engine."""

        def chain_heads(self, instance_id: str) -> dict:
            return {}

    python_chainer = Chainer(PythonDigests(), "bench")

    def chain_python() -> None:
        for table in batches:
            python_chainer.advance(python_chainer.assign(table)[1])

    p_wall, p_cpu = timed(plain, "inserting without chain")
    y_wall, y_cpu = timed(chain_python, "chaining (pyarrow digests)")
    c_wall, c_cpu = timed(chain_only, "chaining (engine digests)")
    i_wall, i_cpu = timed(chained_insert, "inserting chained rows")
    print(f"insert without chain : {n / p_wall:>10,.0f} events/s wall  {n / p_cpu:>10,.0f} events/CPU-s")
    print(
        f"insert with chain    : {n / (c_wall + i_wall):>10,.0f} events/s wall  {n / (c_cpu + i_cpu):>10,.0f} events/CPU-s"
    )
    print(
        f"chain alone          : {c_cpu / n * 1e6:>10.2f} µs CPU/event ({n / c_cpu:,.0f} events/CPU-s), engine digests"
    )
    print(
        f"chain alone, Python  : {y_cpu / n * 1e6:>10.2f} µs CPU/event ({n / y_cpu:,.0f} events/CPU-s), pyarrow digests"
    )
    reports: list = []
    v_wall, v_cpu = timed(lambda: reports.extend(verify_store(chained_store)), "verifying")
    print(f"verify (full chains) : {n / v_wall:>10,.0f} events/s wall  {n / v_cpu:>10,.0f} events/CPU-s")
    for report in reports:
        print("  " + report.summary())
    plain_store.close()
    chained_store.close()
    return 0 if all(r.status == "intact" for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
