"""Bench 1, ingest: OTLP/gRPC requests of 512 records from a separate load-generator process into
`otel-audit serve` on chDB; events/s acknowledged (and queryable), p50/p99 export latency, and
the receiver process's CPU seconds per 100 k events, against the parse and engine ceilings.
With ``--ack both`` (the default) the receiver runs twice in the same run, acknowledging once in
its journal (``ingest.ack: journal``, the product default) and once in the store (``store``),
and the ratio is reported. Throughput and CPU are measured until every acknowledged event is
stored (the journal's commit thread included), the latency is the acknowledgement's.

    python -m bench.ingest [--events 1000000] [--concurrency 16] [--ack journal|store|both]
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


def run_load(serve: Serve, args: list[str], warm: float = 0.0) -> tuple[dict[str, Any], float, float]:
    """Start the load generator, wait until it is ready, then measure the receiver's CPU from the
    first request until every acknowledged event is stored (``warm``: events stored before).
    Returns (loadgen result, receiver CPU seconds, wall seconds)."""
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
    wait_stored(serve, warm + result["events_acked"])
    cpu1, t1 = serve.cpu_seconds(), time.perf_counter()
    proc.wait(30)
    return result, cpu1 - cpu0, t1 - t0


def wait_stored(serve: Serve, events: float, timeout: float = 600) -> None:
    """Until the receiver's store holds ``events`` (journal mode commits behind the ack)."""
    deadline = time.monotonic() + timeout
    while serve.metric("otel_audit_accepted_events_total") < events:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the store did not catch up with {events:,.0f} acknowledged events")
        time.sleep(0.05)


def measure(
    ack: str, requests: int, concurrency: int, ingest: dict[str, Any] | None = None
) -> dict[str, Any]:
    with Serve(config={"ingest": {"ack": ack, **(ingest or {})}}) as serve:
        # warm up: first inserts create parts and load code paths
        run_load(serve, ["--requests", "4", "--concurrency", "2"])
        warm = serve.metric("otel_audit_accepted_events_total")
        # the receiver's own size before the load: what the RSS target has left for the load
        idle_split = serve.rss_split_mb()
        threads0 = serve.thread_cpu()
        load, cpu, wall = run_load(
            serve, ["--requests", str(requests), "--concurrency", str(concurrency)], warm
        )
        threads1 = serve.thread_cpu()
        accepted = serve.metric("otel_audit_accepted_events_total") - warm
        commits = serve.metric("otel_audit_store_insert_rows_count")
        rss = serve.rss_mb()
        rss_peak = serve.peak_rss_mb()
        rss_split = serve.rss_split_mb()
        page = httpx.get(f"{serve.admin_url}/api/events", params={"limit": 1}, timeout=30).json()
        queryable = bool(page.get("events"))
    events = load["events_acked"]
    by_thread = {k: v - threads0.get(k, 0.0) for k, v in threads1.items() if v - threads0.get(k, 0.0) > 0.005}
    return {
        "ack": ack,
        "events": events,
        "accepted": accepted,
        "errors": load["errors"],
        "queryable": queryable,
        "events_per_s": events / wall,
        "ack_events_per_s": events / load["wall_seconds"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "cpu_s_per_100k": cpu / events * 100_000 if events else None,
        "events_per_cpu_s": events / cpu if cpu else 0.0,
        "store_commits": commits,
        "receiver_rss_mb": rss,
        "receiver_rss_peak_mb": rss_peak,
        "receiver_rss_anonymous_mb": rss_split["anonymous"],
        "receiver_rss_file_backed_mb": rss_split["file_backed"],
        "receiver_rss_idle_mb": idle_split["rss"],
        "receiver_rss_idle_anonymous_mb": idle_split["anonymous"],
        "receiver_rss_idle_file_backed_mb": idle_split["file_backed"],
        "cpu_us_per_event_by_thread": {k: v / events * 1e6 for k, v in by_thread.items()} if events else {},
    }


def _floor(base: dict[str, Any]) -> float:
    """Events per CPU-second of native decode followed by the chDB insert, nothing else."""
    return 1 / (1 / base["native_decode_per_cpu_s"] + 1 / base["engine_insert_per_cpu_s"])


def bounds(run: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    """What bounds the two CPU targets, from this run's measurements, µs per event: the receiver,
    the engine's threads in it (insert, dedupe lookups, background merges), the native decode
    alone, and each target's budget."""
    threads = run["cpu_us_per_event_by_thread"]
    return {
        "receiver": 1e6 / run["events_per_cpu_s"] if run["events_per_cpu_s"] else float("inf"),
        "engine": threads.get("MergeMutate", 0.0) + threads.get("ThreadPool", 0.0),
        "decode": 1e6 / base["native_decode_per_cpu_s"],
        "target_budget": 1e6 / TARGET_PER_CPU_S,
        "half_floor_budget": 2e6 / _floor(base),
    }


def _bound_rows(b: dict[str, float]) -> list[tuple[str, str]]:
    """Per target: its budget less what the engine and the native decode took in this run, i.e.
    what is left for our own stages, next to what they took."""
    ours = b["receiver"] - b["engine"] - b["decode"]
    rows = []
    for label, budget in (
        (f"{TARGET_PER_CPU_S // 1000} k/CPU-s", b["target_budget"]),
        ("0.5 of the floor", b["half_floor_budget"]),
    ):
        rows.append(
            (
                f"bound: {label} allows",
                f"{budget:.2f} µs/event; less the engine's threads {b['engine']:.2f} and native decode "
                f"{b['decode']:.2f} leaves {budget - b['engine'] - b['decode']:.2f} for the checks, journal, "
                f"dedupe, chain and transport (they took {ours:.2f}; bench.ingest_budget has each alone)",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    # requests in flight at once: many exporters (a fleet of app instances) sending to one receiver
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--baseline-events", type=int, default=204_800)
    p.add_argument(
        "--ack", choices=("journal", "store", "both"), default="both", help="ingest.ack of the receiver"
    )
    p.add_argument(
        "--commit-interval", type=float, help="ingest.commit_interval_seconds (default: the config's)"
    )
    p.add_argument("--max-batch-rows", type=int, help="ingest.max_batch_rows (default: the config's)")
    args = p.parse_args(argv)
    ingest: dict[str, Any] = {}
    if args.commit_interval is not None:
        ingest["commit_interval_seconds"] = args.commit_interval
    if args.max_batch_rows is not None:
        ingest["max_batch_rows"] = args.max_batch_rows
    requests = max(1, args.events // RECORDS_PER_REQUEST)
    modes = ("journal", "store") if args.ack == "both" else (args.ack,)
    runs = {ack: measure(ack, requests, args.concurrency, ingest) for ack in modes}
    base = run_python("bench.baselines", "ingest", "--events", str(args.baseline_events))
    first = runs[modes[0]]
    per_cpu = first["events_per_cpu_s"]
    result = {
        **first,
        "concurrency": args.concurrency,
        "target_per_cpu_s": TARGET_PER_CPU_S,
        "baseline": base,
        "by_ack": runs,
        "bounds_us_per_event": bounds(first, base),
    }
    rows: list[tuple[str, str]] = []
    for ack, r in runs.items():
        events = r["events"]
        rows += [
            (
                f"[ack={ack}] events acknowledged",
                f"{events:,} ({r['errors']} errors, stored {r['accepted']:,.0f}, queryable {r['queryable']})",
            ),
            (
                f"[ack={ack}] throughput, end to end",
                f"{r['events_per_s']:,.0f} events/s stored ({r['ack_events_per_s']:,.0f}/s acknowledged), "
                f"{r['store_commits']:,.0f} store commits",
            ),
            (f"[ack={ack}] export latency p50 / p99", f"{r['p50_ms']:.1f} ms / {r['p99_ms']:.1f} ms"),
            (f"[ack={ack}] receiver CPU per 100k events", f"{r['cpu_s_per_100k']:.2f} s"),
            (
                f"[ack={ack}] events per receiver CPU-second",
                f"{r['events_per_cpu_s']:,.0f}  target {TARGET_PER_CPU_S:,}: "
                f"{verdict(r['events_per_cpu_s'], TARGET_PER_CPU_S)}",
            ),
            (
                f"[ack={ack}] receiver RSS after",
                f"{r['receiver_rss_mb']:.0f} MB: anonymous {r['receiver_rss_anonymous_mb']:.0f} MB, "
                f"file-backed {r['receiver_rss_file_backed_mb']:.0f} MB (library code pages); "
                f"peak {r['receiver_rss_peak_mb']:.0f} MB (VmHWM)",
            ),
            (
                f"[ack={ack}] receiver RSS before the load",
                f"{r['receiver_rss_idle_mb']:.0f} MB: anonymous {r['receiver_rss_idle_anonymous_mb']:.0f} MB, "
                f"file-backed {r['receiver_rss_idle_file_backed_mb']:.0f} MB (after the warm-up requests)",
            ),
            (
                f"[ack={ack}] receiver CPU by thread",
                ", ".join(
                    f"{k} {v:.1f} µs/event"
                    for k, v in sorted(r["cpu_us_per_event_by_thread"].items(), key=lambda kv: -kv[1])
                ),
            ),
        ]
    if len(runs) == 2:
        j, st = runs["journal"], runs["store"]
        rows.append(
            (
                "journal / store",
                f"events/CPU-s {j['events_per_cpu_s'] / st['events_per_cpu_s']:.2f}, "
                f"events/s {j['events_per_s'] / st['events_per_s']:.2f}, "
                f"p50 latency {j['p50_ms'] / st['p50_ms']:.2f}, p99 {j['p99_ms'] / st['p99_ms']:.2f}",
            )
        )
    rows += [
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
            "baseline: native decode alone (ptars)",
            f"{base['native_decode_per_cpu_s']:,.0f}/CPU-s (ratio {per_cpu / base['native_decode_per_cpu_s']:.2f})",
        ),
        (
            "baseline: batching path alone",
            f"{base['batching_path_per_cpu_s']:,.0f}/CPU-s (ratio {per_cpu / base['batching_path_per_cpu_s']:.2f})",
        ),
        (
            "OTLP/HTTP JSON path alone (per request)",
            f"{base['otlp_json_per_cpu_s']:,.0f}/CPU-s (JSON decode + pipeline.run)",
        ),
        (
            "stack floor: native decode + chDB insert",
            f"{_floor(base):,.0f}/CPU-s (ratio {per_cpu / _floor(base):.2f}; target >= 0.5)",
        ),
        (
            "baseline: chDB insert ceiling",
            f"{base['engine_insert_per_cpu_s']:,.0f}/CPU-s (ratio {per_cpu / base['engine_insert_per_cpu_s']:.2f})",
        ),
    ]
    rows += _bound_rows(result["bounds_us_per_event"])
    report("ingest", rows, result)
    return result


if __name__ == "__main__":
    main()
