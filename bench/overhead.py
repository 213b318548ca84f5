"""Bench 2, request overhead: a Starlette app called in-process by direct ASGI calls (no network),
without and with ``otel_audit.asgi.AuditMiddleware`` recording one event per request, its
exporter pointed at a live receiver (`otel-audit serve` in a subprocess). The two variants run
interleaved in rounds so machine noise hits both alike; the added p50/p99 is the difference.
Baselines in the same run: the bare SDK ``logger.emit`` and ``otel_audit.record()`` alone.

    python -m bench.overhead [--requests 20000] [--sync]

``--sync``: the deferred queue set to 0, so the events are handed to the SDK on the request
thread (the code path before ``record()`` and the middlewares' events were deferred).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import httpx
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import otel_audit
from bench.common import Serve, pct, report, verdict
from otel_audit.asgi import AuditMiddleware, header_resolver
from otel_audit.deferred import DEFERRED
from otel_audit.routes import SensitiveRoute

TARGET_P50_US = 25.0
ROUND = 500


async def invoice(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"], "amount": 12})


class Discard(LogRecordExporter):
    def export(self, batch: Any) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def build_apps() -> tuple[Any, Any]:
    app = Starlette(routes=[Route("/invoices/{id}", invoice)])
    audited = AuditMiddleware(
        app,
        user_resolver=header_resolver("x-user"),
        tenant_resolver=header_resolver("x-tenant"),
        sensitive=[SensitiveRoute(path="/invoices/{id}", resource_type="invoice", methods={"GET"})],
    )
    return app, audited


def scope(i: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/invoices/inv-{i}",
        "raw_path": f"/invoices/inv-{i}".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"user-agent", b"bench/1.0"),
            (b"x-user", b"alice"),
            (b"x-tenant", b"acme"),
        ],
        "client": ("203.0.113.7", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app: Any, i: int) -> int:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    t0 = time.perf_counter_ns()
    await app(scope(i), receive, send)
    elapsed = time.perf_counter_ns() - t0
    assert status == 200
    return elapsed


async def measure(plain: Any, audited: Any, requests: int) -> tuple[list[float], list[float]]:
    a: list[float] = []
    b: list[float] = []
    for i in range(200):  # warm up both
        await call(plain, i)
        await call(audited, i)
    done = 0
    while done < requests:
        for i in range(ROUND):
            a.append((await call(plain, done + i)) / 1000)
        for i in range(ROUND):
            b.append((await call(audited, done + i)) / 1000)
        done += ROUND
    return a, b


def sdk_baselines(n: int) -> tuple[float, float]:
    """p50 µs of the bare SDK emit and of record(), through the configured provider."""
    from otel_audit.pipeline import STATE

    logger = STATE.pipeline.logger
    attrs = {
        "audit.event.id": "6f1c1f8e-3f0c-4d59-9a57-0d5c9d1e8a11",
        "audit.action": "read",
        "audit.resource.type": "invoice",
        "audit.resource.id": "inv-1",
        "enduser.id": "alice",
        "audit.tenant.id": "acme",
        "client.address": "203.0.113.7",
    }
    emit: list[float] = []
    rec: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        logger.emit(timestamp=time.time_ns(), attributes=attrs, event_name="audit.invoice.read")
        emit.append((time.perf_counter_ns() - t0) / 1000)
    for _ in range(n):
        t0 = time.perf_counter_ns()
        otel_audit.record(
            action="read", resource_type="invoice", resource_id="inv-1", user_id="alice", tenant_id="acme"
        )
        rec.append((time.perf_counter_ns() - t0) / 1000)
    return pct(emit, 0.5), pct(rec, 0.5)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--sync", action="store_true", help="emit on the request thread (no deferral)")
    args = p.parse_args(argv)
    if args.sync:
        DEFERRED.max_events = 0
    # room for every event of the run: a dropped event would make the audited variant look cheaper
    os.environ.setdefault("OTEL_BLRP_MAX_QUEUE_SIZE", str(4 * args.requests + 50_000))
    plain, audited = build_apps()
    # the same with an exporter that discards: what the request path costs without the export
    # thread (which encodes batches in Python, under the GIL) competing with it
    otel_audit.configure(exporter=Discard(), service_name="bench")
    da, db = asyncio.run(measure(plain, audited, args.requests))
    otel_audit.shutdown()
    with Serve() as serve:
        otel_audit.configure(endpoint=f"http://{serve.grpc_endpoint}", insecure=True, service_name="bench")
        emitted_before = otel_audit.stats().emitted  # the discarding run's events count too
        a, b = asyncio.run(measure(plain, audited, args.requests))
        emit_p50, record_p50 = sdk_baselines(min(args.requests, 10_000))
        otel_audit.force_flush(30_000)
        stats = otel_audit.stats()
        emitted = stats.emitted - emitted_before
        otel_audit.shutdown()
        # acknowledged events reach the store at the journal's next commit: wait for them
        deadline = time.monotonic() + 60
        stored = serve.metric("otel_audit_accepted_events_total")
        while stored < emitted and time.monotonic() < deadline:
            time.sleep(0.2)
            stored = serve.metric("otel_audit_accepted_events_total")
        page = httpx.get(f"{serve.admin_url}/api/events", params={"limit": 1}, timeout=30).json()
    added50 = pct(b, 0.5) - pct(a, 0.5)
    added99 = pct(b, 0.99) - pct(a, 0.99)
    result = {
        "requests": len(a),
        "sync": args.sync,
        "plain_p50_us": pct(a, 0.5),
        "plain_p99_us": pct(a, 0.99),
        "audited_p50_us": pct(b, 0.5),
        "audited_p99_us": pct(b, 0.99),
        "added_p50_us": added50,
        "added_p99_us": added99,
        "added_p50_us_discarding_exporter": pct(db, 0.5) - pct(da, 0.5),
        "sdk_emit_p50_us": emit_p50,
        "record_p50_us": record_p50,
        "emitted": emitted,
        "emit_errors": stats.errors,
        "stored_by_receiver": stored,
        "target_p50_us": TARGET_P50_US,
    }
    report(
        "request overhead" + (" (sync: no deferral)" if args.sync else " (deferred)"),
        [
            ("requests per variant", f"{len(a):,} (interleaved in rounds of {ROUND})"),
            ("without middleware p50 / p99", f"{pct(a, 0.5):.1f} µs / {pct(a, 0.99):.1f} µs"),
            ("with AuditMiddleware p50 / p99", f"{pct(b, 0.5):.1f} µs / {pct(b, 0.99):.1f} µs"),
            (
                "added p50",
                f"{added50:.1f} µs  target ≤ {TARGET_P50_US:.0f}: {verdict(added50, TARGET_P50_US, False)}",
            ),
            ("added p99", f"{added99:.1f} µs"),
            (
                "added p50, exporter discarding",
                f"{pct(db, 0.5) - pct(da, 0.5):.1f} µs (no export thread competing for the GIL)",
            ),
            (
                "baseline: bare SDK logger.emit p50",
                f"{emit_p50:.1f} µs (added/emit {added50 / emit_p50:.2f})",
            ),
            ("baseline: otel_audit.record() p50", f"{record_p50:.1f} µs"),
            ("events emitted / stored (+ trail) / errors", f"{emitted:,} / {stored:,.0f} / {stats.errors}"),
            ("receiver has events", str(bool(page.get("events")))),
        ],
        result,
    )
    return result


if __name__ == "__main__":
    main()
