"""Issue 19's overhead figures, in one process with an exporter that discards (the request-path cost;
bench.overhead measures the export to a live receiver): each against its baseline in the same run,
interleaved in rounds so machine noise hits both alike.

1. a tracked SQLAlchemy unit of work of 1 row (add + commit, SQLite in memory) vs the same untracked,
   with the events deferred to the worker (the default) and emitted on the committing thread
   (``--sync``: the deferred queue set to 0, the code path before deferral); the CPU figure includes
   draining the queue after each round;
2. an ORM bulk ``update()`` of N rows audited (per row: ``synchronize_session="fetch"``; one event:
   criteria + count) vs the same statement untracked; the drain of the queued events is timed
   apart (the commit's caller does not wait for it). ``gc.callbacks`` (read only: the collector's
   settings are left alone) count the full collections landing in each timed window and their
   time, so the caller's own work is also reported without them;
3. ``otel_audit.wsgi.AuditMiddleware`` recording one event a request vs the bare WSGI app (p50);
4. ``record()`` with the SDK part on the deferred worker vs emitted on the calling thread (the queue
   set to 0 for those calls), interleaved: the caller's cost, and the process CPU with the drain.

    python -m bench.data_emitters [--flushes 5000] [--rows 10000] [--requests 20000]
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

import otel_audit
from bench.common import pct, report, verdict
from bench.overhead import Discard
from otel_audit.deferred import DEFERRED
from otel_audit.sqlalchemy import track
from otel_audit.wsgi import AuditMiddleware, header_resolver

TARGET_FLUSH_US = 30.0
TARGET_BULK_RATIO = 2.0
TARGET_WSGI_US = 25.0
ROUND = 250


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    qty: Mapped[int]


#: CPU seconds (this process, every thread) spent in each variant by the last ``interleave``
CPU: dict[str, float] = {}
#: per-call CPU µs of the calling thread only, per variant, by the last ``interleave``: the
#: caller's own work, not moved by the waits a loaded machine adds to wall time
THREAD: dict[str, list[float]] = {}


def interleave(
    a: Callable[[int], None],
    b: Callable[[int], None],
    n: int,
    rnd: int = ROUND,
    settle: Callable[[], None] = DEFERRED.drain,
) -> tuple[list[float], list[float]]:
    """Per-call µs of ``a`` and ``b``, ``n`` calls each, alternating in rounds of ``rnd``; the CPU
    time of each variant goes to ``CPU`` (less moved by other processes than wall time), with
    ``settle()`` (the deferred queue's drain) inside each round's CPU window."""
    ta: list[float] = []
    tb: list[float] = []
    CPU.update(a=0.0, b=0.0)
    THREAD.update(a=[], b=[])
    done = 0
    while done < n:
        for name, fn, out in (("a", a, ta), ("b", b, tb)):
            c0 = time.process_time()
            own = THREAD[name]
            for i in range(done, min(done + rnd, n)):
                t0 = time.perf_counter_ns()
                u0 = time.thread_time_ns()
                fn(i)
                own.append((time.thread_time_ns() - u0) / 1000)
                out.append((time.perf_counter_ns() - t0) / 1000)
            settle()
            CPU[name] += time.process_time() - c0
        done += rnd
    return ta, tb


def bench_flush(n: int) -> dict[str, float]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    plain, tracked = sessionmaker(engine), sessionmaker(engine)
    track(tracked)

    def unit(factory: Any, offset: int) -> Callable[[int], None]:
        def run(i: int) -> None:
            with factory() as s:
                s.add(Item(id=offset + i, name="widget", qty=i))
                s.commit()

        return run

    unit(plain, 10_000_000)(0)
    unit(tracked, 20_000_000)(0)
    a, b = interleave(unit(plain, 0), unit(tracked, 5_000_000), n)
    engine.dispose()
    return {
        "plain_p50_us": pct(a, 0.5),
        "tracked_p50_us": pct(b, 0.5),
        "added_p50_us": pct(b, 0.5) - pct(a, 0.5),
        "added_cpu_us": (CPU["b"] - CPU["a"]) / n * 1e6,
        "added_thread_cpu_p50_us": pct(THREAD["b"], 0.5) - pct(THREAD["a"], 0.5),
    }


class FullCollections:
    """Full (generation 2) collections on the main thread and their seconds, by the phase named
    in ``phase`` when they ran (a ``gc.callbacks`` entry: observes, changes nothing)."""

    def __init__(self) -> None:
        self.phase = "idle"
        self.count: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self._start = 0.0

    def __call__(self, stage: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2 or threading.current_thread() is not threading.main_thread():
            return
        if stage == "start":
            self._start = time.thread_time()
        else:
            self.count[self.phase] = self.count.get(self.phase, 0) + 1
            self.seconds[self.phase] = self.seconds.get(self.phase, 0.0) + time.thread_time() - self._start


def bench_bulk(rows: int, rounds: int) -> dict[str, float]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with sessionmaker(engine)() as s:
        s.add_all([Item(id=i, name="w", qty=0) for i in range(rows)])
        s.commit()
    plain, tracked = sessionmaker(engine), sessionmaker(engine)
    track(tracked)

    drains: list[float] = []

    own: dict[str, list[float]] = {"plain": [], "per_row": [], "drain": []}
    #: the caller's CPU minus the full collections that ran inside the window
    own_no_full: dict[str, list[float]] = {"plain": [], "per_row": []}
    full = FullCollections()
    gc.callbacks.append(full)

    def run(name: str, factory: Any, options: dict[str, Any]) -> float:
        full.phase = name
        before = full.seconds.get(name, 0.0)
        t0 = time.perf_counter()
        u0 = time.thread_time()
        with factory() as s:
            s.execute(update(Item).values(qty=Item.qty + 1), execution_options=options)
            s.commit()
        t1 = time.perf_counter()
        u1 = time.thread_time()
        full.phase = "drain"
        DEFERRED.drain()  # the queued events' emission, apart from the caller's time
        full.phase = "idle"
        if name in own_no_full:
            own[name].append(u1 - u0)
            own_no_full[name].append(u1 - u0 - (full.seconds.get(name, 0.0) - before))
        if name == "per_row":
            drains.append(time.perf_counter() - t1)
            own["drain"].append(time.thread_time() - u1)
        return t1 - t0

    fetch = {"synchronize_session": "fetch"}
    variants: dict[str, list[float]] = {"plain": [], "per_row": [], "plain_criteria": [], "criteria": []}
    try:
        for _ in range(rounds):
            variants["plain"].append(run("plain", plain, fetch))
            variants["per_row"].append(run("per_row", tracked, fetch))
            variants["plain_criteria"].append(run("plain_criteria", plain, {}))
            variants["criteria"].append(run("criteria", tracked, {}))
    finally:
        gc.callbacks.remove(full)
    engine.dispose()
    ms = {k: pct(v, 0.5) * 1000 for k, v in variants.items()}
    own_ms = {k: pct(v, 0.5) * 1000 for k, v in own.items()}
    bare_ms = {k: pct(v, 0.5) * 1000 for k, v in own_no_full.items()}
    return {
        "per_row_drain_ms": pct(drains, 0.5) * 1000,
        "plain_fetch_thread_cpu_ms": own_ms["plain"],
        "per_row_thread_cpu_ms": own_ms["per_row"],
        "per_row_thread_cpu_ratio": own_ms["per_row"] / own_ms["plain"],
        "per_row_drain_cpu_ms": own_ms["drain"],
        "plain_fetch_no_full_gc_ms": bare_ms["plain"],
        "per_row_no_full_gc_ms": bare_ms["per_row"],
        "per_row_no_full_gc_ratio": bare_ms["per_row"] / bare_ms["plain"],
        "full_gc_plain": full.count.get("plain", 0),
        "full_gc_per_row": full.count.get("per_row", 0),
        "full_gc_drain": full.count.get("drain", 0),
        "full_gc_ms_mean": 1000 * sum(full.seconds.values()) / max(1, sum(full.count.values())),
        "plain_fetch_ms": ms["plain"],
        "audited_per_row_ms": ms["per_row"],
        "per_row_ratio": ms["per_row"] / ms["plain"],
        "plain_criteria_ms": ms["plain_criteria"],
        "audited_criteria_ms": ms["criteria"],
        "criteria_ratio": ms["criteria"] / ms["plain_criteria"],
    }


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "application/json")])
    return [b'{"amount":12}']


def bench_wsgi(n: int) -> dict[str, float]:
    audited = AuditMiddleware(
        wsgi_app,
        user_resolver=header_resolver("X-User"),
        tenant_resolver=header_resolver("X-Tenant"),
        sensitive=["GET /invoices/{id}=invoice"],
    )

    def environ(i: int) -> dict[str, Any]:
        return {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": f"/invoices/inv-{i}",
            "SCRIPT_NAME": "",
            "REMOTE_ADDR": "203.0.113.7",
            "HTTP_USER_AGENT": "bench/1.0",
            "HTTP_X_USER": "alice",
            "HTTP_X_TENANT": "acme",
        }

    def start(status: str, headers: Any, exc_info: Any = None) -> None:
        return None

    def call(app: Any) -> Callable[[int], None]:
        def run(i: int) -> None:
            b"".join(app(environ(i), start))

        return run

    for i in range(200):
        call(wsgi_app)(i)
        call(audited)(i)
    a, b = interleave(call(wsgi_app), call(audited), n)
    return {
        "plain_p50_us": pct(a, 0.5),
        "audited_p50_us": pct(b, 0.5),
        "added_p50_us": pct(b, 0.5) - pct(a, 0.5),
        "added_thread_cpu_p50_us": pct(THREAD["b"], 0.5) - pct(THREAD["a"], 0.5),
        "added_p99_us": pct(b, 0.99) - pct(a, 0.99),
    }


def bench_record(n: int) -> dict[str, float]:
    """``record()`` emitted on the caller's thread (a: the queue bound set to 0) vs deferred (b)."""
    bound = DEFERRED.max_events

    def call(max_events: int) -> Callable[[int], None]:
        def run(i: int) -> None:
            DEFERRED.max_events = max_events
            otel_audit.record(
                action="read", resource_type="invoice", resource_id="inv-1", user_id="alice", tenant_id="acme"
            )

        return run

    try:
        a, b = interleave(call(0), call(bound), n)
    finally:
        DEFERRED.max_events = bound
    return {
        "inline_p50_us": pct(a, 0.5),
        "deferred_p50_us": pct(b, 0.5),
        "inline_thread_cpu_p50_us": pct(THREAD["a"], 0.5),
        "deferred_thread_cpu_p50_us": pct(THREAD["b"], 0.5),
        "inline_cpu_us": CPU["a"] / n * 1e6,
        "deferred_cpu_us": CPU["b"] / n * 1e6,
    }


def record_p50(n: int) -> float:
    """p50 µs of ``record()`` of a 3-column create: the floor of a tracked flush's added cost."""
    times = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        otel_audit.record(
            "create",
            "items",
            str(i),
            changes={
                "id": {"old": None, "new": i},
                "name": {"old": None, "new": "w"},
                "qty": {"old": None, "new": i},
            },
        )
        times.append((time.perf_counter_ns() - t0) / 1000)
    return pct(times, 0.5)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser()
    p.add_argument("--flushes", type=int, default=5_000)
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--sync", action="store_true", help="emit on the committing thread (no deferral)")
    args = p.parse_args(argv)
    if args.sync:
        DEFERRED.max_events = 0
    os.environ.setdefault(
        "OTEL_BLRP_MAX_QUEUE_SIZE", str(4 * (args.flushes + args.requests + args.rows * args.rounds))
    )
    otel_audit.configure(exporter=Discard(), service_name="bench")
    try:
        flush = bench_flush(args.flushes)
        bulk = bench_bulk(args.rows, args.rounds)
        wsgi = bench_wsgi(args.requests)
        record_us = record_p50(args.flushes)
        rec = bench_record(args.requests) if not args.sync else {}
        errors = otel_audit.stats().errors
    finally:
        otel_audit.shutdown()
    result = {
        "flushes": args.flushes,
        "rows": args.rows,
        "requests": args.requests,
        "sync": args.sync,
        **{f"flush_{k}": v for k, v in flush.items()},
        **{f"bulk_{k}": v for k, v in bulk.items()},
        **{f"wsgi_{k}": v for k, v in wsgi.items()},
        **{f"record_{k}": v for k, v in rec.items()},
        "record_p50_us": record_us,
        "emit_errors": errors,
    }
    report(
        "data emitters" + (" (sync: no deferral)" if args.sync else " (deferred)"),
        [
            (
                "1-row unit of work p50",
                f"untracked {flush['plain_p50_us']:.1f} µs, tracked {flush['tracked_p50_us']:.1f} µs",
            ),
            (
                "  added",
                f"{flush['added_p50_us']:.1f} µs  target ≤ {TARGET_FLUSH_US:.0f}: "
                f"{verdict(flush['added_p50_us'], TARGET_FLUSH_US, False)}",
            ),
            (
                "  added CPU of the caller's thread p50",
                f"{flush['added_thread_cpu_p50_us']:.1f} µs (thread CPU time: immune to run-queue waits)",
            ),
            ("  added CPU per unit of work", f"{flush['added_cpu_us']:.1f} µs (process CPU, every thread)"),
            (
                "  record() alone, same run",
                f"{record_us:.1f} µs (added / record() {flush['added_p50_us'] / record_us:.2f})",
            ),
            (
                f"bulk update of {args.rows:,} rows, fetch",
                f"untracked {bulk['plain_fetch_ms']:.1f} ms, audited per row {bulk['audited_per_row_ms']:.1f} ms "
                f"(×{bulk['per_row_ratio']:.2f}; target ≤ {TARGET_BULK_RATIO:.0f}: "
                f"{verdict(bulk['per_row_ratio'], TARGET_BULK_RATIO, False)})",
            ),
            (
                "  caller's thread CPU",
                f"untracked {bulk['plain_fetch_thread_cpu_ms']:.1f} ms, audited {bulk['per_row_thread_cpu_ms']:.1f} ms "
                f"(×{bulk['per_row_thread_cpu_ratio']:.2f})",
            ),
            (
                "  caller's thread CPU without the full collections",
                f"untracked {bulk['plain_fetch_no_full_gc_ms']:.1f} ms, audited {bulk['per_row_no_full_gc_ms']:.1f} ms "
                f"(×{bulk['per_row_no_full_gc_ratio']:.2f})",
            ),
            (
                f"  full collections in {args.rounds} rounds",
                f"untracked statement {bulk['full_gc_plain']}, audited {bulk['full_gc_per_row']}, "
                f"emitting the events {bulk['full_gc_drain']} ({bulk['full_gc_ms_mean']:.1f} ms each)",
            ),
            (
                "  then emitting the queued events",
                f"{bulk['per_row_drain_ms']:.1f} ms, {bulk['per_row_drain_cpu_ms']:.1f} ms CPU (off the caller's path)",
            ),
            (
                f"bulk update of {args.rows:,} rows, criteria",
                f"untracked {bulk['plain_criteria_ms']:.1f} ms, audited (1 event) {bulk['audited_criteria_ms']:.1f} ms "
                f"(×{bulk['criteria_ratio']:.2f})",
            ),
            (
                "WSGI request p50",
                f"bare {wsgi['plain_p50_us']:.1f} µs, with AuditMiddleware {wsgi['audited_p50_us']:.1f} µs",
            ),
            (
                "  added",
                f"{wsgi['added_p50_us']:.1f} µs  target ≤ {TARGET_WSGI_US:.0f}: "
                f"{verdict(wsgi['added_p50_us'], TARGET_WSGI_US, False)}",
            ),
            (
                "  added caller-thread CPU p50 / added wall p99",
                f"{wsgi['added_thread_cpu_p50_us']:.1f} µs / {wsgi['added_p99_us']:.1f} µs",
            ),
            *(
                [
                    (
                        "record() p50, emitted inline vs deferred",
                        f"{rec['inline_p50_us']:.1f} µs vs {rec['deferred_p50_us']:.1f} µs wall; "
                        f"{rec['inline_thread_cpu_p50_us']:.1f} vs {rec['deferred_thread_cpu_p50_us']:.1f} µs "
                        "caller-thread CPU",
                    ),
                    (
                        "  process CPU per record(), drain included",
                        f"{rec['inline_cpu_us']:.1f} µs inline vs {rec['deferred_cpu_us']:.1f} µs deferred",
                    ),
                ]
                if rec
                else []
            ),
            ("emit errors", str(errors)),
        ],
        result,
    )
    return result


if __name__ == "__main__":
    main()
