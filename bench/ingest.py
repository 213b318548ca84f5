"""Bench 1, ingest: OTLP/gRPC requests of 512 records from a separate load-generator process into
`otel-audit serve` on chDB; events/s acknowledged (and queryable), p50/p99 export latency, and
the receiver process's CPU seconds per 100 k events, against the parse and engine ceilings.

    python -m bench.ingest [--events 1000000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import httpx

from bench.common import RECORDS_PER_REQUEST, REPO, Serve, report, run_python, verdict

TARGET_PER_CPU_S = 150_000


def run_load(serve: Serve, args: list[str]) -> tuple[dict[str, Any], float, float]:
    """Start the load generator, wait until it is ready, then measure the receiver's CPU over
    exactly the sending window. Returns (loadgen result, receiver CPU seconds, wall seconds)."""
    env_cmd = [sys.executable, "-m", "bench.loadgen", "--endpoint", serve.grpc_endpoint, *args]
    proc = subprocess.Popen(
        env_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=None
    )
    assert proc.stdin and proc.stdout
    line = proc.stdout.readline()
    if line.strip() != "READY":
        raise RuntimeError(f"load generator failed to start: {line!r}")
    cpu0, t0 = serve.cpu_seconds(), time.perf_counter()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    result = json.loads(proc.stdout.readline())
    cpu1, t1 = serve.cpu_seconds(), time.perf_counter()
    proc.wait(30)
    return result, cpu1 - cpu0, t1 - t0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    # requests in flight at once: many exporters (a fleet of app instances) sending to one receiver
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--baseline-events", type=int, default=204_800)
    args = p.parse_args(argv)
    requests = max(1, args.events // RECORDS_PER_REQUEST)
    with Serve() as serve:
        # warm up: first inserts create parts and load code paths
        run_load(serve, ["--requests", "4", "--concurrency", "2"])
        warm = serve.metric("otel_audit_accepted_events_total")
        threads0 = serve.thread_cpu()
        load, cpu, _ = run_load(serve, ["--requests", str(requests), "--concurrency", str(args.concurrency)])
        threads1 = serve.thread_cpu()
        accepted = serve.metric("otel_audit_accepted_events_total") - warm
        rss = serve.rss_mb()
        page = httpx.get(f"{serve.admin_url}/api/events", params={"limit": 1}, timeout=30).json()
        queryable = bool(page.get("events"))
    base = run_python("bench.baselines", "ingest", "--events", str(args.baseline_events))

    events = load["events_acked"]
    by_thread = {k: v - threads0.get(k, 0.0) for k, v in threads1.items() if v - threads0.get(k, 0.0) > 0.005}
    per_cpu = events / cpu if cpu else 0.0
    result = {
        "concurrency": args.concurrency,
        "events": events,
        "accepted": accepted,
        "errors": load["errors"],
        "queryable": queryable,
        "events_per_s": events / load["wall_seconds"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "cpu_s_per_100k": cpu / events * 100_000 if events else None,
        "events_per_cpu_s": per_cpu,
        "receiver_rss_mb": rss,
        "cpu_us_per_event_by_thread": {k: v / events * 1e6 for k, v in by_thread.items()} if events else {},
        "target_per_cpu_s": TARGET_PER_CPU_S,
        "baseline": base,
    }
    rows = [
        (
            "events acknowledged",
            f"{events:,} ({load['errors']} errors, stored {accepted:,.0f}, queryable {queryable})",
        ),
        ("throughput, end to end", f"{result['events_per_s']:,.0f} events/s"),
        ("export latency p50 / p99", f"{load['p50_ms']:.1f} ms / {load['p99_ms']:.1f} ms"),
        ("receiver CPU per 100k events", f"{result['cpu_s_per_100k']:.2f} s"),
        (
            "events per receiver CPU-second",
            f"{per_cpu:,.0f}  target {TARGET_PER_CPU_S:,}: {verdict(per_cpu, TARGET_PER_CPU_S)}",
        ),
        ("receiver RSS after", f"{rss:.0f} MB"),
        (
            "receiver CPU by thread",
            ", ".join(
                f"{k} {v / events * 1e6:.1f} µs/event"
                for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1])
            )
            if events
            else "",
        ),
        (
            "baseline: proto parse only",
            f"{base['proto_parse_per_cpu_s']:,.0f}/CPU-s (ratio {per_cpu / base['proto_parse_per_cpu_s']:.2f})",
        ),
        (
            "baseline: proto parse + walk",
            f"{base['proto_walk_per_cpu_s']:,.0f}/CPU-s (ratio {per_cpu / base['proto_walk_per_cpu_s']:.2f})",
        ),
        (
            "baseline: python pipeline",
            f"{base['python_pipeline_per_cpu_s']:,.0f}/CPU-s (ratio {per_cpu / base['python_pipeline_per_cpu_s']:.2f})",
        ),
        (
            "baseline: chDB insert ceiling",
            f"{base['engine_insert_per_cpu_s']:,.0f}/CPU-s (ratio {per_cpu / base['engine_insert_per_cpu_s']:.2f})",
        ),
    ]
    report("ingest", rows, result)
    return result


if __name__ == "__main__":
    main()
