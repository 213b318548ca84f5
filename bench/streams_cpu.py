"""Bench: what log streams add to ingest's CPU (issue 18: ≤ 10 % at 20 k events/s with two
streams). ``otel-audit serve`` takes OTLP/gRPC at ``--rate`` events/s from a separate load
generator for ``--seconds``, first without streams, then with two webhook streams (all tenants)
delivering to a loopback hook in this process; the receiver process's CPU is compared, and the
hook's line count shows every event was delivered.

    python -m bench.streams_cpu [--rate 20000] [--seconds 60] [--batch 10000] [--batch-seconds 1]

The primary figure is the streams' own CPU (their threads, and the engine's query pool beyond
the phase without streams) per ingested event against the rest of the process in the same
phase; the whole-process difference between the two phases is kept as the second figure.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx

from bench.common import RECORDS_PER_REQUEST, Serve, counting_hook, report, verdict
from bench.ingest import run_load

TARGET_ADDED = 0.10
#: the engine's query threads (chDB runs part of each query there)
POOL = "ThreadPool"


def _reads(serve: Serve) -> dict[str, float]:
    """The streams' reads by result (queried, or shared from a sibling stream), their accepted
    batches and the inserts that stored their positions."""
    text = httpx.get(f"{serve.admin_url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("otel_audit_stream_reads_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            out[result] = out.get(result, 0.0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith("otel_audit_stream_position_inserts_total"):
            out["position inserts"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("otel_audit_stream_batches_total{") and 'result="accepted"' in line:
            out["batches"] = out.get("batches", 0.0) + float(line.rsplit(" ", 1)[1])
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


def streams_own(base: dict[str, Any], with_streams: dict[str, Any]) -> dict[str, float]:
    """The streams' own CPU in the phase with streams, from the receiver's threads: the stream
    threads (``oa-stream-*``: their Python and each query's main pipeline, which chDB runs on
    the calling thread) plus what the engine's query pool took per event beyond the phase
    without streams; the rest of the process is ingest's, in the same phase. Steadier than the
    whole-process difference between two phases (which moves ±30 % on a shared box)."""
    events, base_events = with_streams["events"], base["events"]
    threads = with_streams["cpu_s_by_thread"]
    stream_threads = sum(v for k, v in threads.items() if k.startswith(("oa-stream", "oa-fetch")))
    pool_with = threads.get(POOL, 0.0)
    pool_without = base["cpu_s_by_thread"].get(POOL, 0.0)
    growth = max(0.0, pool_with - pool_without * events / max(1, base_events))
    own = stream_threads + growth
    ingest = with_streams["cpu_s"] - own
    return {
        "threads_s": round(stream_threads, 2),
        "pool_growth_s": round(growth, 2),
        "stream_us": own / max(1, events) * 1e6,
        "ingest_us": ingest / max(1, events) * 1e6,
        "added": own / ingest if ingest > 0 else float("inf"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=10_000, help="each stream's batch_size")
    parser.add_argument("--batch-seconds", type=float, default=1.0, help="each stream's batch_seconds")
    args = parser.parse_args()
    server, lines = counting_hook()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    streams = [
        {
            "name": f"s{i}",
            "kind": "webhook",
            "url": url,
            "secret": "bench",
            "batch_size": args.batch,
            "batch_seconds": args.batch_seconds,
        }
        for i in (1, 2)
    ]
    base = _phase(args.rate, args.seconds, [], lines)
    with_streams = _phase(args.rate, args.seconds, streams, lines)
    server.shutdown()
    per_event = (with_streams["cpu_s"] / with_streams["events"]) / (base["cpu_s"] / base["events"])
    added = per_event - 1.0
    own = streams_own(base, with_streams)
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
                "the streams' own CPU per ingested event (primary)",
                f"{own['stream_us']:.1f} µs (stream threads {own['threads_s']} CPU-s + engine pool growth "
                f"{own['pool_growth_s']} CPU-s) against ingest's {own['ingest_us']:.1f} µs in the same phase: "
                f"{own['added']:+.1%} (target ≤ {TARGET_ADDED:.0%}: {verdict(own['added'], TARGET_ADDED, False)})",
            ),
            (
                "CPU added per event, whole process between phases (noisy)",
                f"{added:+.1%} (target ≤ {TARGET_ADDED:.0%}: {verdict(added, TARGET_ADDED, False)})",
            ),
        ],
        {
            "rate": args.rate,
            "seconds": args.seconds,
            "batch": args.batch,
            "batch_seconds": args.batch_seconds,
            "base": base,
            "streams": with_streams,
            "added": added,
            "own": own,
        },
    )


if __name__ == "__main__":
    main()
