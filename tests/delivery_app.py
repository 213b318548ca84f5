"""A small application for the delivery fault tests: emits audit events through ``otel_audit``
(the real SDK exporter and the spool), writing each event id to a file as it is emitted.

    python tests/delivery_app.py ENDPOINT SPOOL_DIR IDS_FILE COUNT [--rate N] [--protocol P]
                                 [--hold-when-spooled]

``--hold-when-spooled``: once every event is in the spool, print ``SPOOLED`` and sleep (the test
kills the process there). ``--wait-drained S``: like a long-lived app, give the spool up to S
seconds to replay before exiting. Then ``otel_audit.shutdown()`` (which flushes) and exit.
"""

from __future__ import annotations

import argparse
import time

import otel_audit


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("spool_dir")
    parser.add_argument("ids_file")
    parser.add_argument("count", type=int)
    parser.add_argument("--rate", type=float, default=0.0, help="events per second (0: as fast as possible)")
    parser.add_argument("--protocol", default="grpc")
    parser.add_argument("--hold-when-spooled", action="store_true")
    parser.add_argument(
        "--wait-drained",
        type=float,
        default=0.0,
        help="after emitting, wait up to this many seconds for the spool to empty (a long-lived app)",
    )
    args = parser.parse_args()
    handle = otel_audit.configure(
        endpoint=args.endpoint,
        protocol=args.protocol,
        service_name="delivery-app",
        timeout=2,
        spool_dir=args.spool_dir,
    )
    started = time.monotonic()
    with (
        open(args.ids_file, "a", encoding="utf-8") as ids,
        otel_audit.audit_context(user_id="alice", tenant_id="acme"),
    ):
        for i in range(args.count):
            event_id = otel_audit.record(action="update", resource_type="document", resource_id=f"doc-{i}")
            ids.write(f"{event_id}\n")
            ids.flush()
            if args.rate:
                ahead = started + (i + 1) / args.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    print(f"EMITTED {args.count}", flush=True)
    if args.hold_when_spooled:
        otel_audit.force_flush()
        spool = handle.exporter
        while spool.snapshot().spooled_events < args.count:  # type: ignore[union-attr]
            time.sleep(0.05)
        print("SPOOLED", flush=True)
        time.sleep(3600)
    if args.wait_drained:
        otel_audit.force_flush()
        spool = handle.exporter
        deadline = time.monotonic() + args.wait_drained
        while len(spool.spool) and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.1)
        print(f"PENDING {len(spool.spool)}", flush=True)  # type: ignore[union-attr]
    otel_audit.shutdown()
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
