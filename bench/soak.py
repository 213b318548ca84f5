"""Bench 5, soak: `otel-audit serve` under a steady load (by default half the ingest rate measured
in the same run) for 10 minutes; the receiver's RSS sampled every 10 s must stay flat and no
request may fail. Reports first/last/max RSS, errors, and the events stored.

    python -m bench.soak [--minutes 10] [--rate EVENTS_PER_S] [--interval 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from bench.common import RECORDS_PER_REQUEST, REPO, Serve, report
from bench.ingest import run_load, wait_stored

#: RSS growth from the first to the last sample that still counts as flat
FLAT_MB = 50.0


def measured_rate(serve: Serve, requests: int) -> float:
    """Sustained events/s of this receiver, measured briefly (as fast as acknowledged)."""
    load, _, _ = run_load(serve, ["--requests", str(requests), "--concurrency", "4"])
    return load["events_acked"] / load["wall_seconds"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=0.0, help="events/s (default: half the measured rate)")
    p.add_argument("--interval", type=float, default=10.0)
    args = p.parse_args(argv)
    with Serve() as serve:
        full = measured_rate(serve, 100 if args.minutes < 5 else 400)
        rate = args.rate or full / 2
        cmd = [sys.executable, "-m", "bench.loadgen", "--endpoint", serve.grpc_endpoint]
        cmd += ["--duration", str(args.minutes * 60), "--rate", str(rate / RECORDS_PER_REQUEST)]
        cmd += ["--concurrency", "4"]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert proc.stdin and proc.stdout
        assert proc.stdout.readline().strip() == "READY"
        stored0 = serve.metric("otel_audit_accepted_events_total")
        samples: list[tuple[float, float]] = []
        done = threading.Event()
        t0 = time.monotonic()
        proc.stdin.write("go\n")
        proc.stdin.flush()

        def sampler() -> None:
            while not done.is_set():
                samples.append((time.monotonic() - t0, serve.rss_mb()))
                done.wait(args.interval)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        load = json.loads(proc.stdout.readline())
        done.set()
        thread.join()
        samples.append((time.monotonic() - t0, serve.rss_mb()))
        proc.wait(30)
        try:  # with ingest.ack: journal the store is up to commit_interval behind the ack
            wait_stored(serve, stored0 + load["events_acked"], timeout=60)
        except RuntimeError:
            pass  # reported below as acknowledged ≠ stored
        stored = serve.metric("otel_audit_accepted_events_total") - stored0
    rss = [mb for _, mb in samples]
    first, last, peak = rss[0], rss[-1], max(rss)
    # RSS saws up and down by ~80 MB with each commit and merge: compare the medians of the
    # first and last thirds (the very first sample precedes the first commit), and fit a slope.
    third = max(1, (len(rss) - 1) // 3)
    early, late = statistics.median(rss[1 : third + 1] or rss), statistics.median(rss[-third:])
    times = [t for t, _ in samples]
    mean_t, mean_r = statistics.fmean(times), statistics.fmean(rss)
    spread = sum((t - mean_t) ** 2 for t in times) or 1.0
    slope = sum((t - mean_t) * (r - mean_r) for t, r in samples) / spread * 60
    flat = late - early < FLAT_MB
    result = {
        "minutes": args.minutes,
        "target_rate": rate,
        "measured_full_rate": full,
        "achieved_rate": load["events_acked"] / load["wall_seconds"],
        "events_acked": load["events_acked"],
        "stored": stored,
        "errors": load["errors"],
        "error_kinds": load["error_kinds"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "rss_first_mb": first,
        "rss_last_mb": last,
        "rss_max_mb": peak,
        "rss_samples": samples,
        "rss_early_median_mb": early,
        "rss_late_median_mb": late,
        "rss_slope_mb_per_min": slope,
        "flat": flat,
    }
    report(
        "soak",
        [
            (
                "duration / sampling",
                f"{args.minutes:g} min, RSS every {args.interval:g} s ({len(samples)} samples)",
            ),
            ("rate", f"{result['achieved_rate']:,.0f} events/s (asked {rate:,.0f}; full rate {full:,.0f})"),
            ("events acknowledged / stored", f"{load['events_acked']:,} / {stored:,.0f}"),
            ("errors", f"{load['errors']} {load['error_kinds'] or ''}"),
            ("export latency p50 / p99", f"{load['p50_ms']:.1f} ms / {load['p99_ms']:.1f} ms"),
            ("RSS first / last / max", f"{first:.0f} / {last:.0f} / {peak:.0f} MB"),
            (
                "flat (median last third - first third)",
                f"{early:.0f} → {late:.0f} MB, {late - early:+.0f} MB (< {FLAT_MB:.0f} MB), slope {slope:+.1f} MB/min:"
                f" {'MET' if flat and not load['errors'] else 'NOT MET'}",
            ),
        ],
        result,
    )
    return result


if __name__ == "__main__":
    main()
