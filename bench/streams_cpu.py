"""Bench: what log streams add to ingest's CPU (issue 18: ≤ 10 % at 20 k events/s with two
streams). ``otel-audit serve`` takes OTLP/gRPC at ``--rate`` events/s from a separate load
generator for ``--seconds``, first without streams, then with two webhook streams (all tenants)
delivering to a loopback hook in this process; the receiver process's CPU is compared, and the
hook's line count shows every event was delivered.

    python -m bench.streams_cpu [--rate 20000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bench.common import RECORDS_PER_REQUEST, Serve, report, verdict
from bench.ingest import run_load

TARGET_ADDED = 0.10


def _hook() -> tuple[ThreadingHTTPServer, list[int]]:
    lines = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with lock:
                lines[0] += gzip.decompress(body).count(b"\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, lines


def _reads(serve: Serve) -> dict[str, float]:
    """The streams' reads by result (queried, or shared from a sibling stream)."""
    text = httpx.get(f"{serve.admin_url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("otel_audit_stream_reads_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            out[result] = out.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _phase(rate: float, seconds: float, streams: list[dict[str, Any]], lines: list[int]) -> dict[str, Any]:
    config: dict[str, Any] = {"alerts": {"enabled": False}, "streams": streams}
    with Serve(config=config) as serve:
        requests_per_s = rate / RECORDS_PER_REQUEST
        args = ["--duration", str(seconds), "--rate", str(requests_per_s), "--concurrency", "4"]
        before = lines[0]
        threads0 = serve.thread_cpu()
        load, cpu, wall = run_load(serve, args)
        events = load["events_acked"]
        # the streams catch up (their CPU after the feed counts too: it is work ingest caused)
        cpu0 = serve.cpu_seconds()
        deadline = time.monotonic() + 120
        while streams and lines[0] - before < 2 * events and time.monotonic() < deadline:
            time.sleep(0.2)
        cpu += serve.cpu_seconds() - cpu0 if streams else 0.0
        threads1 = serve.thread_cpu()
        reads = _reads(serve) if streams else {}
        by_thread = {k: round(v - threads0.get(k, 0.0), 2) for k, v in threads1.items()}
        return {
            "events": events,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "events_per_s": round(events / wall),
            "delivered": lines[0] - before,
            "reads": reads,
            "cpu_s_by_thread": {
                k: v for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1]) if v >= 0.05
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    server, lines = _hook()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    streams = [
        {"name": f"s{i}", "kind": "webhook", "url": url, "secret": "bench", "batch_size": 10_000}
        for i in (1, 2)
    ]
    base = _phase(args.rate, args.seconds, [], lines)
    with_streams = _phase(args.rate, args.seconds, streams, lines)
    server.shutdown()
    per_event = (with_streams["cpu_s"] / with_streams["events"]) / (base["cpu_s"] / base["events"])
    added = per_event - 1.0
    report(
        "streams_cpu",
        [
            (
                "ingest without streams",
                f"{base['events']:,} events, {base['cpu_s']} CPU-s, {base['events_per_s']:,}/s",
            ),
            (
                "with two webhook streams",
                f"{with_streams['events']:,} events, {with_streams['cpu_s']} CPU-s, "
                f"{with_streams['delivered']:,} delivered, reads {with_streams['reads']}",
            ),
            ("CPU-s by thread, without", str(base["cpu_s_by_thread"])),
            ("CPU-s by thread, with", str(with_streams["cpu_s_by_thread"])),
            (
                "CPU added per event",
                f"{added:+.1%} (target ≤ {TARGET_ADDED:.0%}: {verdict(added, TARGET_ADDED, False)})",
            ),
        ],
        {"rate": args.rate, "seconds": args.seconds, "base": base, "streams": with_streams, "added": added},
    )


if __name__ == "__main__":
    main()
