"""What bounds ingest's events per CPU-second: each stage the receiver must run for an event,
measured alone in one process, summed into the ceiling of the design (no gRPC, no threads
taking turns, no background merges), next to the issue's floor (native decode + chDB insert).

    python -m bench.ingest_budget [--events 204800] [--requests-per-batch 8] [--commit-rows 51200]

Stages, on the ingest bench's requests (512 records, 12 attributes): native decode (ptars, the
decode schema), the rest of the batching path (column checks, ``audit.changes``
canonicalisation, the row table), ``audit.changes`` alone, then :mod:`bench.commit_path`'s
journal append, dedupe, chain assign (leaf encoding, leaf hashes, tiles), events insert and
tiles insert at the writer's commit size. The engine's merges of the inserted parts come on
top; ``bench.ingest`` shows them per thread (``MergeMutate``). CPU is the process's (chDB runs
in it). Prints a table, or one JSON line with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench import commit_path
from bench.common import RECORDS_PER_REQUEST, fresh_requests, template_request

#: the stages every accepted event goes through, in order (µs/event keys of the result)
BUDGET = (
    "native decode",
    "column checks and rows",
    "journal append (framing + write + fsync)",
    "dedupe (lookup + mask)",
    "chain assign (all)",
    "events insert",
    "tiles insert",
)
#: what an event costs beside the floor however cheap the checks: SHA-256 at its own speed
REQUIRED = (
    "journal append (framing + write + fsync)",
    "dedupe (lookup + mask)",
    "  leaf encoding (canonical_column)",
    "  SHA-256 alone (the leaves' bytes, one call)",
    "tiles insert",
)


def _cpu_per_event(fn: Callable[[], Any], events: int, rounds: int = 3) -> float:
    """The least CPU of ``rounds`` runs, in µs per event (the machine is shared)."""
    best = float("inf")
    for _ in range(rounds):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best / events * 1e6


def batching(events: int, per_batch: int) -> dict[str, float]:
    from receiver.batching.columnar import decode_batch
    from receiver.batching.kernels import changes_column
    from receiver.batching.process import process
    from receiver.pipeline.auth import OPEN

    template, offsets = template_request()
    raw = fresh_requests(template, offsets, max(1, events // RECORDS_PER_REQUEST))
    n = len(raw) * RECORDS_PER_REQUEST
    groups = [raw[i : i + per_batch] for i in range(0, len(raw), per_batch)]
    decode = _cpu_per_event(lambda: [decode_batch(g) for g in groups], n)
    path = _cpu_per_event(lambda: [process(g, [OPEN] * len(g), lambda _t: 365) for g in groups], n)
    tables = [r.table for g in groups for r in process(g, [OPEN] * len(g), lambda _t: 365)]
    changes = [t.column("changes").combine_chunks() for t in tables]

    def canonicalise() -> None:
        for column in changes:
            changes_column(column, np.ones(len(column), bool), np.zeros(len(column), bool))

    return {
        "native decode": decode,
        "column checks and rows": path - decode,
        "  of which audit.changes canonicalisation": _cpu_per_event(canonicalise, n),
    }


def run(events: int, per_batch: int, commit_rows: int) -> dict[str, Any]:
    stages = batching(events, per_batch)
    commit = commit_path.run(events, commit_rows, 1)["us_per_event"]
    stages.update({k: v for k, v in commit.items() if k in BUDGET or k.startswith("  ")})
    total = sum(stages[k] for k in BUDGET)
    floor_us = stages["native decode"] + commit["chDB insert alone (no log columns)"]
    required = sum(stages[k] for k in REQUIRED)
    return {
        "events": events,
        "requests_per_batch": per_batch,
        "commit_rows": commit_rows,
        "us_per_event": stages,
        "budget_us_per_event": total,
        "design_ceiling_per_cpu_s": 1e6 / total,
        "floor_per_cpu_s": 1e6 / floor_us,
        "ceiling_over_floor": floor_us / total,
        "required_beyond_floor_us_per_event": required,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=204_800)
    p.add_argument("--requests-per-batch", type=int, default=8, help="what 16 in flight give the batcher")
    p.add_argument("--commit-rows", type=int, default=51_200, help="the writer's ingest.max_batch_rows")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = run(args.events, args.requests_per_batch, args.commit_rows)
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"ingest budget, {out['events']:,} events, {out['requests_per_batch']} requests a batch, "
        f"{out['commit_rows']:,}-row commits (CPU µs per event, each stage alone)"
    )
    for stage, us in out["us_per_event"].items():
        print(f"  {stage:<46} {us:6.2f}")
    print(f"  {'sum of the stages every event takes':<46} {out['budget_us_per_event']:6.2f}")
    print(
        f"  design ceiling {out['design_ceiling_per_cpu_s']:,.0f} events/CPU-s; floor (decode + insert alone) "
        f"{out['floor_per_cpu_s']:,.0f}; ceiling = {out['ceiling_over_floor']:.2f} of the floor (target 0.5)"
    )
    print(
        f"  beside the floor, without the checks, SHA-256 at its own speed: "
        f"{out['required_beyond_floor_us_per_event']:.2f} µs/event (journal, dedupe, leaf encoding, "
        f"SHA-256, tiles insert; no merges, no transport)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
