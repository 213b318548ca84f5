"""Ceilings measured in the same run as the benches, each in its own process (its own chDB path).

``python -m bench.baselines ingest --events N``: the same OTLP requests as the ingest bench,
(1) parsed with opentelemetry-proto alone, (2) through the Python pipeline, (2b) decoded natively
into Arrow alone (ptars) and through the batching path (decode + column-wise validation), 16
requests a batch, and (3) the resulting rows inserted straight into chDB by its fastest path
(``INSERT … SELECT * FROM Python(arrow)`` in 100 k-row batches). Figures are events per
process CPU-second. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.common import RECORDS_PER_REQUEST, fresh_requests, template_request


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    c0 = time.process_time()
    out = fn()
    return time.process_time() - c0, out


def ingest(events: int) -> dict[str, Any]:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from receiver import pipeline
    from receiver.pipeline.auth import OPEN
    from receiver.store.chdb_store import ChdbStore

    template, offsets = template_request()
    n_req = max(1, events // RECORDS_PER_REQUEST)
    raw = fresh_requests(template, offsets, n_req)
    n = n_req * RECORDS_PER_REQUEST
    out: dict[str, Any] = {"events": n}

    cpu, parsed = _cpu(lambda: [ExportLogsServiceRequest.FromString(b) for b in raw])
    out["proto_parse_per_cpu_s"] = n / cpu

    def walk() -> int:
        from receiver.pipeline.decode import any_value, flatten

        k = 0
        for req in parsed:
            for flat in flatten(req):
                for kv in flat.record.attributes:
                    any_value(kv.value)
                    k += 1
        return k

    cpu, _ = _cpu(walk)
    out["proto_walk_per_cpu_s"] = n / cpu

    cpu, results = _cpu(lambda: [pipeline.run(r, OPEN, lambda _t: 365) for r in parsed])
    out["python_pipeline_per_cpu_s"] = n / cpu
    out.update(_batching(raw, n))
    out["otlp_json_per_cpu_s"] = _otlp_json(parsed[: max(1, len(parsed) // 8)])
    tables = [r.table for r in results]

    with tempfile.TemporaryDirectory(prefix="otel-audit-baseline-") as tmp:
        store = ChdbStore(Path(tmp) / "data")
        combined = pa.concat_tables(tables)
        batches = [combined.slice(i, 100_000) for i in range(0, combined.num_rows, 100_000)]
        store.insert(batches[0].slice(0, 10))  # warm up

        def insert() -> None:
            for batch in batches:
                store.insert(batch)

        cpu, _ = _cpu(insert)
        wall0 = time.perf_counter()
        out["engine_insert_per_cpu_s"] = n / cpu
        out["engine_insert_wall_s"] = time.perf_counter() - wall0
        store.close()
    return out


def _batching(raw: list[bytes], n: int, per_batch: int = 16) -> dict[str, float]:
    """The batching path's parts, ``per_batch`` requests at a time (what 16 in flight give):
    native decode alone (ptars, the stack's decode floor) and decode + column-wise validation."""
    from receiver.batching.columnar import decode_batch
    from receiver.batching.process import process
    from receiver.pipeline.auth import OPEN

    groups = [raw[i : i + per_batch] for i in range(0, len(raw), per_batch)]
    cpu, _ = _cpu(lambda: [decode_batch(g) for g in groups])
    decode = n / cpu
    cpu, _ = _cpu(lambda: [process(g, [OPEN] * len(g), lambda _t: 365) for g in groups])
    return {"native_decode_per_cpu_s": decode, "batching_path_per_cpu_s": n / cpu}


def _otlp_json(requests: list[Any]) -> float:
    """OTLP/HTTP JSON's path (it stays per request): the JSON decode and ``pipeline.run``."""
    import base64

    from google.protobuf import json_format

    from receiver import pipeline
    from receiver.pipeline.auth import OPEN
    from receiver.transport.otlp_codec import decode_json

    bodies = []
    for request in requests:
        data = json_format.MessageToDict(request)
        for rl in data["resourceLogs"]:
            for sl in rl["scopeLogs"]:
                for record in sl["logRecords"]:
                    for key in ("traceId", "spanId"):
                        record[key] = base64.b64decode(record[key]).hex()
        bodies.append(json.dumps(data).encode())
    cpu, _ = _cpu(lambda: [pipeline.run(decode_json(b), OPEN, lambda _t: 365) for b in bodies])
    return len(bodies) * RECORDS_PER_REQUEST / cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("ingest")
    s.add_argument("--events", type=int, default=200_000)
    args = p.parse_args(argv)
    if args.what == "ingest":
        print(json.dumps(ingest(args.events)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
