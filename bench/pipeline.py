"""The per-record Python pipeline alone, old and new in one process, against its floors.

    python -m bench.pipeline [--events 102400] [--rounds 7]

On the ingest bench's requests (512 records, 12 attributes, a ~100-byte ``audit.changes``),
already parsed: ``pipeline.run`` as it is, the pipeline before the columnar rewrite
(tests/receiver/pipeline_reference.py, kept as the tests' reference), and the floors — the
upb parse alone, and parse + walking every attribute in Python (``flatten`` + ``any_value``, the
same walk as ``bench.baselines``). Variants run interleaved, ``--rounds`` times each; figures are
the median events per process CPU-second (the machine is shared: compare within one run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import RECORDS_PER_REQUEST, REPO, fresh_requests, report, template_request


def _cpu(fn: Callable[[], Any]) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=102_400)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from receiver import pipeline
    from receiver.pipeline.auth import OPEN
    from receiver.pipeline.decode import any_value, flatten

    sys.path.insert(0, str(REPO / "tests" / "receiver"))
    import pipeline_reference  # the pre-columnar pipeline, verbatim

    template, offsets = template_request()
    n_req = max(1, args.events // RECORDS_PER_REQUEST)
    raw = fresh_requests(template, offsets, n_req)
    parsed = [ExportLogsServiceRequest.FromString(b) for b in raw]
    n = n_req * RECORDS_PER_REQUEST

    def parse() -> None:
        for b in raw:
            ExportLogsServiceRequest.FromString(b)

    def walk() -> None:
        for req in parsed:
            for flat in flatten(req):
                for kv in flat.record.attributes:
                    any_value(kv.value)

    def new() -> None:
        for req in parsed:
            pipeline.run(req, OPEN, lambda _t: 365, lambda _t: 30)

    def old() -> None:
        for req in parsed:
            pipeline_reference.run(req, OPEN, lambda _t: 365, lambda _t: 30)

    variants = {"parse": parse, "walk": walk, "new": new, "old": old}
    for fn in variants.values():  # warm up
        fn()
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            cpu[name].append(_cpu(fn))
    med = {k: statistics.median(v) for k, v in cpu.items()}
    floor = med["parse"] + med["walk"]
    full = {
        "new": med["parse"] + med["new"],
        "old": med["parse"] + med["old"],
    }

    def per_s(seconds: float) -> float:
        return n / seconds

    def us(seconds: float) -> float:
        return seconds / n * 1e6

    result = {
        "events": n,
        "rounds": args.rounds,
        "parse_per_cpu_s": per_s(med["parse"]),
        "parse_walk_per_cpu_s": per_s(floor),
        "pipeline_per_cpu_s": per_s(med["new"]),
        "pipeline_before_per_cpu_s": per_s(med["old"]),
        "parse_pipeline_per_cpu_s": per_s(full["new"]),
        "parse_pipeline_before_per_cpu_s": per_s(full["old"]),
        "us_per_event": {k: us(v) for k, v in med.items()},
        "speedup": med["old"] / med["new"],
    }
    rows = [
        ("events per variant and round", f"{n:,} × {args.rounds} rounds (median)"),
        ("parse alone (upb)", f"{per_s(med['parse']):,.0f}/CPU-s ({us(med['parse']):.2f} µs/event)"),
        ("parse + walk (the floor)", f"{per_s(floor):,.0f}/CPU-s ({us(floor):.2f} µs/event)"),
        ("pipeline.run now", f"{per_s(med['new']):,.0f}/CPU-s ({us(med['new']):.2f} µs/event)"),
        ("pipeline before (reference)", f"{per_s(med['old']):,.0f}/CPU-s ({us(med['old']):.2f} µs/event)"),
        ("speed-up, same run", f"{result['speedup']:.2f}×"),
        (
            "parse + pipeline now / before",
            f"{per_s(full['new']):,.0f} / {per_s(full['old']):,.0f} per CPU-s "
            f"(now at {floor / full['new']:.2f} of the floor's rate)",
        ),
    ]
    report("pipeline", rows, result)
    return result


if __name__ == "__main__":
    main()
