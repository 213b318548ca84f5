"""``otel-audit demo``: the whole path on one machine, in one command.

A receiver on an embedded chDB store, the sample documents app instrumented with otel_audit
(served by uvicorn on a free port), a traffic generator doing logins, failed logins, reads,
edits, deletes and role changes for two tenants, then a summary of what was stored and how to
query it. It serves on (admin API/UI) until Ctrl-C unless ``--exit`` is given.
"""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from receiver.config import load_config
from receiver.filters import EventFilter
from receiver.server import Receiver

#: how long the demo waits for the emitted events to be queryable
SETTLE_SECONDS = 20.0


def _start_receiver(data: Path, grpc_listen: str, admin_listen: str) -> Receiver:
    """Use the asked-for ports; when they are taken (another receiver runs), free ones."""
    for grpc_addr, admin_addr in ((grpc_listen, admin_listen), ("127.0.0.1:0", "127.0.0.1:0")):
        config = load_config(
            None,
            store=f"chdb://{data}",
            grpc_listen=grpc_addr,
            http_listen="127.0.0.1:0",
            admin_listen=admin_addr,
            # the vendor example (examples/vendor_viewer) frames the tenant-facing viewer
            viewer={"secrets": [secrets.token_urlsafe(32)], "frame_ancestors": ["http://127.0.0.1:*"]},
        )
        receiver = Receiver(config)
        try:
            receiver.start()
            return receiver
        except OSError:
            receiver.stop()
            if grpc_addr.endswith(":0"):
                raise
    raise AssertionError("unreachable")


def _serve_app(app: object) -> tuple[object, int]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="demo-app", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise OSError("the sample app could not start")
        time.sleep(0.02)
    return server, server.servers[0].sockets[0].getsockname()[1]


def run_demo(args: argparse.Namespace) -> int:
    import otel_audit
    from receiver.demo.sample_app import build_app
    from receiver.demo.traffic import run_traffic

    data = Path(args.data).resolve()
    # SIGTERM stops like Ctrl-C: through the finally below, which drains the journal into the store
    previous = signal.signal(signal.SIGTERM, _interrupt)
    receiver = _start_receiver(data, args.grpc_listen, args.admin_listen)
    assert receiver.store is not None
    before = receiver.store.count(EventFilter())
    app_server = vendor_server = None
    try:
        app = build_app(
            endpoint=f"http://127.0.0.1:{receiver.grpc_port}",
            service_name="demo-docs",
            spool_dir=str(data / "spool"),  # inside the demo's data: `make clean` removes it
        )
        app_server, app_port = _serve_app(app)
        print(
            f"sample app http://127.0.0.1:{app_port}  →  OTLP/gRPC 127.0.0.1:{receiver.grpc_port}", flush=True
        )
        summary = run_traffic(f"http://127.0.0.1:{app_port}", n_rounds=args.rounds, seed=42)
        otel_audit.force_flush()
        expected = int(summary.get("events", 0)) if isinstance(summary, dict) else 0
        deadline = time.monotonic() + SETTLE_SECONDS
        stored = receiver.store.count(EventFilter()) - before
        while stored < expected and time.monotonic() < deadline:
            time.sleep(0.2)
            otel_audit.force_flush()
            stored = receiver.store.count(EventFilter()) - before
        _print_summary(receiver, stored, expected)
        vendor_server = _start_vendor_example(f"http://127.0.0.1:{receiver.admin_port}")
        if args.exit:
            return 0 if stored >= expected else 1
        stop = threading.Event()
        try:
            print("Serving the admin API/UI until Ctrl-C …", flush=True)
            stop.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        for server in (app_server, vendor_server):
            if server is not None:
                server.should_exit = True  # type: ignore[attr-defined]
        otel_audit.shutdown()
        receiver.stop()
        signal.signal(signal.SIGTERM, previous)


def _start_vendor_example(admin: str) -> object | None:
    """examples/vendor_viewer (a source checkout only): a customer's settings page embedding the viewer."""
    path = Path(__file__).resolve().parents[2] / "examples" / "vendor_viewer" / "app.py"
    spec = importlib.util.spec_from_file_location("vendor_viewer_example", path)
    if not path.exists() or spec is None or spec.loader is None:
        return None
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ModuleNotFoundError:  # fastapi is a dev dependency
        return None
    module.AUDIT_URL, module.ADMIN_TOKEN = admin, None  # the demo's admin API is open on loopback
    server, port = _serve_app(module.app)
    print(f"Vendor example (acme's audit log, embedded): http://127.0.0.1:{port}/", flush=True)
    return server


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _print_summary(receiver: Receiver, stored: int, expected: int) -> None:
    from rich.console import Console
    from rich.table import Table

    assert receiver.store is not None
    rows = receiver.store.search(EventFilter(), 1000)
    counts = Counter((r["tenant_id"], r["event_name"], r["outcome"]) for r in rows)
    table = Table(title=f"Stored audit events: {stored} new (emitted {expected})", header_style="bold")
    for name in ("tenant", "event", "outcome", "count"):
        table.add_column(name)
    for (tenant, event, outcome), n in sorted(counts.items()):
        table.add_row(tenant, event, outcome, str(n))
    console = Console()
    console.print(table)
    admin = f"http://127.0.0.1:{receiver.admin_port}"
    console.print(f"Admin UI:   {admin}/")
    console.print(f"Events API: {admin}/api/events?tenant=acme&outcome=failure")
    console.print(f"CLI:        otel-audit query --server {admin} --tenant acme --action login")
