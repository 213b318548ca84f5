"""Run all five benches, and the pipeline-alone bench after ingest; ``--quick`` runs a short
version of each (a few minutes in all).

python -m bench.all [--quick] [--json results.jsonl]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench import ingest, overhead, pipeline, search, soak
from bench.common import RESULTS_ENV

QUICK = {
    "ingest": ["--events", "102400", "--baseline-events", "51200"],
    "pipeline": ["--events", "51200", "--rounds", "3"],
    "overhead": ["--requests", "5000"],
    "search": ["--rows", "1000000", "--export-rows", "200000,500000", "--repeat", "15"],
    "soak": ["--minutes", "1", "--interval", "5"],
}
FULL: dict[str, list[str]] = {"ingest": [], "pipeline": [], "overhead": [], "search": [], "soak": []}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", help="append every result as a JSON line to this file")
    args = p.parse_args(argv)
    if args.json:
        os.environ[RESULTS_ENV] = os.path.abspath(args.json)
    else:
        os.environ.setdefault(RESULTS_ENV, os.path.join(tempfile.gettempdir(), "otel-audit-bench.jsonl"))
    plan = QUICK if args.quick else FULL
    started = time.monotonic()
    benches = (
        ("ingest", ingest),
        ("pipeline", pipeline),
        ("overhead", overhead),
        ("search", search),
        ("soak", soak),
    )
    for name, module in benches:
        t0 = time.monotonic()
        module.main(plan[name])
        print(f"  ({name}: {time.monotonic() - t0:.0f} s)", flush=True)
    print(f"\nall benches: {time.monotonic() - started:.0f} s; results in {os.environ[RESULTS_ENV]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
