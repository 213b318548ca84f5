"""The engine's CPU per event on the receiver's inserts under different session settings and
codecs: each variant in a fresh process on a fresh store, the same pipeline tables inserted in
``--batch``-row group commits with the writer's dedupe lookup before each, then the background
merges waited out. CPU is the whole process's (chDB's threads are in it), by thread kind.

    python -m bench.experiments.insert_settings [--events 204800] [--batch 25600] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, list[str]] = {
    "default": [],
    "max_threads=1": ["SET max_threads = 1", "SET max_insert_threads = 1"],
    "no squashing": ["SET min_insert_block_size_rows = 0", "SET min_insert_block_size_bytes = 0"],
    "skip indexes not built on insert": ["SET materialize_skip_indexes_on_insert = 0"],
    "LZ4 for changes/attributes": [
        "ALTER TABLE audit.audit_events MODIFY COLUMN changes String CODEC(LZ4)",
        "ALTER TABLE audit.audit_events MODIFY COLUMN attributes"
        " Map(LowCardinality(String), String) CODEC(LZ4)",
    ],
    "LZ4 for every ZSTD column": [
        f"ALTER TABLE audit.audit_events MODIFY COLUMN {c} CODEC({codec})"
        for c, codec in (
            ("changes", "LZ4"),
            ("attributes", "LZ4"),
            ("user_agent", "LZ4"),
            ("reason", "LZ4"),
            ("created_at", "Delta, LZ4"),
            ("received_at", "Delta, LZ4"),
        )
    ],
}


def _threads() -> dict[str, float]:
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        name = (task / "comm").read_text().strip().rstrip("0123456789_") or "?"
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def one(variant: str, events: int, batch: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from bench.commit_path import groups_of, pipeline_tables
    from receiver.store.chdb_store import ChdbStore

    tables = pipeline_tables(events, 1)
    groups = [pa.concat_tables(g) for g in groups_of(tables, batch)]
    with tempfile.TemporaryDirectory(prefix="oa-insert-settings-") as tmp:
        store = ChdbStore(Path(tmp) / "data")
        for stmt in VARIANTS[variant]:
            store._writer.query(stmt)
        store.insert(tables[0].slice(0, 1))  # first part, code paths
        time.sleep(1)
        c0, th0 = time.process_time(), _threads()
        insert_cpu = lookup_cpu = 0.0
        for g in groups:
            ids = g.column("id").combine_chunks()
            c = time.process_time()
            store.existing_ids(pc.unique(g.column("tenant_id")).to_pylist(), ids)
            lookup_cpu += time.process_time() - c
            c = time.process_time()
            store.insert(g)
            insert_cpu += time.process_time() - c
        c_ins = time.process_time()
        idle = 0
        while idle < 2:  # until the background merges are done (two quiet polls in a row)
            time.sleep(0.5)
            busy = store._writer.query("SELECT count() FROM system.merges", "CSV").bytes().strip()
            parts = (
                store._writer.query(
                    "SELECT count() FROM system.parts WHERE active AND table = 'audit_events'", "CSV"
                )
                .bytes()
                .strip()
            )
            idle = idle + 1 if busy == b"0" else 0
        c1, th1 = time.process_time(), _threads()
        size = (
            store._writer.query(
                "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = 'audit_events'", "CSV"
            )
            .bytes()
            .strip()
        )
        store.close()
    n = sum(g.num_rows for g in groups)
    return {
        "variant": variant,
        "events": n,
        "insert_us": insert_cpu / n * 1e6,
        "lookup_us": lookup_cpu / n * 1e6,
        "inserts_and_lookups_us": (c_ins - c0) / n * 1e6,
        "until_merged_us": (c1 - c0) / n * 1e6,
        "parts": int(parts),
        "bytes_on_disk": int(size),
        "threads_us": {
            k: (v - th0.get(k, 0.0)) / n * 1e6 for k, v in th1.items() if v - th0.get(k, 0.0) > 0.005
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=204_800)
    p.add_argument("--batch", type=int, default=25_600)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.events, args.batch)))
        return 0
    for r in range(args.rounds):
        for v in args.variants.split(","):
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.experiments.insert_settings",
                        "--one",
                        v,
                        "--events",
                        str(args.events),
                        "--batch",
                        str(args.batch),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            d = json.loads(out)
            th = ", ".join(f"{k} {u:.2f}" for k, u in sorted(d["threads_us"].items(), key=lambda kv: -kv[1]))
            print(
                f"round {r} {v:<34} insert {d['insert_us']:.2f}  lookup {d['lookup_us']:.2f}  both {d['inserts_and_lookups_us']:.2f}"
                f"  until merged {d['until_merged_us']:.2f} µs/event; parts {d['parts']},"
                f" {d['bytes_on_disk'] / 2**20:.1f} MB; {th}  (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
