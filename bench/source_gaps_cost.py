"""What source-side gap detection costs on ingest: the same batches inserted with and without the
``source_seqs`` materialized view (schema 090), alternating rounds on one embedded store; and
how long the gap query takes over what was inserted.

    python bench/source_gaps_cost.py [--events 100000] [--batch 10000] [--rounds 3]

Events are the chain-cost bench's (12 attributes, a diff, a user agent) plus ``audit.source.id``
and ``audit.source.seq`` from 4 sources, every 1000th number left out. CPU time is the
process's (chDB runs in-process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow as pa  # noqa: E402

from bench.chain_cost import make_batches  # noqa: E402
from receiver.sources.gaps import source_gaps  # noqa: E402
from receiver.store.chdb_store import ChdbStore  # noqa: E402
from receiver.store.sql import Statement  # noqa: E402

MV = "source_seqs_mv"


def with_sources(
    batches: list[pa.Table], counters: dict[tuple[str, int], int], prefix: str
) -> list[pa.Table]:
    """Stamp 4 sources per tenant, numbering on from ``counters``; every 1000th number skipped."""
    out, i = [], 0
    for table in batches:
        maps = []
        tenants = table.column("tenant_id").to_pylist()
        for row, tenant in zip(table.column("attributes").to_pylist(), tenants, strict=True):
            key = (tenant, i % 4)
            i += 1
            seq = counters.get(key, 0) + 1
            seq += seq % 1000 == 0  # never "arrives"
            counters[key] = seq
            maps.append([*row, ("audit.source.id", f"{prefix}-{key[1]}"), ("audit.source.seq", str(seq))])
        column = pa.array(maps, table.schema.field("attributes").type)
        out.append(table.set_column(table.schema.get_field_index("attributes"), "attributes", column))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    store = ChdbStore(Path(tempfile.mkdtemp(prefix="gaps-bench-")))
    db = store.database
    view_sql = (
        store.query_table(
            Statement(
                f"SELECT create_table_query AS q FROM system.tables WHERE database = '{db}' AND name = '{MV}'"
            )
        )
        .column("q")[0]
        .as_py()
    )
    results: dict[str, list[float]] = {"with view": [], "without view": []}
    counters: dict[str, dict[tuple[str, int], int]] = {label: {} for label in results}
    for _ in range(args.rounds):
        for label in ("without view", "with view"):
            batches = with_sources(make_batches(args.events, args.batch), counters[label], label[:4])
            if label == "without view":
                store.execute(Statement(f"DROP VIEW IF EXISTS {db}.{MV}"))
            else:
                store.execute(
                    Statement(
                        view_sql.replace(
                            "CREATE MATERIALIZED VIEW", "CREATE MATERIALIZED VIEW IF NOT EXISTS", 1
                        )
                    )
                )
            cpu = time.process_time()
            for table in batches:
                store.insert(table)
            results[label].append(time.process_time() - cpu)
    for label, cpus in results.items():
        best = min(cpus)
        print(
            f"{label:13s}: {args.events / best:,.0f} events/CPU-s (best of {args.rounds}; {best * 1e6 / args.events:.2f} us/event)"
        )
    extra = (min(results["with view"]) - min(results["without view"])) * 1e6 / args.events
    print(f"view cost: {extra:+.2f} us/event")
    wall = time.perf_counter()
    gaps = source_gaps(store, None, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2), dt.timedelta(0))
    print(
        f"gap query: {time.perf_counter() - wall:.3f} s, {sum(g.missing for g in gaps)} missing in {len(gaps)} sources"
    )
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
