"""Bench: automated log review (issue 17). With the shipped rule pack evaluated every
``--interval`` seconds over a store of ``--events`` stored events while ``--rate`` events/s
arrive over OTLP/gRPC, how much CPU does evaluation add (the same feed with alerts off, in the
same process, is the baseline), and how long from a brute-force burst's acknowledgement to its
webhook delivery?

    python -m bench.alerts [--events 10000000] [--rate 1000] [--seconds 120] [--interval 15]

Targets: ≤ 5 % of one core for the default pack at 10 M events and 1 k events/s; delivery
p50 ≤ 20 s at the default 15 s interval.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import psutil
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from bench.common import median, pct, report, verdict
from receiver.config import load_config
from receiver.server import Receiver
from receiver.store.chdb_store import ChdbStore
from receiver.store.synthetic import SyntheticSpec

CPU_TARGET = 0.05
LATENCY_TARGET_S = 20.0


class Hook:
    """A loopback webhook: the arrival time of each alert by the user it is about."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                hook.arrived.setdefault(body.get("group", {}).get("user_id", ""), time.monotonic())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def record(user: str, action: str, outcome: str) -> LogRecord:
    attrs = {
        "audit.event.id": str(uuid.uuid4()),
        "audit.tenant.id": "tenant-00",
        "enduser.id": user,
        "audit.action": action,
        "audit.outcome": outcome,
        "audit.resource.type": "session" if action == "login" else "document",
        "audit.resource.id": "r-1",
        "client.address": "203.0.113.7",
    }
    return LogRecord(
        time_unix_nano=time.time_ns(),
        event_name=f"audit.document.{action}",
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items()],
    )


def feed(endpoint: str, rate: int, seconds: float, bursts: dict[str, float], run_id: str) -> int:
    """``rate`` events/s in 10 requests a second; every 10 s a burst of five failed logins for a
    fresh user (whose acknowledgement time goes in ``bursts``)."""
    sent = 0
    per_request = max(1, rate // 10)
    with grpc.insecure_channel(endpoint) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < seconds:
            records = [
                record(f"user-{(tick * per_request + i) % 500}", "read", "success")
                for i in range(per_request)
            ]
            burst_user = ""
            if tick % 100 == 50:
                burst_user = f"attacker-{run_id}-{tick}"
                records += [record(burst_user, "login", "failure") for _ in range(5)]
            request = ExportLogsServiceRequest(
                resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])]
            )
            stub.Export(request, timeout=30)
            if burst_user:
                bursts[burst_user] = time.monotonic()
            sent += len(records)
            tick += 1
            time.sleep(max(0.0, start + tick * 0.1 - time.monotonic()))
    return sent


def run(store: ChdbStore, alerts: dict[str, Any], rate: int, seconds: float) -> dict[str, Any]:
    config = load_config(
        None, grpc_listen="127.0.0.1:0", http_listen="127.0.0.1:0", admin_listen="127.0.0.1:0", alerts=alerts
    )
    receiver = Receiver(config, store=store)
    receiver.start()
    process = psutil.Process()
    bursts: dict[str, float] = {}
    try:
        cpu0 = sum(process.cpu_times()[:2])
        t0 = time.monotonic()
        sent = feed(f"127.0.0.1:{receiver.grpc_port}", rate, seconds, bursts, uuid.uuid4().hex[:8])
        wall = time.monotonic() - t0
        cpu = sum(process.cpu_times()[:2]) - cpu0
        if receiver.alerts is not None:
            time.sleep(alerts.get("interval_seconds", 15) + 5)  # let the last bursts be delivered
    finally:
        receiver.stop_listeners()
    return {"sent": sent, "cpu": cpu, "wall": wall, "bursts": bursts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="stored events before the run")
    parser.add_argument("--rate", type=int, default=1000, help="events per second arriving")
    parser.add_argument("--seconds", type=float, default=120, help="length of each run")
    parser.add_argument("--interval", type=float, default=15, help="alerts.interval_seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="otel-audit-bench-alerts-") as tmp:
        store = ChdbStore(Path(tmp) / "data")
        t = time.monotonic()
        store.generate_synthetic(SyntheticSpec(rows=args.events))
        print(f"{args.events:,} synthetic events in {time.monotonic() - t:.0f} s", flush=True)
        hook = Hook()
        before = run(store, {"enabled": False}, args.rate, args.seconds)
        alerts = {
            "interval_seconds": args.interval,
            "destinations": [{"name": "hook", "kind": "webhook", "url": hook.url, "secret": "s"}],
            "pack_destinations": ["hook"],
        }
        with_alerts = run(store, alerts, args.rate, args.seconds)
        after = run(store, {"enabled": False}, args.rate, args.seconds)
        store.close()
    # the baseline runs before and after the alerts run, so a store that grows and merges
    # does not count as evaluation cost
    base_cores = (before["cpu"] / before["wall"] + after["cpu"] / after["wall"]) / 2
    added = with_alerts["cpu"] / with_alerts["wall"] - base_cores
    latencies = [hook.arrived[u] - at for u, at in with_alerts["bursts"].items() if u in hook.arrived]
    missed = len(with_alerts["bursts"]) - len(latencies)
    rows = [
        (
            "stored events / arriving rate",
            f"{args.events:,} / {args.rate:,} per s, interval {args.interval:g} s",
        ),
        (
            "receiver CPU, alerts off (baseline: before / after)",
            f"{before['cpu'] / before['wall']:.3f} / {after['cpu'] / after['wall']:.3f} cores",
        ),
        ("receiver CPU, default pack on", f"{with_alerts['cpu'] / with_alerts['wall']:.3f} cores"),
        ("added by evaluation", f"{added:.3f} cores {verdict(added, CPU_TARGET, higher_is_better=False)}"),
        (
            "burst acknowledged → webhook, p50 / max",
            f"{median(latencies):.1f} / {max(latencies or [float('nan')]):.1f} s"
            f" {verdict(median(latencies), LATENCY_TARGET_S, higher_is_better=False)}",
        ),
        ("bursts not delivered", str(missed)),
    ]
    report(
        "alerts",
        rows,
        {
            "added_cores": added,
            "latency_p50_s": median(latencies),
            "latency_p99_s": pct(latencies, 0.99),
            "missed": missed,
            "events": args.events,
            "date": dt.date.today().isoformat(),
        },
    )
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
