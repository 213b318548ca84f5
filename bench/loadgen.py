"""The OTLP/gRPC load generator, run as its own process so its CPU is not the receiver's.

Prepares its requests, prints ``READY``, waits for a line on stdin, sends, and prints one JSON
line: events sent and acknowledged, wall time, per-request latencies (p50/p99), errors.
``--requests N`` sends N prepared requests; ``--duration S --rate R`` sends R requests/s for S
seconds, each with fresh ids (the soak).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from bench.common import RECORDS_PER_REQUEST, fresh_requests, pct, template_request

METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--requests", type=int, default=0)
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--rate", type=float, default=0.0, help="requests per second (0: as fast as acked)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--tenants", type=int, default=1)
    p.add_argument("--token", default=None)
    args = p.parse_args(argv)

    template, offsets = template_request(args.tenants)
    prepared = fresh_requests(template, offsets, args.requests) if args.requests else []
    channel = grpc.insecure_channel(
        args.endpoint, options=[("grpc.max_send_message_length", 16 * 2**20)], compression=None
    )
    export = channel.unary_unary(
        METHOD, request_serializer=None, response_deserializer=ExportLogsServiceResponse.FromString
    )
    grpc.channel_ready_future(channel).result(timeout=30)
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    print("READY", flush=True)
    sys.stdin.readline()

    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"acked": 0, "errors": 0, "rejected": 0, "sent": 0}
    error_kinds: dict[str, int] = {}
    started = time.perf_counter()
    deadline = started + args.duration if args.duration else None
    next_slot = [started]

    def take() -> bytes | None:
        with lock:
            if prepared:
                return prepared.pop()
            if deadline is None or time.perf_counter() >= deadline:
                return None
            if args.rate:
                slot = next_slot[0]
                next_slot[0] += 1.0 / args.rate
            else:
                slot = 0.0
        if slot:
            delay = slot - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if time.perf_counter() >= deadline:
                return None
        return fresh_requests(template, offsets, 1)[0]

    def worker() -> None:
        while True:
            data = take()
            if data is None:
                return
            t0 = time.perf_counter()
            try:
                response = export(data, metadata=metadata, timeout=60)
                ok, rejected = True, response.partial_success.rejected_log_records
            except grpc.RpcError as exc:
                ok, rejected = False, 0
                kind = str(exc.code())
            elapsed = time.perf_counter() - t0
            with lock:
                counts["sent"] += 1
                if ok:
                    counts["acked"] += 1
                    counts["rejected"] += rejected
                    latencies.append(elapsed)
                else:
                    counts["errors"] += 1
                    error_kinds[kind] = error_kinds.get(kind, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    channel.close()
    print(
        json.dumps(
            {
                "events_acked": counts["acked"] * RECORDS_PER_REQUEST,
                "requests_sent": counts["sent"],
                "errors": counts["errors"],
                "error_kinds": error_kinds,
                "rejected": counts["rejected"],
                "wall_seconds": wall,
                "p50_ms": pct(latencies, 0.50) * 1000,
                "p99_ms": pct(latencies, 0.99) * 1000,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
