"""Bench: one log stream's delivery rate to a local webhook (issue 18). ``--events`` synthetic
events are generated in a fresh chDB store and given positions (one log per tenant, indexes from
0); one stream then delivers all of them to a loopback HTTP server that counts NDJSON lines.

    python -m bench.streams [--events 200000] [--batch 5000] [--deliver N] [--hook thread|process|both]

``--hook process`` runs the receiving hook in a process of its own (it then does not share the
receiver's GIL, and its CPU is counted apart from the receiver's); ``both`` delivers twice over
the same store, a fresh stream each time.

Target (issue 18): ≥ 100 k events/s per stream at 10 M stored events. The default size is small
(a shared machine); pass --events 10000000 on a quiet one.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import CollectorRegistry

from bench.common import counting_hook, report, verdict
from receiver.store.chdb_store import ChdbStore
from receiver.store.sql import Statement
from receiver.store.synthetic import SyntheticSpec
from receiver.streams.config import Stream
from receiver.streams.metrics import StreamMetrics
from receiver.streams.runner import Runner
from receiver.streams.service import position_file

TARGET = 100_000.0


def _hook_main(port: Any, lines: Any) -> None:
    """The hook in its own process: ``lines`` (a shared counter) counts the NDJSON lines."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            count = gzip.decompress(body).count(b"\n")
            with lines.get_lock():
                lines.value += count
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.value = server.server_address[1]
    server.serve_forever()


class _HookProcess:
    """:func:`_hook_main` in a spawned process, with ``lines[0]`` read from its counter."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._port, self._lines = ctx.Value("i", 0), ctx.Value("q", 0)
        self.proc = ctx.Process(target=_hook_main, args=(self._port, self._lines), daemon=True)
        self.proc.start()
        while not self._port.value:
            time.sleep(0.05)
        self.port = int(self._port.value)

    def __getitem__(self, _: int) -> int:
        return int(self._lines.value)

    def cpu_seconds(self) -> float:
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


def _deliver(store: ChdbStore, form: str, batch: int, goal: int) -> dict[str, Any]:
    """One fresh stream (its own name: positions from the start) delivering ``goal`` events to a
    hook in this process (``thread``) or in a process of its own (``process``)."""
    hook = _HookProcess() if form == "process" else None
    if hook is not None:
        server, lines, port = None, hook, hook.port
    else:
        server, lines_list = counting_hook()
        lines, port = lines_list, server.server_address[1]
    url = f"http://127.0.0.1:{port}/"
    stream = Stream(
        name=f"bench-{form}", kind="webhook", url=url, secret="s", batch_size=batch, batch_seconds=0
    )
    # as `otel-audit serve` runs it on the embedded store: positions on disk after every batch
    runner = Runner(
        store, stream, StreamMetrics(CollectorRegistry()), "bench", position_file=position_file(store, stream)
    )
    started = time.perf_counter()
    cpu = time.process_time()
    hook_cpu = hook.cpu_seconds() if hook is not None else 0.0
    while lines[0] < goal:
        if runner.step() == 0 and lines[0] < goal:
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    hook_cpu = hook.cpu_seconds() - hook_cpu if hook is not None else 0.0
    runner.stop()
    if server is not None:
        server.shutdown()
    if hook is not None:
        hook.stop()
    return {
        "hook": form,
        "delivered": lines[0],
        "seconds": round(seconds, 2),
        "events_per_s": round(lines[0] / seconds),
        "cpu_seconds": round(cpu_seconds, 2),
        "hook_cpu_seconds": round(hook_cpu, 2),
        "prefetched": runner.ahead.used if hasattr(runner, "ahead") else 0,
    }


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
    parser.add_argument(
        "--hook",
        choices=("thread", "process", "both"),
        default="thread",
        help="the receiving hook in this process, in a process of its own, or both one after the other "
        "(each a fresh stream over the same store)",
    )
    args = parser.parse_args()
    forms = ("process", "thread") if args.hook == "both" else (args.hook,)
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
        goal = args.deliver or args.events
        runs = [_deliver(store, form, args.batch, goal) for form in forms]
        store.close()
    lines = []
    for run in runs:
        rate = run["events_per_s"]
        where = "in this process" if run["hook"] == "thread" else "in its own process"
        cpu = f"{run['seconds']:.2f} / {run['cpu_seconds']:.2f}"
        if run["hook"] == "process":
            cpu += f" (+ hook {run['hook_cpu_seconds']:.2f})"
        lines += [
            (
                f"delivery rate, one webhook stream, hook {where}",
                f"{rate:,.0f} events/s ({verdict(rate, TARGET)})",
            ),
            (
                "  wall / CPU seconds ("
                + ("receiver" if run["hook"] == "process" else "receiver and hook")
                + ")",
                cpu,
            ),
            ("  events per CPU-second (same)", f"{run['delivered'] / max(run['cpu_seconds'], 1e-9):,.0f}"),
            ("  batches read ahead while the previous one went", str(run["prefetched"])),
        ]
    report("streams", lines, {"events": args.events, "batch": args.batch, "runs": runs})


if __name__ == "__main__":
    main()
