"""Bench: one log stream's delivery rate to a local webhook (issue 18). ``--events`` synthetic
events are generated in a fresh chDB store and given positions (one log per tenant, indexes from
0); one stream then delivers all of them to a loopback HTTP server that counts NDJSON lines.

    python -m bench.streams [--events 200000] [--batch 5000] [--deliver N]

Target (issue 18): ≥ 100 k events/s per stream at 10 M stored events. The default size is small
(a shared machine); pass --events 10000000 on a quiet one.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CollectorRegistry

from bench.common import report, verdict
from receiver.store.chdb_store import ChdbStore
from receiver.store.sql import Statement
from receiver.store.synthetic import SyntheticSpec
from receiver.streams.config import Stream
from receiver.streams.metrics import StreamMetrics
from receiver.streams.runner import Runner

TARGET = 100_000.0


def _hook() -> tuple[ThreadingHTTPServer, list[int]]:
    lines = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            lines[0] += gzip.decompress(body).count(b"\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--deliver",
        type=int,
        default=0,
        help="stop after this many delivered (0: all); the rate at --events stored",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = ChdbStore(Path(tmp), database="bench")
        store.generate_synthetic(SyntheticSpec(rows=args.events, tenants=10))
        db = store.database
        # copies of the synthetic rows with positions (one log per tenant, indexes from 0) and new ids
        # (the store keeps one row per tenant and id); the unchained originals are never streamed
        store.execute(
            Statement(
                f"INSERT INTO {db}.audit_events SELECT * REPLACE (generateUUIDv4() AS id,"
                " concat('bench/', tenant_id) AS chain_id,"
                " toUInt64(row_number() OVER (PARTITION BY tenant_id ORDER BY received_at, id) - 1) AS seq)"
                f" FROM (SELECT * FROM {db}.audit_events WHERE chain_id = '')",  # aliases would shadow it
                {},
            )
        )
        server, lines = _hook()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        stream = Stream(
            name="bench", kind="webhook", url=url, secret="s", batch_size=args.batch, batch_seconds=0
        )
        runner = Runner(store, stream, StreamMetrics(CollectorRegistry()), "bench")
        started = time.perf_counter()
        cpu = time.process_time()
        goal = args.deliver or args.events
        while lines[0] < goal:
            if runner.step() == 0 and lines[0] < goal:
                time.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu
        runner.sink.close()
        server.shutdown()
        store.close()
    delivered = lines[0]
    rate = delivered / seconds
    result = {
        "events": args.events,
        "delivered": delivered,
        "batch": args.batch,
        "seconds": round(seconds, 2),
        "events_per_s": round(rate),
        "cpu_seconds": round(cpu_seconds, 2),
    }
    report(
        "streams",
        [
            ("delivery rate, one webhook stream", f"{rate:,.0f} events/s ({verdict(rate, TARGET)})"),
            ("wall / CPU seconds (receiver and hook)", f"{seconds:.2f} / {cpu_seconds:.2f}"),
        ],
        result,
    )


if __name__ == "__main__":
    main()
