"""Idempotency check cost: how long the writer's "which of these ids are stored already?" lookup
takes as the table grows, with and without the batch's time range, and what the alternatives
(ReplacingMergeTree + FINAL) cost at read time. Writes a scratch chDB store under /tmp.

    python -m bench.dedupe_window [--rows 5000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import tempfile
import time
import uuid

import pyarrow as pa

from receiver.model import ARROW_SCHEMA
from receiver.store import sql
from receiver.store.chdb_store import ChdbStore

TENANTS = [f"tenant-{i}" for i in range(10)]
START = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def batch(n: int, offset_s: int) -> pa.Table:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    created = [START + dt.timedelta(seconds=offset_s + i * 1.3) for i in range(n)]
    cols = {f.name: pa.array([""] * n) for f in ARROW_SCHEMA if pa.types.is_string(f.type)}
    cols.update(
        id=pa.array(ids),
        tenant_id=pa.array([TENANTS[i % len(TENANTS)] for i in range(n)]),
        user_id=pa.array([f"user-{i % 5000}" for i in range(n)]),
        action=pa.array(["read"] * n),
        created_at=pa.array(created, type=ARROW_SCHEMA.field("created_at").type),
        received_at=pa.array(created, type=ARROW_SCHEMA.field("received_at").type),
        http_status=pa.array([200] * n, type=pa.uint16()),
        attributes=pa.array([[] for _ in range(n)], type=ARROW_SCHEMA.field("attributes").type),
        retain_until=pa.array([dt.date(2030, 1, 1)] * n, type=pa.date32()),
    )
    return pa.table(cols, schema=ARROW_SCHEMA)


def timed(fn, repeat: int = 15) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    path = tempfile.mkdtemp(prefix="otel-audit-dedupe-")
    store = ChdbStore(path)
    try:
        stored: list[tuple[str, str, dt.datetime]] = []
        checkpoints = sorted({min(args.rows, 1_000_000), args.rows})
        inserted = 0
        print("rows      | ids | lookup by (tenant, id) | + batch time range | insert 512 rows")
        for target in checkpoints:
            while inserted < target:
                tbl = batch(100_000, inserted * 2)
                store.insert(tbl)
                rows = tbl.select(["id", "tenant_id", "created_at"]).slice(0, 2000).to_pylist()
                stored += [(r["tenant_id"], r["id"], r["created_at"]) for r in rows]
                inserted += tbl.num_rows
            store._command(sql.Statement(f"OPTIMIZE TABLE {store.database}.audit_events FINAL"))
            for n in (512, 10_000):
                # a retried request: half already stored (recent), half fresh, one tenant
                recent = [s for s in stored[-20_000:] if s[0] == TENANTS[0]][: n // 2]
                ids = [s[1] for s in recent] + [str(uuid.uuid4()) for _ in range(n - len(recent))]
                lo = min(s[2] for s in recent)
                hi = max(s[2] for s in recent)
                by_id = timed(lambda ids=ids: store.existing_ids([TENANTS[0]], ids))
                ranged = sql.Statement(
                    f"SELECT DISTINCT toString(id) AS stored_id FROM {store.database}.audit_events"
                    " WHERE tenant_id IN {t:Array(String)} AND id IN {ids:Array(UUID)}"
                    " AND created_at BETWEEN {lo:DateTime64(6, 'UTC')} AND {hi:DateTime64(6, 'UTC')}",
                    {"t": [TENANTS[0]], "ids": ids, "lo": lo, "hi": hi},
                )
                found = store._query_arrow(ranged).num_rows
                assert found == len(recent), (found, len(recent))
                by_range = timed(lambda ranged=ranged: store._query_arrow(ranged))
                small = batch(512, random.randint(0, 10**7))
                ins = timed(lambda small=small: store.insert(small), repeat=5)
                print(f"{target:>9} | {n:>5} | {by_id:8.1f} ms | {by_range:8.1f} ms | {ins:6.1f} ms")
        q = f"SELECT count() AS n FROM {store.database}.audit_events WHERE tenant_id = 'tenant-0'"
        plain = timed(lambda: store._query_arrow(sql.Statement(q)), repeat=5)
        store._command(
            sql.Statement(
                f"CREATE TABLE {store.database}.replacing AS {store.database}.audit_events"
                " ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(created_at) ORDER BY (tenant_id, created_at, id)"
            )
        )
        store._command(
            sql.Statement(
                f"INSERT INTO {store.database}.replacing SELECT * FROM {store.database}.audit_events"
            )
        )
        q_final = f"SELECT count() AS n FROM {store.database}.replacing FINAL WHERE tenant_id = 'tenant-0'"
        final = timed(lambda: store._query_arrow(sql.Statement(q_final)), repeat=5)
        print(
            f"count() of one tenant over {inserted} rows: MergeTree {plain:.1f} ms, ReplacingMergeTree FINAL {final:.1f} ms"
        )
    finally:
        store.close()
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
